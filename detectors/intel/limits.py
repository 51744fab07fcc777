"""Bounded work for any feed: caps on decompressed bytes, line length and line count, and a
deadline over the whole load (download and parsing), each ending in a clear error."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from shipper.errors import InputError

DEFAULT_MAX_BYTES = 512 << 20
DEFAULT_MAX_LINE = 16 << 20
DEFAULT_MAX_LINES = 20_000_000
_READ = 1 << 16


class FeedLimitError(InputError):
    """A feed went over one of its :class:`ReadLimits`."""


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """``max_bytes``: decompressed (and downloaded) bytes; ``max_line``: characters in one line;
    ``max_lines``: lines in the feed; ``deadline_at``: a ``time.monotonic()`` instant (None: no
    deadline)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_line: int = DEFAULT_MAX_LINE
    max_lines: int = DEFAULT_MAX_LINES
    deadline_at: float | None = None
    deadline: float | None = None  # the seconds behind deadline_at, for the message

    def check_time(self, where: str) -> None:
        if self.deadline_at is not None and time.monotonic() > self.deadline_at:
            raise FeedLimitError(f"the load took longer than its {self.deadline or 0:g}s deadline ({where})")


class CappedReader(io.RawIOBase):
    """A binary stream that fails once more than ``limits.max_bytes`` were read from it."""

    def __init__(self, inner: IO[bytes], limits: ReadLimits, source: str | None) -> None:
        self._inner, self._limits, self._source, self.count = inner, limits, source, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(min(len(buffer), _READ))
        n = len(data)
        buffer[:n] = data
        self.count += n
        if self.count > self._limits.max_bytes:
            raise FeedLimitError(
                f"feed is larger than {self._limits.max_bytes} bytes decompressed (max_bytes)",
                source=self._source,
            )
        self._limits.check_time(f"{self.count} bytes read")
        return n


def bounded_lines(stream: IO[str], limits: ReadLimits, source: str | None) -> Iterator[str]:
    """The lines of ``stream``, never holding more than ``max_line`` characters of one."""
    number = 0
    while line := stream.readline(limits.max_line + 1):
        number += 1
        if len(line) > limits.max_line:
            raise FeedLimitError(
                f"line {number} is longer than {limits.max_line} characters (max_line)", source=source
            )
        if number > limits.max_lines:
            raise FeedLimitError(f"feed has more than {limits.max_lines} lines (max_lines)", source=source)
        if number % 4096 == 0:
            limits.check_time(f"line {number}")
        yield line

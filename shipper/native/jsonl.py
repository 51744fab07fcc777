"""Winlogbeat / NXLog JSON lines read with the native core.

The reader's own steps (``shipper.readers.jsonl.JsonReader``), except that wherever it would
take its JSON-lines fast path (top level, a line starting with ``{``, its newline in the
buffer) the core is handed the buffer and reads as many whole lines as it can: for a UTF-8
file the file's bytes, kept beside the decoded text (``map_json_bytes``: no UTF-8 copy of a
buffer with one character beyond ASCII), else a window of the decoded text
(``map_json_lines``). It stops before the first line it does not read exactly as Python would,
which the reader then reads; after consecutive misses the core is asked less often (1, 2, 4 …
64 lines), so a file it cannot map costs little.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import IO, Any

from shipper.native.batch import MappedBatch
from shipper.native.fallback import FallbackReason
from shipper.raw import RawEvent, ReadError
from shipper.readers.jsonl import JsonReader
from shipper.stats import Stats

#: characters of the decoded text handed to the core at once when it reads text, not bytes
NATIVE_TEXT_WINDOW = 1 << 16


class _KeptBytes(JsonReader):
    """The reader, keeping a UTF-8 file's bytes from the offset of ``buf[0]`` (``raw_at``) for
    the core; None from the first undecodable byte on (offsets unknown), and for other codecs."""

    def __init__(self, stream: IO[bytes], source: str, *, start_offset: int | None, **kw: Any) -> None:
        self.tap: list[bytes] | None = [] if start_offset is not None else None
        super().__init__(stream, source, start_offset=start_offset, tap=self.tap, **kw)
        self.raw = b""
        self.raw_at = start_offset if self.tap is not None and self.counter.codec == "utf-8" else None

    def more(self) -> bool:
        if not super().more():
            return False
        tap = self.tap
        if tap is not None:
            fresh = b"".join(tap) if self.raw_at is not None else b""
            tap.clear()
            at = self.counter.offset
            if self.raw_at is not None and at is not None:  # keep the bytes from buf[0] on
                cut = at - self.raw_at
                raw = self.raw
                self.raw = raw[cut:] + fresh if cut <= len(raw) else fresh[cut - len(raw) :]
                self.raw_at = at
            else:  # not UTF-8, or offsets unknown from here (U+FFFD): the core reads buf
                self.raw, self.raw_at = b"", None
        return True

    def map_lines(self, core: ModuleType) -> Any:
        """The core's ``LinesRun`` from ``pos`` on, or None when the text holds lone surrogates
        (not text the core can borrow)."""
        counter = self.counter
        counter.advance(self.buf[self.mark : self.pos])
        self.mark = self.pos
        at = counter.offset
        if self.raw_at is not None and at is not None:
            return core.map_json_bytes(self.raw, at - self.raw_at, self.line, at)
        try:  # (at most a window of the text: a copy per call)
            window = self.buf[self.pos : self.pos + NATIVE_TEXT_WINDOW]
            return core.map_json_lines(window, counter.width, self.line, at)
        except UnicodeEncodeError:
            return None

    def consumed(self, run: Any) -> None:
        """Move past the lines ``run`` read (it ends just past its last line's newline)."""
        self.pos += run.chars
        self.mark = self.pos
        self.line = run.start_lines[-1] + 1
        if run.end_offsets is not None:
            self.counter.offset = run.end_offsets[-1]


def read_json_native(
    core: ModuleType,
    stream: IO[bytes],
    source: str,
    stats: Stats,
    *,
    start_offset: int | None = 0,
    start_line: int = 1,
    codec: str | None = None,
) -> Iterator[RawEvent | MappedBatch | ReadError]:
    """``read_json``'s records, runs of the lines the core reads as MappedBatch (the same
    documents and positions, and the providers of the other providers' records among them).
    Why the core declined a line it was asked about is counted in ``stats.native_fallbacks``."""
    reader = _KeptBytes(stream, source, start_offset=start_offset, start_line=start_line, codec=codec)
    misses = 0  # consecutive native calls that mapped nothing
    pause = 0  # lines to read here before asking the core again
    while reader.next_document():
        if reader.at_line():
            newline = reader.find_newline()
            if newline >= 0 and pause:
                pause -= 1
            elif newline >= 0:  # this line and the next, natively
                run = reader.map_lines(core)
                if run is not None and run.start_lines:
                    misses = 0
                    yield MappedBatch(
                        run.event_ids,
                        run.docs,
                        run.ids,
                        run.record_ids,
                        source,
                        run.start_lines,
                        run.end_offsets,
                        run.others,
                    )
                    reader.consumed(run)
                    continue
                why = FallbackReason.UNDECODABLE.value if run is None else run.stop
                if why is not None:
                    stats.native_fallbacks[why] += 1
                misses += 1
                pause = min(1 << (misses - 1), 64) - 1
            got = reader.take_line(newline)
            if got is not None:
                yield got
                continue
        yield reader.take_document()

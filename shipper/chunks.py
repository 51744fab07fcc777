"""Chunking: queued documents cut into bulk bodies bounded by bytes and by count.

A chunk holds one item per document (its action and document lines, each ending in a newline)
with the acknowledgement key of each (source, record ordinal), and the ranges of records that
made no document but come after some of its documents (acknowledged with them). The chunker
knows nothing of sending: a chunk that is full, or cut by the caller, goes to ``emit``.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate, repeat
from typing import Any

import orjson

Ack = tuple[str, int]  # (source, 1-based record ordinal)


@dataclass
class Chunk:
    items: list[bytes] = field(default_factory=list)  # per item its action and document lines
    acks: list[Ack] = field(default_factory=list)
    #: ``(source, first, last)`` of records that made no document, after some of ``items``
    passed: list[tuple[str, int, int]] = field(default_factory=list)
    nbytes: int = 0
    started: float = 0.0  # monotonic time of the first item


class Chunker:
    """Cuts items into chunks of at most ``max_bytes`` (a larger item goes alone) and
    ``max_docs``; one producer thread."""

    def __init__(self, max_bytes: int, max_docs: int, emit: Callable[[Chunk], None]) -> None:
        self.max_bytes = max_bytes
        self.max_docs = max_docs
        self.emit = emit
        self.chunk = Chunk()

    def cut(self) -> None:
        """Emit the chunk being filled (empty ones are not)."""
        if self.chunk.items:
            chunk, self.chunk = self.chunk, Chunk()
            self.emit(chunk)

    def age(self) -> float:
        """Seconds the oldest item of the chunk being filled has waited (0 when empty)."""
        return time.monotonic() - self.chunk.started if self.chunk.items else 0.0

    def append(self, item: bytes, ack: Ack) -> None:
        c = self.chunk
        size = len(item)
        if c.items and c.nbytes + size > self.max_bytes:
            self.cut()
            c = self.chunk
        if not c.items:
            c.started = time.monotonic()
        c.items.append(item)
        c.acks.append(ack)
        c.nbytes += size
        if len(c.acks) >= self.max_docs:
            self.cut()

    def extend(self, items: list[bytes], source: str, first_seq: int) -> None:
        """:meth:`append` for consecutive records of ``source`` (``first_seq`` on), cut at the
        same places, by bisecting the cumulated sizes instead of one item at a time."""
        upto = list(accumulate(map(len, items), initial=0))  # bytes of items[:i]
        n, k = len(items), 0
        max_docs, max_bytes = self.max_docs, self.max_bytes
        while k < n:
            c = self.chunk
            if not c.items:
                c.started = time.monotonic()
            # the most items from k on that fit in this chunk's bounds (one at least if it is empty)
            last = min(n, k + max_docs - len(c.acks))
            j = bisect_right(upto, max_bytes - c.nbytes + upto[k], k, last + 1) - 1
            if j <= k:  # (below k: what the chunk holds is already over the bound)
                if c.items:  # the next item does not fit: this chunk is full
                    self.cut()
                    continue
                j = k + 1  # an item larger than the bound goes alone
            c.items.extend(items[k:j])
            c.acks.extend(zip(repeat(source), range(first_seq + k, first_seq + j)))
            c.nbytes += upto[j] - upto[k]
            k = j
            if len(c.acks) >= max_docs:
                self.cut()


# ------------------------------------------------------------------------- the lines of an item

_NOW: list[Any] = [-1, "", b""]  # (millisecond, its ISO string, as bytes): formatted once per ms


def now_parts() -> list[Any]:
    """``[millisecond, ISO text, ISO bytes]`` of the current UTC time."""
    ms = time.time_ns() // 1_000_000
    cached = _NOW
    if cached[0] != ms:
        moment = datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)
        text = moment.isoformat(timespec="milliseconds")[:-6] + "Z"
        cached = [ms, text, text.encode()]
        globals()["_NOW"] = cached  # one list swapped whole: a reader never sees a mixed pair
    return cached


def now_iso() -> str:
    """The current UTC time, ``yyyy-MM-ddTHH:mm:ss.SSSZ``."""
    return str(now_parts()[1])


def stamped(doc_json: bytes, now: bytes) -> bytes:
    """A native document with ``event.ingested`` = ``now`` spliced in as the first event field,
    as a bulk line (newline included)."""
    return b"".join((doc_json[:50], b'"ingested":"', now, b'",', doc_json[50:], b"\n"))


class ActionLines:
    """``{"create":{"_index":…,"_id":…}}`` lines, the head serialised once per index."""

    def __init__(self) -> None:
        self._heads: dict[str, bytes] = {}

    def __call__(self, index: str, doc_id: str) -> bytes:
        head = self._heads.get(index)
        if head is None:
            head = self._heads[index] = b'{"create":{"_index":' + orjson.dumps(index) + b',"_id":'
        return head + orjson.dumps(doc_id) + b"}}\n"

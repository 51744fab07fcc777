"""What flows from the readers to the sink: the options of a read, the sources to read, and the
stream of events the pipeline yields for them.

A stream is, per source in order: ``SourceStarted``, its documents (``Item``: one document;
``ItemRun``: consecutive documents the native core mapped, as JSON), then ``SourceEnded`` with
the source's record count. Whoever consumes it knows where each source starts and ends without
counting anything itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from shipper.checkpoint import ResumePoint
from shipper.readers.options import ReadOptions as ReadOptions  # re-exported: a stream is read with it


@dataclass(frozen=True, slots=True)
class SourceRead:
    """One source to read: skip its first ``skip`` records (already acknowledged), starting
    at ``start`` when a resume point is known; ``label``: what its error documents call it (a
    file read through this process's ``/proc/self/fd/N`` after it left its folder);
    ``through``: read the bytes through this handle's path instead of ``path`` (watch holds the
    file it stat'ed, whatever the name holds by the time it is read)."""

    path: str
    skip: int = 0
    start: ResumePoint | None = None
    label: str | None = None
    through: str | None = None

    @property
    def opened(self) -> str:
        """What is opened to read the source."""
        return self.through or self.path

    @property
    def base(self) -> int:
        """The seq of the record before the first one read."""
        return self.start.seq if self.start is not None else 0


@dataclass(frozen=True, slots=True)
class SourceStarted:
    """The ``index``-th source of the stream begins (its documents follow)."""

    index: int
    source: str


@dataclass(frozen=True, slots=True)
class SourceEnded:
    """The ``index``-th source was read to its end: ``records`` is the seq of its last record
    (everything the reader yielded, other providers included), ``held_back`` whether one more,
    a read error on the very last record, was held back (see ``ReadOptions.hold_last_error``)."""

    index: int
    source: str
    records: int
    held_back: bool = False


class Item:
    """One document ready for the sink. ``seq`` is the 1-based ordinal of the record within its
    source, over everything the reader yielded (other providers included), so ``skip`` can
    resume a source after its last acknowledged record. ``end_offset``/``end_line``: the
    record's resume point (see ``RawEvent``; None when unknown), for ``start``.

    A document the native core mapped arrives as its JSON (``doc_json``); ``doc`` decodes it on
    first use, and ``json()`` hands the bytes on untouched when nobody needed the dict."""

    __slots__ = (
        "_doc",
        "doc_id",
        "doc_json",
        "end_line",
        "end_offset",
        "index_suffix",
        "position",
        "seq",
        "source",
    )

    def __init__(
        self,
        doc: dict[str, Any] | None,
        doc_id: str,
        index_suffix: str,
        source: str,
        seq: int,
        position: str,
        end_offset: int | None = None,
        end_line: int | None = None,
        doc_json: bytes | None = None,
    ) -> None:
        if doc is None and doc_json is None:
            raise ValueError("an Item needs its document or its JSON")
        self._doc = doc
        self.doc_id = doc_id
        self.index_suffix = index_suffix
        self.source = source
        self.seq = seq
        self.position = position
        self.end_offset = end_offset
        self.end_line = end_line
        self.doc_json = doc_json if doc is None else None

    @property
    def doc(self) -> dict[str, Any]:
        doc = self._doc
        if doc is None:
            assert self.doc_json is not None
            doc = self._doc = orjson.loads(self.doc_json)
            self.doc_json = None
        return doc

    @property
    def is_error(self) -> bool:
        """A ``pipeline_error`` document (never one the native core mapped)."""
        if self._doc is None:
            return False
        return (self._doc.get("event") or {}).get("kind") == "pipeline_error"

    def json(self) -> bytes:
        """The document serialised (orjson), without a decode/encode round trip when possible."""
        if self._doc is None:
            assert self.doc_json is not None
            return self.doc_json
        return orjson.dumps(self._doc)

    def __repr__(self) -> str:
        where = f"{self.source!r}, seq={self.seq}, {self.position!r}"
        return f"Item({self.doc_id!r}, {self.index_suffix!r}, {where})"


@dataclass(slots=True)
class ItemRun:
    """Consecutive documents of one source the native core mapped (a stream with ``runs=True``
    yields these instead of one Item each): records ``first_seq`` … ``first_seq + len - 1``,
    every one a document (never an error), as JSON with its ``_id``, and for line-based sources
    each record's resume point. The shipper hands a run to the sink in one call."""

    source: str
    first_seq: int
    docs: list[bytes]
    doc_ids: list[str]
    end_offsets: list[int] | None
    end_lines: list[int] | None

    def __len__(self) -> int:
        return len(self.docs)

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.docs) - 1


#: Documents in a stream: one, or a run of them.
Docs = Item | ItemRun
Event = SourceStarted | Docs | SourceEnded

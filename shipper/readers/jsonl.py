"""JSON reader: winlogbeat / Elastic Agent documents and NXLog documents.

Accepted layouts: JSON lines, a JSON array of documents (streamed element by element), one
(possibly pretty-printed) object, or objects simply concatenated. The stream is decoded block
by block; a line is tried with orjson first and anything else goes through
``json.JSONDecoder.raw_decode``, so memory is bounded by the largest document. A broken
document yields a ReadError (``line N``, or ``element N`` inside an array) and reading
resumes on the next line. What a document becomes is ``shipper.readers.json_events``.

:class:`JsonReader` is the reading itself, one step at a time: :func:`read_json` takes every
step here; the native core (``shipper.native.jsonl``) takes the same steps and maps whole runs
of lines where this reader would take its fast path.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import IO

import orjson

from shipper.raw import RawEvent, ReadError
from shipper.readers._common import decoded
from shipper.readers.json_events import (
    NXLOG_EVENT_TYPES,
    NXLOG_METADATA,
    event_from_document,
    event_from_nxlog,
    event_from_winlogbeat,
)

__all__ = [
    "JSON_BLOCK_SIZE",
    "MAX_DOCUMENT_CHARS",
    "MAX_DOCUMENT_ENV",
    "NXLOG_EVENT_TYPES",
    "NXLOG_METADATA",
    "JsonReader",
    "event_from_document",
    "event_from_nxlog",
    "event_from_winlogbeat",
    "max_document_chars",
    "read_json",
]

#: Largest single document accepted before the reader gives up on it and resyncs; the
#: environment variable raises it for a run.
MAX_DOCUMENT_CHARS = 16 * 1024 * 1024
MAX_DOCUMENT_ENV = "SYSMON_MAX_RECORD_CHARS"


def max_document_chars() -> int:
    """The record size limit: ``SYSMON_MAX_RECORD_CHARS`` when set to a positive integer."""
    raw = os.environ.get(MAX_DOCUMENT_ENV, "")
    try:
        value = int(raw)
    except ValueError:
        return MAX_DOCUMENT_CHARS
    return value if value > 0 else MAX_DOCUMENT_CHARS


#: bytes read at a time: a native call maps what one block holds, so bigger blocks spread the
#: per-call work of the reader, pipeline and sink over more documents (~500 winlogbeat lines)
JSON_BLOCK_SIZE = 1 << 20

_NEXT_ELEMENT = re.compile(r"\}\s*,\s*(?=\{)")


class JsonReader:
    """One JSON stream being read: the decoded text held (``buf``), where the next document
    starts (``pos``, on line ``line``; ``where`` names it) and the byte counter
    (``counter.offset`` is the file offset of ``buf[mark]``).

    ``start_offset``/``start_line``: where ``stream`` starts in its file (a JSON-lines record's
    ``end_offset``/``end_line``), with ``codec`` the file's BOM-less codec when that is not
    the start (None: not a file, no offsets). ``tap``: each block of bytes read is appended."""

    def __init__(
        self,
        stream: IO[bytes],
        source: str,
        *,
        start_offset: int | None = 0,
        start_line: int = 1,
        codec: str | None = None,
        tap: list[bytes] | None = None,
    ) -> None:
        self.source = source
        self.limit = max_document_chars()
        self.blocks, self.counter = decoded(stream, start_offset, codec, tap, JSON_BLOCK_SIZE)
        self.decoder = json.JSONDecoder()
        self.line = start_line  # line number at buf[pos]
        self.mark = 0
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.depth = 0  # > 0 inside a top-level array
        self.element = 0
        self.resync = False  # after a broken document: skip lines until one opens a document
        self.where = ""

    def more(self) -> bool:
        """Read the next block into ``buf`` (what lies before ``pos`` is dropped)."""
        if self.eof:
            return False
        try:
            block = next(self.blocks)
        except StopIteration:
            self.eof = True
            return False
        self.counter.advance(self.buf[self.mark : self.pos])
        self.buf = self.buf[self.pos :] + block
        self.pos = self.mark = 0
        return True

    def next_document(self) -> bool:
        """Move ``pos`` to the start of the next document, past blanks, array punctuation and
        the lines skipped after a broken document; False at the end of the stream."""
        while True:
            buf, pos, line, depth = self.buf, self.pos, self.line, self.depth
            size = len(buf)
            while pos < size and buf[pos] in " \t\r\n,\ufeff" and (buf[pos] != "," or depth):
                if buf[pos] == "\n":
                    line += 1
                pos += 1
            self.pos, self.line = pos, line
            if pos >= size:
                if self.more():
                    continue
                return False
            char = buf[pos]
            if self.resync:
                if char not in "{[":
                    cut = buf.find("\n", pos)
                    while cut < 0 and self.more():
                        cut = self.buf.find("\n", self.pos)
                    self.pos = len(self.buf) if cut < 0 else cut
                    continue
                self.resync = False
            if char == "[" and not depth:
                self.depth, self.element = 1, 0
                self.pos += 1
                continue
            if char == "]" and depth:
                self.depth = 0
                self.pos += 1
                continue
            if depth:
                self.where = f"element {self.element}"
                self.element += 1
            else:
                self.where = f"line {line}"
            return True

    def at_line(self) -> bool:
        """Whether the document starts a line of JSON lines (a ``{`` at the top level)."""
        return not self.depth and self.buf[self.pos] == "{"

    def find_newline(self) -> int:
        """The index in ``buf`` of the newline that ends the document's line, reading on up to
        the size limit; -1 when there is none."""
        newline = self.buf.find("\n", self.pos)
        while newline < 0 and len(self.buf) - self.pos <= self.limit and self.more():
            newline = self.buf.find("\n", self.pos)
        return newline

    def take_line(self, newline: int) -> RawEvent | ReadError | None:
        """The document of the line up to ``newline`` (-1: the rest of ``buf``) if the line is
        exactly one JSON value, else None (read it with :meth:`take_document`)."""
        buf, pos = self.buf, self.pos
        stop = newline if newline >= 0 else len(buf)
        candidate = buf[pos:stop]
        try:
            doc = orjson.loads(candidate)
        except orjson.JSONDecodeError:
            return None
        if newline >= 0:  # the record ends past its newline
            stop += 1
            self.line += 1
        self.counter.advance(buf[self.mark : stop])
        self.mark = self.pos = stop
        end = self.counter.offset if newline >= 0 or self.eof else None
        line = self.line if end is not None else None
        return event_from_document(doc, self.source, self.where, candidate.rstrip("\r"), end, line)

    def take_document(self) -> RawEvent | ReadError:
        """The document at ``pos`` the careful way: one value, reading on while it is merely
        incomplete; a broken one is a ReadError and reading resumes after it."""
        while True:
            buf, pos = self.buf, self.pos
            try:
                doc, end = self.decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                # JSON strings cannot hold a raw newline: an error after the last newline of
                # the buffer may just be a value cut by the block boundary
                if buf.find("\n", exc.pos) < 0 and len(buf) - pos <= self.limit and self.more():
                    continue
                return self._broken(exc)
            text = buf[pos:end]
            self.line += text.count("\n")
            self.pos = end
            return event_from_document(doc, self.source, self.where, text)

    def _broken(self, exc: json.JSONDecodeError) -> ReadError:
        buf, pos, limit = self.buf, self.pos, self.limit
        bad_line = self.line + buf.count("\n", pos, exc.pos)
        too_long = buf.find("\n", pos) < 0 and len(buf) - pos > limit
        if self.depth:  # resume at the next element boundary
            found = _NEXT_ELEMENT.search(buf, exc.pos)
            cut = found.end() if found else len(buf)
        else:  # resume on the line after the document's first line
            cut = buf.find("\n", pos)
            cut = len(buf) if cut < 0 else cut
            self.resync = True
        what = f"malformed JSON: {exc.msg} (line {bad_line}, column {exc.colno})"
        if too_long:
            what = (
                f"record longer than the limit of {limit} characters, not read "
                f"(set {MAX_DOCUMENT_ENV} to raise it)"
            )
        error = ReadError("json", what, self.source, self.where, buf[pos:cut][:4096].rstrip(", \r\n"))
        self.line += buf.count("\n", pos, cut)
        self.pos = cut
        return error


def read_json(
    stream: IO[bytes],
    source: str,
    *,
    start_offset: int | None = 0,
    start_line: int = 1,
    codec: str | None = None,
) -> Iterator[RawEvent | ReadError]:
    """Yield one RawEvent (or ReadError) per JSON document in ``stream``; ``start_offset``,
    ``start_line`` and ``codec`` as for :class:`JsonReader`. Records of JSON lines carry
    ``end_offset``: just past their line's newline."""
    reader = JsonReader(stream, source, start_offset=start_offset, start_line=start_line, codec=codec)
    while reader.next_document():
        if reader.at_line():  # JSON lines: try the whole line at once
            got = reader.take_line(reader.find_newline())
            if got is not None:
                yield got
                continue
        yield reader.take_document()

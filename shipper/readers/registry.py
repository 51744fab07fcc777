"""Input form → reader, format detection, and ``open_source``: the one entry point (``open_input``
and ``read_opened`` are its two halves, for a caller that reads some forms another way)."""

from __future__ import annotations

import codecs
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from shipper.checkpoint import ResumePoint
from shipper.errors import InputError
from shipper.inputs import STDIN
from shipper.raw import RawEvent, ReadError
from shipper.readers._common import decoding, peekable, sniff_encoding
from shipper.readers.evtx import CHUNK_MAGIC, FILE_MAGIC, EvtxBackend, read_evtx
from shipper.readers.jsonl import read_json
from shipper.readers.options import DEFAULT_OPTIONS, ReadOptions
from shipper.readers.text import read_text
from shipper.readers.xml import read_xml

STDIN_NAME = "<stdin>"
HEAD_SIZE = 64


@dataclass(frozen=True, slots=True)
class Opened:
    """What a reader gets: an open binary stream, and the path when there is one."""

    stream: IO[bytes]
    path: Path | None
    source: str
    host: str | None = None
    evtx_backend: EvtxBackend = "auto"
    evtx_threads: int | None = None
    start_offset: int | None = 0  # None: not a file (standard input), records get no offsets
    start_line: int = 1
    codec: str | None = None  # the file's BOM-less codec when the stream does not start at 0
    form: str = ""  # the input form (a READERS key)


Reader = Callable[[Opened], Iterator[RawEvent | ReadError]]
_T = TypeVar("_T")


def _evtx(opened: Opened) -> Iterator[RawEvent | ReadError]:
    assert opened.path is not None  # open_source refuses EVTX without a path
    return read_evtx(
        opened.path,
        source=opened.source,
        backend=opened.evtx_backend,
        threads=opened.evtx_threads,
    )


def _line_based(read: Callable[..., Iterator[RawEvent | ReadError]], *, with_host: bool = False) -> Reader:
    """The reader of a line-based form: it starts at ``Opened.start_offset``/``start_line``."""

    def reader(opened: Opened) -> Iterator[RawEvent | ReadError]:
        host = (opened.host,) if with_host else ()
        return read(
            opened.stream,
            opened.source,
            *host,
            start_offset=opened.start_offset,
            start_line=opened.start_line,
            codec=opened.codec,
        )

    return reader


READERS: dict[str, Reader] = {
    "evtx": _evtx,
    "xml": _line_based(read_xml),
    "json": _line_based(read_json),
    "text": _line_based(read_text, with_host=True),
}

#: Formats that need a seekable file on disk (not standard input).
NEEDS_PATH: set[str] = {"evtx"}
#: Line-based formats whose records carry ``end_offset``: a read may start at one.
RESUMABLE: set[str] = {"xml", "json", "text"}


def register(name: str, reader: Reader, *, needs_path: bool = False, resumable: bool = False) -> None:
    """Add (or replace) the reader for input form ``name`` (``resumable``: it honours
    ``Opened.start_offset``/``start_line``/``codec`` and sets ``end_offset``)."""
    READERS[name] = reader
    if needs_path:
        NEEDS_PATH.add(name)
    else:
        NEEDS_PATH.discard(name)
    if resumable:
        RESUMABLE.add(name)
    else:
        RESUMABLE.discard(name)


_FIRST_CHUNK = 4096  # the EVTX file header is one 4 KiB block; chunks follow


def detect_format(path_or_head: str | Path | bytes) -> str:
    """The input form of a file (by path) or of its first bytes: EVTX by its ``ElfFile`` magic or,
    when the file header is damaged, by the first chunk's ``ElfChnk`` magic at offset 4096; then
    by the first non-blank character: ``<`` → xml, ``{``/``[`` → json, else text."""
    chunk_head = b""
    if isinstance(path_or_head, bytes):
        head = path_or_head
        chunk_head = head[_FIRST_CHUNK : _FIRST_CHUNK + len(CHUNK_MAGIC)]
    else:
        try:
            with open(path_or_head, "rb") as handle:
                head = handle.read(HEAD_SIZE)
                if not head.startswith(FILE_MAGIC) and handle.seekable():
                    handle.seek(_FIRST_CHUNK)
                    chunk_head = handle.read(len(CHUNK_MAGIC))
        except OSError as exc:
            raise InputError(f"cannot open: {exc.strerror or exc}", source=str(path_or_head)) from exc
    if head.startswith(FILE_MAGIC) or chunk_head == CHUNK_MAGIC:
        return "evtx"
    encoding = sniff_encoding(head)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head)
    text = text.lstrip("\ufeff \t\r\n")
    if text.startswith("<"):
        return "xml"
    if text.startswith(("{", "[")):
        return "json"
    return "text"


def open_source(
    path: str | Path,
    options: ReadOptions = DEFAULT_OPTIONS,
    *,
    start: ResumePoint | None = None,
    evtx_threads: int | None = None,
    name: str | None = None,
) -> Iterator[RawEvent | ReadError]:
    """Read one input (a file path, or ``-`` for standard input) as ``options`` say:
    :func:`open_input`, then :func:`read_opened`. Raises InputError at once when the source
    cannot be opened at all or the format is unknown; everything after that arrives in the
    stream."""
    return read_opened(open_input(path, options, start=start, evtx_threads=evtx_threads, name=name))


def read_opened(opened: Opened) -> Iterator[RawEvent | ReadError]:
    """The records of a source :func:`open_input` opened, by its form's reader (the file is
    closed when they end)."""
    return closed_after(opened, READERS[opened.form](opened))


def closed_after(opened: Opened, events: Iterator[_T]) -> Iterator[_T]:
    """``events`` read from ``opened``, its file closed when they end (standard input stays
    open)."""
    return events if opened.path is None else _closing(opened.stream, events)


def open_input(
    path: str | Path,
    options: ReadOptions = DEFAULT_OPTIONS,
    *,
    start: ResumePoint | None = None,
    evtx_threads: int | None = None,
    name: str | None = None,
) -> Opened:
    """Open one input (a file path, or ``-`` for standard input) and tell its form
    (``options.fmt``, or detected from content when None): what a reader reads. Raises
    InputError when the source cannot be opened or the format is unknown.

    ``start``: resume a line-based file (JSON lines, event XML, rendered text) at a record's
    ``end_offset``/``end_line``; the format and encoding are still detected from the file's
    head. Any other source refuses an offset > 0 (InputError).
    ``evtx_threads``: threads the fast EVTX parser may use (None: its default, all cores).
    ``name``: what errors call the source (default ``path``), for a file read through an open
    handle (``/proc/self/fd/N``) after it left its folder."""
    fmt, host, evtx_backend = options.fmt, options.host, options.evtx_backend
    start_offset, start_line = (start.offset, start.line) if start is not None else (0, 1)
    label = name or str(path)
    if fmt is not None and fmt not in READERS:
        known = ", ".join(sorted(READERS))
        raise InputError(f"unknown input format {fmt!r} (known: {known})", source=str(path))
    if start_offset < 0 or start_line < 1:
        raise InputError(f"bad start position {start_offset} (line {start_line})", source=str(path))
    if str(path) == STDIN:
        if start_offset:
            raise InputError("standard input cannot be read from an offset", source=STDIN_NAME)
        stream = peekable(sys.stdin.buffer)
        chosen = fmt or detect_format(stream.peek(HEAD_SIZE)[:HEAD_SIZE])
        if chosen in NEEDS_PATH:
            raise InputError(
                f"{chosen} input cannot be read from standard input; give a file", source=STDIN_NAME
            )
        return Opened(stream, None, STDIN_NAME, host, evtx_backend, evtx_threads, None, form=chosen)
    where = Path(path)
    try:
        handle = open(where, "rb")  # noqa: SIM115 - closed by _closing when the stream ends
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror or exc}", source=label) from exc
    codec: str | None = None
    try:
        head = handle.peek(HEAD_SIZE)[:HEAD_SIZE]
        chosen = fmt or detect_format(head)
        if chosen != "evtx" and not fmt and handle.seekable():  # a damaged header: try the chunks
            chunk = os.pread(handle.fileno(), len(CHUNK_MAGIC), _FIRST_CHUNK)
            chosen = "evtx" if chunk == CHUNK_MAGIC else chosen
        if start_offset:
            if chosen not in RESUMABLE:
                raise InputError(
                    f"{chosen} input cannot be read from an offset (only {', '.join(sorted(RESUMABLE))})",
                    source=label,
                )
            codec = decoding(head)[1]
            handle.seek(start_offset)
    except InputError:
        handle.close()
        raise
    except OSError as exc:
        handle.close()
        raise InputError(f"cannot read: {exc.strerror or exc}", source=label) from exc
    return Opened(
        handle, where, label, host, evtx_backend, evtx_threads, start_offset, start_line, codec, chosen
    )


def _closing(handle: IO[bytes], events: Iterator[_T]) -> Iterator[_T]:
    try:
        yield from events
    finally:
        handle.close()

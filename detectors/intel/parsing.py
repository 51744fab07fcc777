"""Parsing a feed: a text stream, or a file (plain, gzip, a zip holding one file, a MISP feed
folder), through the format registry (:mod:`.formats`; ``auto`` detects the format from the
first lines). Parsers of line formats keep memory flat in the size of the feed; the JSON document
formats (``stix``, ``misp``) load their one document.
"""

from __future__ import annotations

import gzip
import io
import itertools
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import IO, cast

from shipper.errors import InputError

from .formats import detect_format, get_format
from .formats.base import ParseContext
from .formats.misp import parse_misp_feed
from .limits import CappedReader, ReadLimits, bounded_lines
from .model import Indicator, ParseIssue, ParseItem, ParseOptions

HEAD_LINES = 64  # what auto-detection peeks at
HEAD_CHARS = 16384


def parse(
    stream: Iterable[str],
    fmt: str = "auto",
    *,
    source_name: str,
    options: ParseOptions | None = None,
    filename: str | None = None,
) -> Iterator[ParseItem]:
    """Parse a text stream (any iterable of lines; CRLF and a BOM are fine) as ``fmt``.

    Yields indicators and issues as it reads; a bad line becomes a :class:`ParseIssue`, never an
    exception. ``fmt="auto"`` peeks at the first lines to detect the format.
    """
    lines = _strip_bom(iter(stream))
    if fmt == "auto":
        head = list(itertools.islice(lines, HEAD_LINES))
        fmt = detect_format("".join(head)[:HEAD_CHARS], filename)
        lines = itertools.chain(head, lines)
    spec = get_format(fmt)
    ctx = ParseContext(source_name, options)
    items = spec.parser(lines, ctx)
    return merge_duplicates(items) if spec.merge else items


def parse_path(
    path: str | os.PathLike[str] | bytes,
    fmt: str = "auto",
    *,
    source_name: str | None = None,
    options: ParseOptions | None = None,
    limits: ReadLimits | None = None,
) -> Iterator[ParseItem]:
    """Parse a feed file (plain, gzip, or a zip holding one file), raw bytes, or a MISP feed
    folder (``manifest.json`` + ``<uuid>.json``), within ``limits`` (defaults: :class:`ReadLimits`)."""
    if not isinstance(path, bytes):
        p = Path(path)
        name = source_name or p.name
        if p.is_dir() or (p.name == "manifest.json" and fmt in ("auto", "misp")):
            return parse_misp_feed(p if p.is_dir() else p.parent, source_name=name, options=options)
    else:
        name = source_name or "<bytes>"
    return _parse_opened(path, fmt, name, options, limits or ReadLimits())


def _parse_opened(
    path: str | os.PathLike[str] | bytes,
    fmt: str,
    name: str,
    options: ParseOptions | None,
    limits: ReadLimits,
) -> Iterator[ParseItem]:
    with open_feed(path, limits) as (stream, member):
        lines = bounded_lines(stream, limits, name)
        yield from parse(lines, fmt, source_name=name, options=options, filename=member)


@contextmanager
def open_feed(
    src: str | os.PathLike[str] | bytes, limits: ReadLimits | None = None
) -> Iterator[tuple[IO[str], str | None]]:
    """Open a feed as text: a plain file, gzip, or a zip archive holding one file, reading at
    most ``limits.max_bytes`` decompressed bytes.

    Yields ``(text stream, file name)``. Decoding is UTF-8 (a BOM is dropped) with undecodable
    bytes replaced, so one bad byte spoils one line, not the load.
    """
    if isinstance(src, bytes):
        raw: IO[bytes] = io.BytesIO(src)
        filename: str | None = None
    else:
        raw = open(src, "rb")  # noqa: SIM115 - closed below
        filename = Path(src).name
    cap = limits or ReadLimits()
    try:
        magic = raw.read(4)
        raw.seek(0)
        if magic.startswith(b"PK\x03\x04"):
            with zipfile.ZipFile(raw) as zf:
                member = _zip_member(zf, filename)
                with zf.open(member) as inner:
                    yield _text(inner, cap, filename), Path(member.filename).name
            return
        if magic.startswith(b"\x1f\x8b"):
            with gzip.GzipFile(fileobj=raw) as inner_gz:
                shown = filename.removesuffix(".gz") if filename else None
                yield _text(cast(IO[bytes], inner_gz), cap, filename), shown
            return
        yield _text(raw, cap, filename), filename
    finally:
        raw.close()


def _text(binary: IO[bytes], limits: ReadLimits, source: str | None) -> IO[str]:
    capped = io.BufferedReader(CappedReader(binary, limits, source), _BUFFER)
    wrapper = io.TextIOWrapper(capped, encoding="utf-8-sig", errors="replace", newline="")
    return wrapper


_BUFFER = 1 << 16


def _zip_member(zf: zipfile.ZipFile, filename: str | None) -> zipfile.ZipInfo:
    files = [i for i in zf.infolist() if not i.is_dir()]
    if len(files) != 1:
        data = [i for i in files if i.filename.lower().endswith((".csv", ".txt", ".json"))]
        if len(data) != 1:
            raise InputError(
                f"zip archive holds {len(files)} files; expected exactly one feed file", source=filename
            )
        files = data
    return files[0]


def _strip_bom(lines: Iterator[str]) -> Iterator[str]:
    first = next(lines, None)
    if first is None:
        return
    yield first.lstrip("\ufeff")
    yield from lines


def merge_duplicates(items: Iterable[ParseItem]) -> Iterator[ParseItem]:
    """Collapse indicators with the same ``(type, value)``: earliest ``first_seen``, latest
    ``last_seen``, union of ports and tags, highest confidence, first line; a listed value wins
    over a derived one. Issues pass through at once; indicators come at the end in order of first
    appearance. Memory grows with the number of distinct indicators."""
    merged: dict[tuple[str, str], Indicator] = {}
    for item in items:
        if isinstance(item, ParseIssue):
            yield item
            continue
        old = merged.get(item.key)
        merged[item.key] = item if old is None else _merge(old, item)
    yield from merged.values()


def _merge(a: Indicator, b: Indicator) -> Indicator:
    def pick(x: str | None, y: str | None, f: Callable[[str, str], str]) -> str | None:
        return f(x, y) if x and y else x or y

    confidences = [c for c in (a.confidence, b.confidence) if c is not None]
    return replace(
        a,
        derived=a.derived and b.derived,
        first_seen=pick(a.first_seen, b.first_seen, min),
        last_seen=pick(a.last_seen, b.last_seen, max),
        confidence=max(confidences) if confidences else None,
        description=a.description or b.description,
        malware=a.malware or b.malware,
        reference=a.reference or b.reference,
        tags=tuple(dict.fromkeys((*a.tags, *b.tags))),
        ports=tuple(sorted({*a.ports, *b.ports})),
        extra=tuple(sorted({**dict(b.extra), **dict(a.extra)}.items())),
    )


__all__ = ["merge_duplicates", "open_feed", "parse", "parse_path"]

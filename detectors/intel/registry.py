"""Feed formats by name: registration, detection from content, parsing, opening files.

Every parser is a function ``(lines, ctx) -> Iterator[Indicator | ParseIssue]`` registered with
:func:`register`; :func:`parse` looks it up by name (or detects it with :func:`detect_format`)
and streams the stream's lines through it. Parsers of line formats keep memory flat in the size
of the feed; the JSON document formats (``stix``, ``misp``) load their one document.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, TypedDict, cast

from shipper.errors import InputError

from .limits import CappedReader, ReadLimits, bounded_lines
from .model import (
    Indicator,
    IndicatorType,
    IssueKind,
    ParseIssue,
    ParseItem,
    ParseOptions,
    infer,
    normalise,
    normalise_url,
    url_host,
)

Sniffer = Callable[[str, "str | None"], bool]
HEAD_LINES = 64
HEAD_CHARS = 16384
DERIVED_MEMORY = 100_000  # URL hosts remembered per parse to derive each host once


class Meta(TypedDict, total=False):
    """Optional indicator fields a parser fills from a feed row."""

    first_seen: str | None
    last_seen: str | None
    confidence: int | None
    description: str | None
    malware: str | None
    tags: tuple[str, ...]
    reference: str | None
    ports: tuple[int, ...]
    extra: tuple[tuple[str, str], ...]


class ParseContext:
    """What a parser knows about the feed it reads; mutable per-parse state lives here.

    A URL's host is derived once per parse (up to ``DERIVED_MEMORY`` distinct hosts, then the
    memory starts over, so a huge feed may repeat a derived host — the indicators index is keyed
    by (feed, type, value), so a repeat costs nothing) and never when the same line lists it.
    """

    __slots__ = ("_line", "_line_keys", "_seen_derived", "location", "options", "source_name")

    def __init__(
        self, source_name: str, options: ParseOptions | None = None, *, location: str | None = None
    ) -> None:
        self.source_name = source_name
        self.options = options or ParseOptions()
        self.location = location
        self._seen_derived: set[tuple[str, str]] = set()  # URL hosts already derived
        self._line = 0
        self._line_keys: set[tuple[str, str]] = set()  # listed on the current line

    def issue(self, line: int, message: str, raw: str = "", kind: IssueKind = "invalid") -> ParseIssue:
        return ParseIssue(
            line=line,
            message=message,
            raw=raw.rstrip("\r\n"),
            kind=kind,
            source=self.location or self.source_name,
        )

    def indicator(self, kind: IndicatorType, value: str, line: int, meta: Meta | None = None) -> Indicator:
        """An indicator with the feed's name as provider and the default confidence applied."""
        ind = Indicator(type=kind, value=value, line=line, provider=self.source_name, **(meta or {}))
        if ind.confidence is None and self.options.confidence is not None:
            ind = replace(ind, confidence=self.options.confidence)
        return ind

    def emit(
        self, kind: IndicatorType | None, text: str, line: int, raw: str, meta: Meta | None = None
    ) -> Iterator[ParseItem]:
        """Normalise ``text`` (inferring its type when ``kind`` is None, or forcing the feed's
        ``force_type``) and yield the indicator — plus a URL's host — or an issue."""
        kind = self.options.force_type or kind
        host: tuple[IndicatorType, str] | None = None
        try:
            if kind == "url":
                value, host = normalise_url(text)
            elif kind is None:
                kind, value = infer(text)
                if kind == "url":
                    host = url_host(value)
            else:
                kind, value = normalise(text, kind)
        except ValueError as exc:
            yield self.issue(line, str(exc), raw)
            return
        ind = self.indicator(kind, value, line, meta)
        if line != self._line:
            self._line, self._line_keys = line, set()
        self._line_keys.add(ind.key)
        yield ind
        if (
            host is not None
            and self.options.derive_hosts
            and host not in self._seen_derived
            and host not in self._line_keys
        ):
            if len(self._seen_derived) >= DERIVED_MEMORY:
                self._seen_derived.clear()  # bounded memory; a repeat is harmless downstream
            self._seen_derived.add(host)
            yield replace(ind, type=host[0], value=host[1], derived=True)


Parser = Callable[[Iterable[str], ParseContext], Iterator[ParseItem]]


@dataclass(frozen=True, slots=True)
class FormatSpec:
    """A registered feed format. Lower ``priority`` is tried first by :func:`detect_format`;
    ``merge`` collapses duplicate ``(type, value)`` within one feed (see :func:`merge_duplicates`)."""

    name: str
    parser: Parser
    sniff: Sniffer | None = None
    priority: int = 100
    description: str = ""
    merge: bool = False
    aliases: tuple[str, ...] = field(default=())


_FORMATS: dict[str, FormatSpec] = {}
_ALIASES: dict[str, str] = {}


def register(
    name: str,
    *,
    sniff: Sniffer | None = None,
    priority: int = 100,
    description: str = "",
    merge: bool = False,
    aliases: tuple[str, ...] = (),
) -> Callable[[Parser], Parser]:
    """Decorator registering a parser under ``name`` (and ``aliases``)."""

    def decorate(parser: Parser) -> Parser:
        if name in _FORMATS or name in _ALIASES:
            raise ValueError(f"feed format {name!r} registered twice")
        _FORMATS[name] = FormatSpec(name, parser, sniff, priority, description, merge, aliases)
        for alias in aliases:
            _ALIASES[alias] = name
        return parser

    return decorate


def formats() -> list[str]:
    """Registered format names, in detection order."""
    return [spec.name for spec in sorted(_FORMATS.values(), key=lambda s: (s.priority, s.name))]


def get_format(name: str) -> FormatSpec:
    spec = _FORMATS.get(_ALIASES.get(name, name))
    if spec is None:
        known = ", ".join(sorted([*_FORMATS, "auto"]))
        raise InputError(f"unknown feed format {name!r} (known: {known})")
    return spec


def detect_format(head: str, filename: str | None = None) -> str:
    """The format of a feed from its first lines (and its file name as a hint).

    Tries each registered sniffer in priority order; a plain list is the fallback.
    """
    head = head.lstrip("\ufeff")
    for spec in sorted(_FORMATS.values(), key=lambda s: (s.priority, s.name)):
        if spec.sniff is not None and spec.sniff(head, filename):
            return spec.name
    return "plain"


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
            from .misp import parse_misp_feed

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


# built-in formats register themselves on import
def first_lines(text: str, pattern: re.Pattern[str]) -> dict[str, int]:
    """Line number of the first match of ``pattern``'s group 1 for each distinct value, in one
    pass — how JSON feeds (STIX ids, MISP uuids) point their issues at a line."""
    lines: dict[str, int] = {}
    line, last = 1, 0
    for m in pattern.finditer(text):
        line += text.count("\n", last, m.start())
        last = m.start()
        lines.setdefault(m.group(1), line)
    return lines


def load_json_document(lines: Iterable[str], ctx: ParseContext) -> tuple[str, Any] | ParseIssue:
    """A whole-document JSON feed (STIX bundle, MISP event): its text and parsed value, or the
    issue naming the line where it is broken."""
    text = "".join(lines)
    try:
        return text, json.loads(text)
    except ValueError as exc:
        return ctx.issue(getattr(exc, "lineno", 1), f"not a JSON document: {exc}")


from . import misp as _misp  # noqa: E402
from . import parsers as _parsers  # noqa: E402
from . import stix as _stix  # noqa: E402

__all__ = [
    "FormatSpec",
    "Meta",
    "ParseContext",
    "Parser",
    "detect_format",
    "formats",
    "get_format",
    "merge_duplicates",
    "open_feed",
    "parse",
    "parse_path",
    "register",
]
_BUILTIN = (_misp, _parsers, _stix)

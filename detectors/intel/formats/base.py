"""What every feed format module shares: the parse context, the format record and the sniffing
and JSON-document helpers.

A format is a :class:`FormatSpec`: a parser ``(lines, ctx) -> Iterator[Indicator | ParseIssue]``
plus an optional sniffer ``(head, filename) -> bool`` for detection. Format modules import only
this module and :mod:`detectors.intel.model`, never the package, so any of them can be imported
first.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict

from ..model import (
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
DERIVED_MEMORY = 100_000  # URL hosts remembered per parse to derive each host once
HEADER_SCAN = 40  # lines of a feed's head searched for a CSV header


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
    """A feed format. Lower ``priority`` is tried first by detection; ``merge`` collapses
    duplicate ``(type, value)`` within one feed (``detectors.intel.parsing.merge_duplicates``)."""

    name: str
    parser: Parser
    sniff: Sniffer | None = None
    priority: int = 100
    description: str = ""
    merge: bool = False
    aliases: tuple[str, ...] = field(default=())


# ---------------------------------------------------------------------------------- sniffing
def head_lines(head: str) -> list[str]:
    """The non-blank lines of a feed's head, stripped."""
    return [ln.strip() for ln in head.splitlines() if ln.strip()]


def data_lines(head: str) -> list[str]:
    """:func:`head_lines` without ``#``/``;`` comment lines."""
    return [ln for ln in head_lines(head) if ln[0] not in "#;"]


def header_cells(line: str) -> list[str]:
    """Cells of a (possibly commented) CSV header line, lower-case and unquoted."""
    text = line.lstrip("#").strip()
    row = next(csv.reader([text], skipinitialspace=True), [])
    return [c.strip().strip('"').lower() for c in row]


def has_header(head: str, *names: str) -> bool:
    """Whether one of the first lines is a CSV header starting with ``names``."""
    for line in head_lines(head)[:HEADER_SCAN]:
        cells = header_cells(line)
        if cells[: len(names)] == list(names):
            return True
    return False


# ----------------------------------------------------------------------- JSON document feeds
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

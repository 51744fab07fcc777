"""``hunt stack``: the seed's ``stats count by Image, Hashes``, over any aggregatable fields.

One composite aggregation over the selected events, paged by ``after_key`` (any number of
distinct values, memory bounded by the page), with per bucket the first and last ``@timestamp``
and the number of hosts. Each page's values are looked up in the allowlists and intel feeds in
batches (:func:`detectors.intel.lookup.find_indicators`: one query per kind and field per page,
never one per value).

A row is *known* (allowlisted) when at least one allowlist covers one of its fields' indicator
types and every covered field's value is listed: with only a hash allowlist loaded, the hash
decides; with an image-path allowlist as well, a listed path with an unlisted hash (a replaced
binary) stays unknown.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from elasticsearch import Elasticsearch

from detectors.builders.context import ms_to_iso
from detectors.hunt.output import Column
from detectors.hunt.scope import Scope
from detectors.intel.lookup import FIELD_TYPES, find_indicators, manifests
from detectors.query import events_pattern, get_path, iter_composite

Order = Literal["count", "rare", "value"]
ORDERS: tuple[Order, ...] = ("count", "rare", "value")
DEFAULT_BY = ("process.executable", "process.hash.sha256")
PAGE_SIZE = 1000
OnPage = Callable[[int], None]


class StackError(ValueError):
    """A stack request the events cannot answer (e.g. a field that is not aggregatable)."""


@dataclass(frozen=True, slots=True)
class StackRequest:
    fields: tuple[str, ...] = DEFAULT_BY
    scope: Scope = field(default_factory=Scope)
    unknown_only: bool = False
    order: Order = "count"
    limit: int | None = None
    lookups: bool = True
    page_size: int = PAGE_SIZE


@dataclass(frozen=True, slots=True)
class StackRow:
    values: tuple[Any, ...]
    count: int
    hosts: int
    first_seen: str | None
    last_seen: str | None
    allow: tuple[str, ...] = ()
    intel: tuple[str, ...] = ()
    known: bool = False

    def to_row(self, fields: Sequence[str]) -> dict[str, Any]:
        row: dict[str, Any] = dict(zip(fields, self.values, strict=True))
        row.update(
            count=self.count,
            hosts=self.hosts,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            allowlisted=self.known,
            allow=list(self.allow),
            intel=list(self.intel),
        )
        return row


@dataclass(slots=True)
class StackTotals:
    buckets: int = 0
    events: int = 0
    known: int = 0
    intel: int = 0
    notes: list[str] = field(default_factory=list)


def columns(fields: Sequence[str]) -> list[Column]:
    cols = [Column(f, f, width=72) for f in fields]
    cols += [
        Column("count", "COUNT", align="right"),
        Column("hosts", "HOSTS", align="right"),
        Column("first_seen", "FIRST SEEN"),
        Column("last_seen", "LAST SEEN"),
        Column("allowlisted", "allowlisted", in_table=False),
        Column("allow", "ALLOWLIST", width=40),
        Column("intel", "INTEL", width=40),
    ]
    return cols


def check_fields(es: Elasticsearch, prefix: str, fields: Sequence[str]) -> None:
    """Every field must be aggregatable in the event indices (a composite over an unmapped
    field silently finds nothing)."""
    caps = es.field_caps(
        index=events_pattern(prefix), fields=list(fields), ignore_unavailable=True, allow_no_indices=True
    ).get("fields", {})
    for f in fields:
        types = caps.get(f)
        if not types:
            raise StackError(f"--by {f}: no such field in {events_pattern(prefix)}")
        if not any(t.get("aggregatable") for t in types.values()):
            raise StackError(f"--by {f}: not aggregatable (a text field? try its keyword field)")


def _buckets(es: Elasticsearch, prefix: str, req: StackRequest) -> Iterator[list[dict[str, Any]]]:
    """The composite aggregation's buckets, one page (``after_key`` step) at a time."""
    sources = [{f"f{i}": {"terms": {"field": f}}} for i, f in enumerate(req.fields)]
    aggs = {
        "first": {"min": {"field": "@timestamp"}},
        "last": {"max": {"field": "@timestamp"}},
        "hosts": {"cardinality": {"field": "host.name"}},
    }
    index, query = events_pattern(prefix), req.scope.query()
    buckets = iter_composite(es, index, query, sources, aggs, page_size=req.page_size)
    while page := list(itertools.islice(buckets, req.page_size)):
        yield page


class _Knowledge:
    """Which allowlists and intel feeds list the values of one page, per field."""

    def __init__(self, es: Elasticsearch, prefix: str, fields: Sequence[str], enabled: bool) -> None:
        self.es, self.prefix, self.fields = es, prefix, list(fields)
        self.typed = [f for f in self.fields if f in FIELD_TYPES] if enabled else []
        allow_types: set[str] = set()
        if self.typed:
            for m in manifests(es, kind="allow", prefix=prefix):
                allow_types.update(t for t, ids in (m.get("chunks") or {}).items() if ids)
        self.covered = [f for f in self.typed if allow_types & set(FIELD_TYPES[f])]

    def lookup(self, page: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, set[str]]]:
        """(kind, field) → value → feed names, for every value of the page."""
        out: dict[tuple[str, str], dict[str, set[str]]] = {}
        for f in self.typed:
            i = self.fields.index(f)
            values = sorted({str(b["key"][f"f{i}"]) for b in page if b["key"].get(f"f{i}") is not None})
            for kind in ("allow", "intel"):
                found = find_indicators(self.es, f, values, kind=kind, prefix=self.prefix)
                out[(kind, f)] = {
                    v: {str(get_path(d, "intel.feed")) for d in docs} for v, docs in found.items()
                }
        return out

    def row(self, b: dict[str, Any], known: dict[tuple[str, str], dict[str, set[str]]]) -> StackRow:
        values = tuple(b["key"].get(f"f{i}") for i in range(len(self.fields)))
        allow: set[str] = set()
        intel: set[str] = set()
        listed_all = bool(self.covered)
        for f in self.typed:
            v = values[self.fields.index(f)]
            a = known.get(("allow", f), {}).get(str(v), set())
            allow |= a
            intel |= known.get(("intel", f), {}).get(str(v), set())
            if f in self.covered and not a:
                listed_all = False
        return StackRow(
            values=values,
            count=int(b["doc_count"]),
            hosts=int(b["hosts"]["value"]),
            first_seen=ms_to_iso(b["first"]["value"]),
            last_seen=ms_to_iso(b["last"]["value"]),
            allow=tuple(sorted(allow)),
            intel=tuple(sorted(intel)),
            known=listed_all,
        )


def _rows(
    es: Elasticsearch, prefix: str, req: StackRequest, totals: StackTotals, on_page: OnPage | None
) -> Iterator[StackRow]:
    know = _Knowledge(es, prefix, req.fields, req.lookups)
    if req.lookups and not know.covered:
        totals.notes.append("no allowlist covers these fields: every row is unknown")
    for page in _buckets(es, prefix, req):
        if on_page is not None:
            on_page(totals.buckets + len(page))
        known = know.lookup(page)
        for b in page:
            row = know.row(b, known)
            totals.buckets += 1
            totals.events += row.count
            totals.known += row.known
            totals.intel += bool(row.intel)
            if req.unknown_only and row.known:
                continue
            yield row


def _sort_key(order: Order) -> Any:
    def key(r: StackRow) -> tuple[Any, ...]:
        values = tuple(str(v) for v in r.values)
        return (-r.count if order == "count" else r.count, values)

    return key


def ordered(rows: Iterable[StackRow], order: Order, limit: int | None) -> Iterator[StackRow]:
    """``value``: as the aggregation pages them (streamed); ``count`` (most first) and ``rare``
    (least first): sorted, holding at most ``limit`` rows when a limit is given."""
    if order == "value":
        yield from rows if limit is None else itertools.islice(rows, limit)
        return
    key = _sort_key(order)
    if limit is None:
        yield from sorted(rows, key=key)
    else:
        yield from heapq.nsmallest(limit, rows, key=key)


def stack(
    es: Elasticsearch,
    prefix: str,
    req: StackRequest,
    totals: StackTotals,
    on_page: OnPage | None = None,
) -> Iterator[StackRow]:
    """The request's rows in order; ``totals`` is complete once the iterator is exhausted;
    ``on_page`` hears the number of buckets read so far (progress on a terminal)."""
    check_fields(es, prefix, req.fields)
    return ordered(_rows(es, prefix, req, totals, on_page), req.order, req.limit)

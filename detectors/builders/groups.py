"""Suppression groups: an event's key and bucket, and the absolute figures (count, first and
last seen) of every group a page touched."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from detectors.alerts import update_alerts
from detectors.builders.context import RunContext, RunStats, field_values, ms_to_iso
from detectors.model import Suppression
from detectors.query import events_pattern, get_path, iso, iter_pages


def group_key(src: dict[str, Any], fields: Sequence[str]) -> list[str]:
    """The suppression key of an event: per field, its values (strings, source order) joined with
    ``|``; a missing (or null, or empty-list) field is ``""``."""
    return ["|".join(field_values(get_path(src, f))) for f in fields]


def bucket_start(ts: Any, window: int, now: datetime) -> int:
    """Start (epoch seconds) of the ``window``-second bucket of an event's ``@timestamp``
    (``now`` when the event has none)."""
    t = datetime.fromisoformat(str(ts).replace("Z", "+00:00")) if ts else now
    return int(t.timestamp()) // window * window


@dataclass(frozen=True, slots=True)
class GroupRef:
    """A suppression alert touched by a page: its id, index, key and bucket start."""

    aid: str
    index: str
    key: tuple[str, ...]
    start: int


def part_terms(part: str) -> list[str]:
    """Every value an event whose key component is ``part`` can hold: any run of consecutive
    ``|``-separated pieces (``a|b`` comes from ``["a", "b"]`` or from ``["a|b"]``)."""
    pieces = part.split("|")
    n = len(pieces)
    return sorted({"|".join(pieces[i:j]) for i in range(n) for j in range(i + 1, n + 1)})


def part_clause(field: str, part: str) -> dict[str, Any]:
    """A clause every event whose key component for ``field`` is ``part`` matches (a superset when
    ``part`` is empty or holds ``|``; :func:`figures_from_response` tells when it was exact)."""
    if part == "":
        return {
            "bool": {
                "should": [{"bool": {"must_not": [{"exists": {"field": field}}]}}, {"term": {field: ""}}],
                "minimum_should_match": 1,
            }
        }
    if "|" not in part:
        return {"term": {field: part}}
    return {"terms": {field: part_terms(part)}}


def group_query(base: dict[str, Any], fields: Sequence[str], g: GroupRef, window: int) -> dict[str, Any]:
    """``base`` (the rule's query) restricted to the group's bucket and values."""
    rng = {"gte": g.start * 1000, "lt": (g.start + window) * 1000, "format": "epoch_millis"}
    extra = [{"range": {"@timestamp": rng}}, *(part_clause(f, p) for f, p in zip(fields, g.key, strict=True))]
    b = dict(base["bool"])
    b["filter"] = [*b.get("filter", []), *extra]
    return {"bool": b}


def figures_aggs(fields: Sequence[str]) -> dict[str, Any]:
    aggs: dict[str, Any] = {
        "first": {"min": {"field": "@timestamp"}},
        "last": {"max": {"field": "@timestamp"}},
    }
    for i, f in enumerate(fields):
        aggs[f"n{i}"] = {"value_count": {"field": f}}
        aggs[f"e{i}"] = {"filter": {"exists": {"field": f}}}
    return aggs


def figures_from_response(resp: dict[str, Any], key: Sequence[str]) -> dict[str, Any] | None:
    """``count``/``first_seen``/``last_seen`` from a :func:`figures_aggs` search, or None when the
    clauses may have matched events of other keys: a component with ``|``, or an event holding
    more than one distinct value of a group field (values counted == events having the field)."""
    if any("|" in part for part in key):
        return None
    aggs = resp.get("aggregations") or {}
    for i in range(len(key)):
        if int(aggs[f"n{i}"]["value"]) != int(aggs[f"e{i}"]["doc_count"]):
            return None
    count = int(resp["hits"]["total"]["value"])
    return {
        "count": count,
        "first_seen": ms_to_iso(aggs["first"]["value"]) if count else None,
        "last_seen": ms_to_iso(aggs["last"]["value"]) if count else None,
    }


def tally(srcs: Iterable[dict[str, Any]], fields: Sequence[str], key: Sequence[str]) -> dict[str, Any]:
    """The figures of the events (``_source``) whose :func:`group_key` is ``key``."""
    count, lo, hi = 0, None, None
    for src in srcs:
        if group_key(src, fields) != list(key):
            continue
        ts = src.get("@timestamp")
        if not ts:
            continue
        t = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
        count += 1
        lo = t if lo is None or t < lo else lo
        hi = t if hi is None or t > hi else hi
    return {
        "count": count,
        "first_seen": iso(lo) if lo else None,
        "last_seen": iso(hi) if hi else None,
    }


def _iter_sources(ctx: RunContext, query: dict[str, Any], fields: Sequence[str]) -> Iterator[dict[str, Any]]:
    for page in iter_pages(
        ctx.es,
        events_pattern(ctx.prefix),
        query,
        source=[*fields, "@timestamp"],
        page_size=ctx.page_size,
    ):
        for hit in page:
            yield hit["_source"]


def update_group_figures(
    ctx: RunContext, sup: Suppression, base: dict[str, Any], groups: Sequence[GroupRef], stats: RunStats
) -> None:
    """Write the absolute ``alert.group.count``/``first_seen``/``last_seen`` of every touched
    suppression alert, counted over the events (not a running tally: reruns and overlapping
    windows write the same figures). One ``msearch`` of aggregations for a whole page; a group
    whose key the aggregation cannot count exactly (multi-valued fields) is counted by reading
    its candidate events' group fields."""
    fields = sup.group_by
    todo = list({g.aid: g for g in groups}.values())
    updates: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(0, len(todo), 200):
        chunk = todo[i : i + 200]
        searches: list[dict[str, Any]] = []
        queries = [group_query(base, fields, g, sup.window) for g in chunk]
        for q in queries:
            searches.append({"index": events_pattern(ctx.prefix), "ignore_unavailable": True,
                             "allow_no_indices": True})  # fmt: skip
            searches.append({"query": q, "size": 0, "track_total_hits": True, "aggs": figures_aggs(fields)})
        resp = ctx.es.msearch(searches=searches)
        for g, q, r in zip(chunk, queries, resp["responses"], strict=True):
            if "error" in r:
                stats.notes.append(f"group figures of alert {g.aid} not computed: {str(r['error'])[:300]}")
                continue
            figures = figures_from_response(r, g.key)
            if figures is None:
                figures = tally(_iter_sources(ctx, q, fields), fields, g.key)
            if figures["count"]:
                updates.append((g.index, g.aid, {"alert": {"group": figures}}))
    update_alerts(ctx.es, updates)

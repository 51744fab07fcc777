"""Batchable rules matched in this process: one paged read of the events in the union of their
windows, each event checked by the stream matcher (:class:`detectors.stream.rules.StreamRules`,
the native core), instead of named Lucene clauses on the node.

Why: a Sigma wildcard with a leading ``*`` makes Elasticsearch walk the field's whole terms
dictionary, per clause and per segment, whatever the window; reading the window's events once
costs what the window holds. Exact by construction: the matcher accepts exactly the documents the
rule's query accepts on our mapping (``tests/integration/test_stream_match.py``), and each rule
keeps its own window, judged on ``event.ingested`` in milliseconds as the node stores it (read
from doc values: any of a document's values inside the window counts, as for a range query).
Alerts are the ones :mod:`detectors.builders.batched` writes: same id, index and document.
Only the fields the rules read are fetched (parsing whole sources cost most of the pass); the
events that matched are fetched whole for their alerts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from detectors.builders.batched import union_codes, union_window, write_alerts
from detectors.builders.context import RunContext, RunStats
from detectors.builders.event_alert import event_alert, run_times
from detectors.model import Rule
from detectors.query import Window, events_pattern, iter_pages
from detectors.stream.rules import StreamRules

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
#: event.ingested as the node stores it
_INGESTED = ({"field": "event.ingested", "format": "epoch_millis"},)


def _millis(dt: datetime) -> int:
    """A window bound as the node reads ``iso(dt)`` (milliseconds, truncated)."""
    return (dt.astimezone(UTC) - _EPOCH) // _MS


def _bounds(w: Window) -> tuple[int | None, int]:
    return (None if w.start is None else _millis(w.start)), _millis(w.end)


def events_query(rules: Sequence[Rule], windows: Mapping[str, Window]) -> dict[str, Any]:
    """The events any of ``rules`` may match: the union of their windows and event codes."""
    filters: list[dict[str, Any]] = [union_window([windows[r.id] for r in rules]).clause()]
    if all(r.filter.event_codes for r in rules):
        filters.append({"terms": {"event.code": union_codes(rules)}})
    return {"bool": {"filter": filters}}


def run_in_process(
    rules: Sequence[Rule],
    windows: Mapping[str, Window],
    ctx: RunContext,
    created: set[str],
    matcher: StreamRules,
) -> dict[str, RunStats]:
    """``rules`` (all among ``matcher.native_ids()``) over their windows; the
    counts per rule id, as :func:`detectors.builders.batched.run_batch` gives them. Raises on any
    failure (the caller runs the rules as Lucene batches instead)."""
    stats = {r.id: RunStats() for r in rules}
    bounds = {r.id: _bounds(windows[r.id]) for r in rules}
    fields = matcher.fields_read({r.id for r in rules})
    pages = iter_pages(
        ctx.es, events_pattern(ctx.prefix), events_query(rules, windows),
        source=None if fields is None else sorted(fields),
        page_size=ctx.page_size, skip_shards=True, docvalue_fields=_INGESTED,
    )  # fmt: skip
    for page in pages:
        matched: list[tuple[Rule, dict[str, Any]]] = []
        for hit in page:
            ingested = [int(float(v)) for v in hit.get("fields", {}).get("event.ingested", ())]
            for rule in matcher.match_native(hit["_source"]):
                lo, hi = bounds[rule.id]
                if any((lo is None or lo <= t) and t < hi for t in ingested):
                    matched.append((rule, hit))
        if not matched:
            continue
        if fields is not None:
            _whole_sources(ctx, {id(hit): hit for _, hit in matched}.values())
        owners: list[str] = []
        items: list[tuple[str, str, dict[str, Any]]] = []
        for rule, hit in matched:
            stats[rule.id].hits += 1
            owners.append(rule.id)
            items.append(event_alert(rule, hit, ctx.prefix, ctx.now, run_times(windows[rule.id])))
        write_alerts(ctx, owners, items, [hit["_source"] for _, hit in matched], stats, created)
    return stats


def _whole_sources(ctx: RunContext, hits: Iterable[dict[str, Any]]) -> None:
    """Give the matched ``hits``, read with the fields the rules need only, their whole
    ``_source`` (an alert copies the event's fields)."""
    hits = list(hits)
    docs = ctx.es.mget(docs=[{"_index": h["_index"], "_id": h["_id"]} for h in hits])["docs"]
    for hit, doc in zip(hits, docs, strict=True):
        if not doc.get("found"):
            raise RuntimeError(f"event {hit['_index']}/{hit['_id']} matched but could not be read whole")
        hit["_source"] = doc["_source"]

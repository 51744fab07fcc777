"""``sequence_gap``: missing or restarted ``winlog.record_id`` per (host, channel).

A run looks at the records ingested in its window moved back by ``grace``: a gap is judged only
once the records around it have been in the cluster for ``grace``, so an archive shipped late
within the grace fills it before anyone is alerted. For each (host, channel) those records
touch, the records around them in time (the last one before, the first one after, by
``event.created``) bound a range that one aggregation checks cheaply — count = distinct ids =
max − min + 1, and the earliest record has the lowest id, the latest the highest — and only a
range that fails is read (sorted by time, then id) and handed to :mod:`sequence`. Alerts and the
gaps late records fill after the grace are in :mod:`gap_alerts`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from detectors.builders.context import RunContext, RunStats
from detectors.builders.gap_alerts import write_findings
from detectors.builders.gap_query import CREATED, RECORD, SOURCE, Group, base_query, group_clause, msearch
from detectors.builders.sequence import Record, findings
from detectors.model import Rule, SequenceGapParams
from detectors.query import Window, events_pattern, get_path, iter_composite, iter_pages

_BATCH = 100
_TIME_ORDER: tuple[Any, ...] = ({CREATED: "asc"}, {RECORD: "asc"}, "_shard_doc")


def shifted(window: Window, grace: int) -> Window:
    delta = timedelta(seconds=grace)
    return Window(None if window.start is None else window.start - delta, window.end - delta)


def _ms_range(low: int | None, high: int | None) -> dict[str, Any]:
    rng: dict[str, Any] = {"format": "epoch_millis"}
    if low is not None:
        rng["gte"] = low
    if high is not None:
        rng["lte"] = high
    return {"range": {CREATED: rng}}


def touched_groups(rule: Rule, ctx: RunContext, p: SequenceGapParams, stats: RunStats) -> Iterator[Group]:
    query = base_query(rule, ctx, window=shifted(ctx.window, p.grace))
    sources = [{"h": {"terms": {"field": p.host_field}}}, {"c": {"terms": {"field": p.channel_field}}}]
    aggs = {
        "lo": {"min": {"field": RECORD}},
        "hi": {"max": {"field": RECORD}},
        "t0": {"min": {"field": CREATED}},
        "t1": {"max": {"field": CREATED}},
    }
    for b in iter_composite(ctx.es, events_pattern(ctx.prefix), query, sources, aggs):
        stats.hits += int(b["doc_count"])
        yield Group(
            str(b["key"]["h"]),
            str(b["key"]["c"]),
            int(b["lo"]["value"]),
            int(b["hi"]["value"]),
            int(b["t0"]["value"]),
            int(b["t1"]["value"]),
        )


Bounds = tuple[int | None, int | None]


def _bounds(
    rule: Rule, ctx: RunContext, p: SequenceGapParams, groups: Sequence[Group]
) -> list[tuple[int | None, int | None]]:
    """Per group, the write time of the last record before its new ones and of the first after."""
    bodies: list[dict[str, Any]] = []
    for g in groups:
        gc = group_clause(p, g.host, g.channel)
        before = {"range": {CREATED: {"lt": g.first_ms, "format": "epoch_millis"}}}
        after = {"range": {CREATED: {"gt": g.last_ms, "format": "epoch_millis"}}}
        for clause, order in ((before, "desc"), (after, "asc")):
            bodies.append(
                {
                    "query": base_query(rule, ctx, [*gc, clause]),
                    "size": 1,
                    "_source": False,
                    "sort": [{CREATED: order}],
                    "track_total_hits": False,
                }
            )
    resp = msearch(ctx, bodies, events_pattern(ctx.prefix))
    out: list[Bounds] = []
    for i in range(0, len(resp), 2):
        ends = [r["hits"]["hits"][0]["sort"][0] if r["hits"]["hits"] else None for r in resp[i : i + 2]]
        out.append((ends[0], ends[1]))
    return out


def _check_aggs() -> dict[str, Any]:
    def edge(order: str) -> dict[str, Any]:
        return {"top_hits": {"size": 1, "_source": [RECORD], "sort": [{CREATED: order}, {RECORD: order}]}}

    return {
        "n": {"value_count": {"field": RECORD}},
        "distinct": {"cardinality": {"field": RECORD, "precision_threshold": 40000}},
        "lo": {"min": {"field": RECORD}},
        "hi": {"max": {"field": RECORD}},
        "early": edge("asc"),
        "late": edge("desc"),
    }


def _is_clean(r: dict[str, Any]) -> bool:
    a = r["aggregations"]
    n, lo, hi = int(a["n"]["value"]), a["lo"]["value"], a["hi"]["value"]
    if n == 0 or lo is None:
        return True
    span = int(hi) - int(lo) + 1

    def edge(name: str) -> Any:
        hits = a[name]["hits"]["hits"]
        return get_path(hits[0]["_source"], RECORD) if hits else None

    return n == span == int(a["distinct"]["value"]) and edge("early") == lo and edge("late") == hi


def _records(ctx: RunContext, query: dict[str, Any]) -> list[Record]:
    out: list[Record] = []
    for page in iter_pages(
        ctx.es, events_pattern(ctx.prefix), query, source=SOURCE, sort=_TIME_ORDER, page_size=ctx.page_size
    ):
        for h in page:
            s = h["_source"]
            out.append(
                Record(
                    int(get_path(s, RECORD)),
                    str(get_path(s, CREATED)),
                    str(s.get("@timestamp")),
                    h["_index"],
                    h["_id"],
                )
            )
    return out


def build_sequence_gap(rule: Rule, ctx: RunContext) -> RunStats:
    assert isinstance(rule.params, SequenceGapParams)
    p = rule.params
    stats = RunStats()
    batch: list[Group] = []
    groups = read = 0
    for g in touched_groups(rule, ctx, p, stats):
        batch.append(g)
        if len(batch) == _BATCH:
            read += _examine(rule, ctx, p, batch, stats)
            groups, batch = groups + len(batch), []
    read += _examine(rule, ctx, p, batch, stats)
    stats.notes.append(f"{groups + len(batch)} (host, channel) groups checked, {read} read record by record")
    return stats


def _examine(rule: Rule, ctx: RunContext, p: SequenceGapParams, groups: list[Group], stats: RunStats) -> int:
    """Check a batch of groups; returns how many failed the cheap check and were read."""
    if not groups:
        return 0
    bounds = _bounds(rule, ctx, p, groups)
    queries = [
        base_query(
            rule,
            ctx,
            [
                *group_clause(p, g.host, g.channel),
                _ms_range(lo if lo is not None else g.first_ms, hi if hi is not None else g.last_ms),
            ],
        )
        for g, (lo, hi) in zip(groups, bounds, strict=True)
    ]
    checks = msearch(
        ctx, [{"query": q, "size": 0, "aggs": _check_aggs()} for q in queries], events_pattern(ctx.prefix)
    )
    found = {}
    for g, q, r in zip(groups, queries, checks, strict=True):
        if not _is_clean(r):
            found[g] = findings(_records(ctx, q), p.reset_tolerance)
    write_findings(rule, ctx, p, groups, found, stats)
    return len(found)

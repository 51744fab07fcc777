"""``correlation``: Sigma v2 correlation rules (event_count, value_count, temporal,
temporal_ordered) over true sliding windows of ``@timestamp``, on plain queries.

A run reads, per base rule, the events *fresh* to it: ingested in the run's window extended back
by the timespan (so a window an earlier run left open is judged again once it has closed). Around
each fresh event's ``@timestamp`` (± timespan) it reads the base rules' events ingested before the
window's end, groups them in Python by the group-by values, and scans each group that holds a
fresh event (:mod:`detectors.builders.sliding`). Existing alerts of those groups hold their
windows, so reruns and overlapping windows add nothing; the alert id is (rule, group, first
member event) and a repeat is a 409 besides.

Late events (an old ``@timestamp``, a new ``event.ingested``) are fresh in the run that ingests
them and are correlated with the stored events around their own time: they can fire a window in
the past. An event that falls inside the window of an existing alert of its group never starts a
new alert, and that alert is not updated.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from detectors.alerts import alert_id, alert_index_for, from_event, write_alerts
from detectors.builders.context import RunContext, RunStats, ms_to_iso
from detectors.builders.enrich import add_ancestry
from detectors.builders.sliding import Match, Member, Spec, merge_ranges, scan
from detectors.model import CorrelationBase, CorrelationParams, Rule
from detectors.query import Window, alerts_pattern, events_pattern, get_path, iter_pages

#: members listed in an alert (the count is always whole)
MAX_MEMBERS = 100
#: ``@timestamp`` ranges per query
RANGES_PER_QUERY = 200

GroupKey = tuple[str, ...]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(text: str) -> int:
    """Epoch milliseconds of an ISO time (``Z`` or an offset, up to nanoseconds), exactly."""
    return (datetime.fromisoformat(text) - _EPOCH) // timedelta(milliseconds=1)


def spec_value(src: dict[str, Any], spec: Sequence[str]) -> str | None:
    """The value of a field spec in an event: the first field present; a user root as
    ``domain\\name``; lower-cased, as Sigma compares values case-insensitively."""
    for f in spec:
        v = get_path(src, f)
        if isinstance(v, list):
            v = v[0] if v else None
        if isinstance(v, dict):
            name, domain = v.get("name"), v.get("domain")
            v = f"{domain}\\{name}" if domain and name else name
        if v is not None and v != "":
            return str(v).lower()
    return None


def _base_clauses(base: CorrelationBase) -> list[dict[str, Any]]:
    return [
        {"terms": {"event.code": list(base.event_codes)}},
        {"query_string": {"query": base.lucene, "analyze_wildcard": True}},
    ]


def _source_fields(base: CorrelationBase) -> list[str]:
    out = {"@timestamp"}
    for spec in (*base.group_fields, base.value_field):
        out.update(spec)
    return sorted(out)


def fresh_events(ctx: RunContext, p: CorrelationParams) -> tuple[set[str], list[int]]:
    """Ids and times of the events this run judges: ingested in the window extended back by
    the timespan."""
    w = ctx.window
    start = None if w.start is None else w.start - timedelta(seconds=p.timespan)
    clause = Window(start, w.end).clause()
    ids: set[str] = set()
    times: list[int] = []
    for base in p.bases:
        query = {"bool": {"filter": [*_base_clauses(base), clause]}}
        for page in iter_pages(
            ctx.es, events_pattern(ctx.prefix), query, source=["@timestamp"], page_size=ctx.page_size
        ):
            for hit in page:
                ts = hit["_source"].get("@timestamp")
                if ts and hit["_id"] not in ids:
                    ids.add(hit["_id"])
                    times.append(to_ms(str(ts)))
    return ids, times


def group_events(
    ctx: RunContext, p: CorrelationParams, ranges: Sequence[tuple[int, int]]
) -> dict[GroupKey, list[Member]]:
    """The base rules' events in ``ranges`` of ``@timestamp``, ingested before the window's end,
    by group; events missing a group-by value belong to no group."""
    groups: dict[GroupKey, list[Member]] = defaultdict(list)
    before_end = Window(None, ctx.window.end).clause()
    for n, base in enumerate(p.bases):
        for i in range(0, len(ranges), RANGES_PER_QUERY):
            chunk = ranges[i : i + RANGES_PER_QUERY]
            times = [
                {"range": {"@timestamp": {"gte": lo, "lte": hi, "format": "epoch_millis"}}}
                for lo, hi in chunk
            ]
            query = {
                "bool": {
                    "filter": [
                        *_base_clauses(base),
                        before_end,
                        {"bool": {"should": times, "minimum_should_match": 1}},
                    ]
                }
            }
            for page in iter_pages(
                ctx.es,
                events_pattern(ctx.prefix),
                query,
                source=_source_fields(base),
                page_size=ctx.page_size,
            ):
                for hit in page:
                    _add_member(groups, base, n, hit)
    return groups


def _add_member(
    groups: dict[GroupKey, list[Member]], base: CorrelationBase, n: int, hit: dict[str, Any]
) -> None:
    src = hit["_source"]
    ts = src.get("@timestamp")
    values = [spec_value(src, spec) for spec in base.group_fields]
    key = tuple(v for v in values if v is not None)
    if not ts or len(key) != len(values):
        return
    value = spec_value(src, base.value_field) if base.value_field else None
    groups[key].append(Member(to_ms(str(ts)), hit["_id"], hit["_index"], n, value))


def held_windows(
    ctx: RunContext, rule: Rule, keys: Iterable[GroupKey], since: int
) -> dict[GroupKey, list[tuple[int, int]]]:
    """Windows of the rule's existing alerts for ``keys`` ending at or after ``since`` (ms)."""
    wanted = {"|".join(k): k for k in keys}
    exact = set(wanted.values())  # the key string is only a filter: values may hold "|"
    out: dict[GroupKey, list[tuple[int, int]]] = defaultdict(list)
    names = sorted(wanted)
    for i in range(0, len(names), 1000):
        query = {
            "bool": {
                "filter": [
                    {"term": {"rule.id": rule.id}},
                    {"terms": {"alert.group.key": names[i : i + 1000]}},
                    {"range": {"alert.group.window_end": {"gte": since, "format": "epoch_millis"}}},
                ]
            }
        }
        for page in iter_pages(ctx.es, alerts_pattern(ctx.prefix), query, source=["alert.group"]):
            for hit in page:
                g = get_path(hit["_source"], "alert.group") or {}
                key = tuple(str(v) for v in g.get("values") or ())
                if key in exact and g.get("window_start") and g.get("window_end"):
                    out[key].append((to_ms(g["window_start"]), to_ms(g["window_end"])))
    return out


def build_correlation(rule: Rule, ctx: RunContext) -> RunStats:
    assert isinstance(rule.params, CorrelationParams)
    p = rule.params
    stats = RunStats()
    span = p.timespan * 1000
    fresh, times = fresh_events(ctx, p)
    stats.hits = len(fresh)
    if not fresh:
        return stats
    ranges = merge_ranges(times, span, span)
    groups = {k: v for k, v in group_events(ctx, p, ranges).items() if any(m.id in fresh for m in v)}
    held = held_windows(ctx, rule, groups, ranges[0][0])
    spec = Spec(p.kind, span, p.op, p.count, len(p.bases))
    horizon = int(ctx.window.end.timestamp() * 1000)
    found: list[tuple[GroupKey, Match]] = []
    for key, members in groups.items():
        found += [(key, m) for m in scan(spec, members, fresh, held.get(key, ()), horizon)]
    if found:
        res = write_alerts(ctx.es, _alerts(rule, ctx, found))
        stats.alerts, stats.duplicates = res.created, res.duplicates
    return stats


def _alerts(
    rule: Rule, ctx: RunContext, found: Sequence[tuple[GroupKey, Match]]
) -> list[tuple[str, str, dict[str, Any]]]:
    """Each match as ``(index, id, alert)``: the first member's fields, the group, the members."""
    assert isinstance(rule.params, CorrelationParams)
    p = rule.params
    firsts = [{"_index": m.members[0].index, "_id": m.members[0].id} for _, m in found]
    docs: list[dict[str, Any]] = []
    for i in range(0, len(firsts), 500):
        docs += ctx.es.mget(docs=firsts[i : i + 500])["docs"]
    out: list[tuple[str, str, dict[str, Any]]] = []
    for (key, match), hit in zip(found, docs, strict=True):
        aid = alert_id(rule.id, "correlation", *key, match.members[0].id)
        doc = from_event(rule, hit, ctx.now, aid)
        start, end = ms_to_iso(match.start), ms_to_iso(match.end)
        ids = {m.id for m in match.members}
        doc["alert"]["count"] = len(ids)
        doc["alert"]["group"] = {
            "fields": list(p.group_by),
            "values": list(key),
            "key": "|".join(key),
            "window_start": start,
            "window_end": end,
            "count": len(ids),
        }
        doc["alert"]["correlation"] = _correlation_doc(p, match)
        out.append((alert_index_for(ctx.prefix, start, ctx.now), aid, doc))
    # the ancestry of the first member's process, as other alerts carry theirs
    add_ancestry(ctx, [d for _, _, d in out], [h["_source"] for h in docs])
    return out


def _correlation_doc(p: CorrelationParams, match: Match) -> dict[str, Any]:
    listed = match.members[:MAX_MEMBERS]
    d: dict[str, Any] = {
        "type": p.kind,
        "timespan": p.timespan,
        "condition": {"op": p.op, "count": p.count},
        "figure": match.figure,
        "rules": [b.ref for b in p.bases],
        "members": [
            {
                "id": m.id,
                "index": m.index,
                "@timestamp": ms_to_iso(m.t),
                "rule": p.bases[m.base].ref,
                "rule_title": p.bases[m.base].title,
            }
            for m in listed
        ],
        "members_total": len(match.members),
    }
    if p.kind == "value_count":
        d["field"] = p.value_name
        d["values"] = sorted({m.value for m in match.members if m.value is not None})[:MAX_MEMBERS]
    return d

"""``spread``: a value on at least ``min_hosts`` hosts within ``window``; one alert per value,
updated (read-modify-write) as hosts appear, patient zero first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from detectors.alerts import alert_id, alert_index_for, find_alerts, from_event, put_alert
from detectors.builders.context import FIRST_EVENT, RunContext, RunStats
from detectors.builders.enrich import add_ancestry
from detectors.model import Rule, SpreadParams
from detectors.query import events_pattern, get_path, iso, iter_composite, rule_query


def _merge_hosts(old: list[dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    by: dict[str, dict[str, Any]] = {h["name"]: h for h in old}
    for name, h in new.items():
        cur = by.get(name)
        if cur is None or h["first_seen"] < cur["first_seen"]:
            by[name] = h
    return sorted(by.values(), key=lambda h: (h["first_seen"], h["name"]))


def spread_window(hosts: list[dict[str, Any]], window: int, min_hosts: int) -> list[dict[str, Any]]:
    """The hosts (in first-seen order) of the first ``window`` that holds at least ``min_hosts``
    of them, anchored on its earliest host (patient zero); when no window does, those of the
    earliest host's window (fewer than ``min_hosts``: no alert). A sighting long before the
    spread (a lone host months earlier) must not become the anchor that hides it."""

    def t(h: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(str(h["first_seen"]).replace("Z", "+00:00"))

    first: list[dict[str, Any]] | None = None
    for i, anchor in enumerate(hosts):
        t0 = t(anchor)
        inside = [h for h in hosts[i:] if (t(h) - t0).total_seconds() <= window]
        if len(inside) >= min_hosts:
            return inside
        if first is None:
            first = inside
    return first or []


def build_spread(rule: Rule, ctx: RunContext) -> RunStats:
    assert isinstance(rule.params, SpreadParams)
    stats = RunStats()
    cands = _spread_candidates(rule, ctx, stats)
    values = sorted(cands)
    for i in range(0, len(values), 200):
        seen = _first_sightings(rule, ctx, cands, values[i : i + 200])
        for value, hosts in seen.items():
            _upsert_spread(rule, ctx, value, hosts, stats)
    return stats


def _spread_candidates(rule: Rule, ctx: RunContext, stats: RunStats) -> dict[str, tuple[float, float]]:
    """The values seen in the run's window, each with its first and last @timestamp (ms)."""
    assert isinstance(rule.params, SpreadParams)
    field = rule.params.field
    query = rule_query(ctx.es, rule, ctx.prefix, window=ctx.window)
    aggs = {"min": {"min": {"field": "@timestamp"}}, "max": {"max": {"field": "@timestamp"}}}
    cands: dict[str, tuple[float, float]] = {}
    sources = [{"v": {"terms": {"field": field}}}]
    for b in iter_composite(ctx.es, events_pattern(ctx.prefix), query, sources, aggs):
        stats.hits += int(b["doc_count"])
        cands[str(b["key"]["v"])] = (float(b["min"]["value"]), float(b["max"]["value"]))
    return cands


def _first_sightings(
    rule: Rule, ctx: RunContext, cands: dict[str, tuple[float, float]], chunk: list[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per value of ``chunk``, per host: its earliest event within ``window`` of the run's
    sightings (outside the ingest window too, so earlier hosts are found)."""
    assert isinstance(rule.params, SpreadParams)
    p = rule.params
    lo = min(cands[v][0] for v in chunk) - p.window * 1000
    hi = max(cands[v][1] for v in chunk) + p.window * 1000
    hq = rule_query(
        ctx.es,
        rule,
        ctx.prefix,
        extra=[
            {"terms": {p.field: chunk}},
            {"range": {"@timestamp": {"gte": int(lo), "lte": int(hi), "format": "epoch_millis"}}},
        ],
    )
    seen: dict[str, dict[str, dict[str, Any]]] = {}
    sources = [{"v": {"terms": {"field": p.field}}}, {"h": {"terms": {"field": p.host_field}}}]
    for b in iter_composite(ctx.es, events_pattern(ctx.prefix), hq, sources, {"first": FIRST_EVENT}):
        hit = b["first"]["hits"]["hits"][0]
        src = hit["_source"]
        seen.setdefault(str(b["key"]["v"]), {})[str(b["key"]["h"])] = {
            "name": str(b["key"]["h"]),
            "first_seen": src.get("@timestamp"),
            "event_id": hit["_id"],
            "index": hit["_index"],
            "entity_id": get_path(src, "process.entity_id"),
            "executable": get_path(src, "process.executable"),
            "_hit": hit,
        }
    return seen


def _upsert_spread(
    rule: Rule, ctx: RunContext, value: str, hosts: dict[str, dict[str, Any]], stats: RunStats
) -> None:
    """Merge ``hosts`` into the value's one alert (read-modify-write, retried on conflicts);
    nothing while fewer than ``min_hosts`` hosts fall in one window."""
    assert isinstance(rule.params, SpreadParams)
    p = rule.params
    aid = alert_id(rule.id, "spread", p.field, value)
    for _attempt in range(5):
        existing = find_alerts(ctx.es, ctx.prefix, [aid]).get(aid)
        old_hosts: list[dict[str, Any]] = []
        if existing is not None:
            old_hosts = list(get_path(existing["_source"], "alert.spread.hosts") or [])
        merged = spread_window(_merge_hosts(old_hosts, hosts), p.window, p.min_hosts)
        if len(merged) < p.min_hosts:
            return
        if (
            existing is not None
            and [h["name"] for h in merged] == [h["name"] for h in old_hosts]
            and [h["first_seen"] for h in merged] == [h["first_seen"] for h in old_hosts]
        ):
            stats.duplicates += 1
            return
        doc = _spread_doc(rule, ctx, aid, value, merged, hosts, existing)
        target = alert_index_for(ctx.prefix, merged[0]["first_seen"], ctx.now)
        if put_alert(ctx.es, target, aid, doc, existing):
            if existing is None:
                stats.alerts += 1
            else:
                stats.updated += 1
            return


def _spread_doc(
    rule: Rule,
    ctx: RunContext,
    aid: str,
    value: str,
    merged: list[dict[str, Any]],
    hosts: dict[str, dict[str, Any]],
    existing: dict[str, Any] | None,
) -> dict[str, Any]:
    """The alert for patient zero ``merged[0]``, keeping an existing alert's status and time."""
    assert isinstance(rule.params, SpreadParams)
    pz = merged[0]
    pz_hit = pz.get("_hit") or hosts.get(pz["name"], {}).get("_hit")
    if pz_hit is None:  # patient zero unchanged and known only from the stored alert
        assert existing is not None
        doc = dict(existing["_source"])
    else:
        doc = from_event(rule, pz_hit, ctx.now, aid)
        add_ancestry(ctx, [doc], [pz_hit["_source"]])
    clean = [{k: v for k, v in h.items() if k != "_hit" and v is not None} for h in merged]
    doc["alert"]["spread"] = {
        "field": rule.params.field,
        "value": value,
        "host_count": len(clean),
        "patient_zero": pz["name"],
        "first_seen": pz["first_seen"],
        "hosts": clean,
        "last_update": iso(ctx.now),
    }
    doc["alert"]["count"] = len(clean)
    if existing is not None:
        doc["alert"]["status"] = get_path(existing["_source"], "alert.status") or "open"
        doc["@timestamp"] = existing["_source"].get("@timestamp", doc["@timestamp"])
    return doc

"""``sequence_gap`` alerts: one per gap or reset, and the gaps late records fill afterwards.

Id = hash(rule, kind, host, channel, the id range, the write time of the record before it), so
a rerun or an overlapping window writes nothing new. Records that arrive after the grace inside
an alerted gap never make new alerts for what is left of it: the alert is recounted
(``alert.gap.filled`` / ``still_missing``, absolute figures merged without a script) and
closed, with a reason, once nothing is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from detectors.alerts import alert_id, alert_index_for, base_alert, update_alerts, write_alerts
from detectors.builders.context import RunContext, RunStats
from detectors.builders.gap_query import CREATED, RECORD, Group, base_query, group_clause, msearch
from detectors.builders.sequence import Finding, Record
from detectors.model import Rule, SequenceGapParams
from detectors.query import alerts_pattern, events_pattern, get_path, iso, set_path
from detectors.state import parse_time

FILLED_REASON = "filled by records shipped after the grace period"


def group_key(g: Group) -> str:
    return f"{g.host}|{g.channel}"


def finding_id(rule: Rule, g: Group, f: Finding) -> str:
    if f.kind == "gap":
        return alert_id(rule.id, "gap", g.host, g.channel, f.first, f.last, f.before.created)
    return alert_id(
        rule.id, "reset", g.host, g.channel, f.before.record_id, f.after.record_id, f.after.created
    )


def _record_doc(r: Record) -> dict[str, Any]:
    return {
        "record_id": r.record_id,
        "created": r.created,
        "timestamp": r.timestamp,
        "index": r.index,
        "id": r.doc_id,
    }


def finding_doc(rule: Rule, ctx: RunContext, p: SequenceGapParams, g: Group, f: Finding) -> dict[str, Any]:
    doc = base_alert(rule, ctx.now, finding_id(rule, g, f))
    set_path(doc, p.host_field, g.host)
    set_path(doc, p.channel_field, g.channel)
    doc["alert"]["original_time"] = f.after.timestamp
    doc["alert"]["group"] = {
        "fields": [p.host_field, p.channel_field],
        "values": [g.host, g.channel],
        "key": group_key(g),
    }
    gap: dict[str, Any] = {"kind": f.kind, "before": _record_doc(f.before), "after": _record_doc(f.after)}
    if f.kind == "gap":
        gap |= {
            "first_missing": f.first,
            "last_missing": f.last,
            "missing": f.missing,
            "filled": 0,
            "still_missing": f.missing,
        }
        doc["message"] = (
            f"{g.host} {g.channel}: records {f.first}-{f.last} missing ({f.missing}) between "
            f"{f.before.created} and {f.after.created}"
        )
    else:
        doc["message"] = (
            f"{g.host} {g.channel}: record ids restart at {f.after.record_id} at {f.after.created} "
            f"after {f.before.record_id} at {f.before.created} (log cleared or host restored)"
        )
    doc["alert"]["gap"] = gap
    return doc


def _alerted_gaps(rule: Rule, ctx: RunContext, groups: Sequence[Group]) -> list[list[dict[str, Any]]]:
    """Per group, the rule's gap alerts whose id range meets the group's new records."""
    bodies = []
    for g in groups:
        q = {
            "bool": {
                "filter": [
                    {"term": {"rule.id": rule.id}},
                    {"term": {"alert.gap.kind": "gap"}},
                    {"term": {"alert.group.key": group_key(g)}},
                    {"range": {"alert.gap.first_missing": {"lte": g.high}}},
                    {"range": {"alert.gap.last_missing": {"gte": g.low}}},
                ]
            }
        }
        bodies.append({"query": q, "size": 1000, "track_total_hits": False})
    return [r["hits"]["hits"] for r in msearch(ctx, bodies, alerts_pattern(ctx.prefix))]


def _recount(
    rule: Rule,
    ctx: RunContext,
    p: SequenceGapParams,
    pairs: Sequence[tuple[Group, dict[str, Any]]],
    stats: RunStats,
) -> None:
    """Count the records now present inside each alerted gap; update the changed alerts."""
    bodies = []
    for g, hit in pairs:
        gap = hit["_source"]["alert"]["gap"]
        inside = [
            {"range": {RECORD: {"gte": gap["first_missing"], "lte": gap["last_missing"]}}},
            {"range": {CREATED: {"gte": gap["before"]["created"], "lte": gap["after"]["created"]}}},
        ]
        bodies.append(
            {
                "query": base_query(rule, ctx, [*group_clause(p, g.host, g.channel), *inside]),
                "size": 0,
                "track_total_hits": True,
            }
        )
    updates: list[tuple[str, str, dict[str, Any]]] = []
    for (_g, hit), r in zip(pairs, msearch(ctx, bodies, events_pattern(ctx.prefix)), strict=True):
        src = hit["_source"]
        gap = src["alert"]["gap"]
        filled = min(int(r["hits"]["total"]["value"]), int(gap["missing"]))
        if filled == int(gap.get("filled") or 0):
            continue
        part: dict[str, Any] = {"gap": {"filled": filled, "still_missing": int(gap["missing"]) - filled}}
        if filled == int(gap["missing"]) and get_path(src, "alert.status") == "open":
            part |= {"status": "closed", "status_reason": FILLED_REASON, "status_updated": iso(ctx.now)}
        updates.append((hit["_index"], hit["_id"], {"alert": part}))
    stats.updated += update_alerts(ctx.es, updates)


def _remainder(f: Finding, gap: dict[str, Any]) -> bool:
    """True when ``f`` lies inside the alerted ``gap`` — ids and write times (another epoch's
    ids may fall in the range) — without being that very gap."""
    if (f.first, f.last) == (gap["first_missing"], gap["last_missing"]):
        return False
    if not gap["first_missing"] <= f.first <= f.last <= gap["last_missing"]:
        return False
    times = [
        parse_time(t)
        for t in (gap["before"]["created"], f.before.created, f.after.created, gap["after"]["created"])
    ]
    return all(t is not None for t in times) and times == sorted(times)  # type: ignore[type-var]


def write_findings(
    rule: Rule,
    ctx: RunContext,
    p: SequenceGapParams,
    groups: Sequence[Group],
    found: Mapping[Group, list[Finding]],
    stats: RunStats,
) -> None:
    alerted = _alerted_gaps(rule, ctx, groups)
    _recount(rule, ctx, p, [(g, h) for g, hits in zip(groups, alerted, strict=True) for h in hits], stats)
    items: list[tuple[str, str, dict[str, Any]]] = []
    for g, hits in zip(groups, alerted, strict=True):
        gaps = [h["_source"]["alert"]["gap"] for h in hits]
        for f in found.get(g, []):
            # what is left of an alerted gap after late records: that alert's recount says it
            if f.kind == "gap" and any(_remainder(f, gap) for gap in gaps):
                stats.suppressed += 1
                continue
            doc = finding_doc(rule, ctx, p, g, f)
            items.append((alert_index_for(ctx.prefix, f.after.timestamp, ctx.now), doc["alert"]["id"], doc))
    res = write_alerts(ctx.es, items)
    stats.alerts += res.created
    stats.duplicates += res.duplicates

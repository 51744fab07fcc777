"""``query`` and ``intel_match``: every matching event is an alert (or one per suppression
group and window)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from detectors.alerts import alert_id, alert_index_for, from_event, write_alerts
from detectors.builders.context import RunContext, RunStats, ms_to_iso
from detectors.builders.enrich import add_ancestry, add_intel
from detectors.builders.groups import GroupRef, bucket_start, group_key, update_group_figures
from detectors.model import Rule
from detectors.postfilter import keeps
from detectors.query import events_pattern, iso, iter_pages, rule_query


def _event_alerts(rule: Rule, ctx: RunContext, intel: bool) -> RunStats:
    stats = RunStats()
    query = rule_query(ctx.es, rule, ctx.prefix, window=ctx.window)
    sup = rule.suppression
    base_query: dict[str, Any] | None = None  # the rule's filter without the ingest window
    for page in iter_pages(ctx.es, events_pattern(ctx.prefix), query, page_size=ctx.page_size):
        if rule.filter.field_refs:  # what the query could not say (Sigma |fieldref)
            page = [h for h in page if keeps(rule.filter, h["_source"])]
        stats.hits += len(page)
        items: dict[str, tuple[str, dict[str, Any]]] = {}
        srcs: dict[str, dict[str, Any]] = {}
        groups: list[GroupRef] = []
        for hit in page:
            src = hit["_source"]
            ts = src.get("@timestamp")
            if sup is not None:
                key = group_key(src, sup.group_by)
                start = bucket_start(ts, sup.window, ctx.now)
                aid = alert_id(rule.id, "suppress", *key, start)
                if aid in items:
                    stats.suppressed += 1
                    continue
                doc = from_event(rule, hit, ctx.now, aid)
                bstart = datetime.fromtimestamp(start, tz=UTC)
                doc["alert"]["group"] = {
                    "fields": list(sup.group_by),
                    "values": key,
                    "key": "|".join(key),
                    "window_start": iso(bstart),
                    "window_end": ms_to_iso((start + sup.window) * 1000),
                }
                index = alert_index_for(ctx.prefix, iso(bstart), ctx.now)
                groups.append(GroupRef(aid, index, tuple(key), start))
            else:
                aid = alert_id(rule.id, hit["_index"], hit["_id"])
                doc = from_event(rule, hit, ctx.now, aid)
                index = alert_index_for(ctx.prefix, ts, ctx.now)
            doc["alert"]["run"] = {
                "window_start": iso(ctx.window.start) if ctx.window.start else None,
                "window_end": iso(ctx.window.end),
            }
            items[aid] = (index, doc)
            srcs[aid] = src
        docs = [d for _, d in items.values()]
        src_list = [srcs[a] for a in items]
        if intel:
            add_intel(ctx, rule, docs, src_list)
        add_ancestry(ctx, docs, src_list)
        res = write_alerts(ctx.es, [(ix, aid, d) for aid, (ix, d) in items.items()])
        stats.alerts += res.created
        if sup is not None:
            stats.suppressed += res.duplicates
            if base_query is None:
                base_query = rule_query(ctx.es, rule, ctx.prefix)
            update_group_figures(ctx, sup, base_query, groups, stats)
        else:
            stats.duplicates += res.duplicates
    return stats


def build_query(rule: Rule, ctx: RunContext) -> RunStats:
    return _event_alerts(rule, ctx, intel=False)


def build_intel_match(rule: Rule, ctx: RunContext) -> RunStats:
    return _event_alerts(rule, ctx, intel=True)

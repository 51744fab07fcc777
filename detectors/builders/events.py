"""``query`` and ``intel_match``: every matching event is an alert (or one per suppression
group and window). A retro-hunt (:class:`~detectors.builders.context.HuntScope`) runs the same
code over one events index, matching only the indicators a load added."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from detectors.alerts import alert_id, alert_index_for, from_event, write_alerts
from detectors.builders.context import RunContext, RunStats, ms_to_iso
from detectors.builders.enrich import add_ancestry, add_intel
from detectors.builders.event_alert import event_alert, run_times
from detectors.builders.groups import GroupRef, bucket_start, group_key, update_group_figures
from detectors.model import Rule
from detectors.postfilter import keeps
from detectors.query import events_pattern, iso, iter_pages, rule_query

Items = dict[str, tuple[str, dict[str, Any]]]  # alert id -> (index, document)


def _alert_for(
    rule: Rule, ctx: RunContext, hit: dict[str, Any]
) -> tuple[str, str, dict[str, Any], GroupRef | None]:
    """(alert id, index, document, suppression group) of one matching event."""
    sup = rule.suppression
    if sup is not None:  # one alert per group and window, its figures updated as events come
        key = group_key(hit["_source"], sup.group_by)
        start = bucket_start(hit["_source"].get("@timestamp"), sup.window, ctx.now)
        aid = alert_id(rule.id, "suppress", *key, start)
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
        group = GroupRef(aid, index, tuple(key), start)
        doc["alert"]["run"] = run_times(ctx.window)
        return aid, index, doc, group
    index, aid, doc = event_alert(rule, hit, ctx.prefix, ctx.now, run_times(ctx.window))
    return aid, index, doc, None


def _event_alerts(rule: Rule, ctx: RunContext, intel: bool) -> RunStats:
    stats = RunStats()
    hunt = ctx.hunt
    query = rule_query(
        ctx.es,
        rule,
        ctx.prefix,
        window=ctx.window,
        extra=hunt.filters if hunt else (),
        intel_chunks=hunt.chunks if hunt else None,
    )
    sup = rule.suppression
    base_query: dict[str, Any] | None = None  # the rule's filter without the ingest window
    index_pattern = hunt.index if hunt else events_pattern(ctx.prefix)
    for page in iter_pages(ctx.es, index_pattern, query, page_size=ctx.page_size):
        if rule.filter.field_refs:  # what the query could not say (Sigma |fieldref)
            page = [h for h in page if keeps(rule.filter, h["_source"])]
        stats.hits += len(page)
        items: Items = {}
        srcs: dict[str, dict[str, Any]] = {}
        groups: list[GroupRef] = []
        for hit in page:
            aid, index, doc, group = _alert_for(rule, ctx, hit)
            if aid in items:
                stats.suppressed += 1
                continue
            if group is not None:
                groups.append(group)
            items[aid] = (index, doc)
            srcs[aid] = hit["_source"]
        if intel:
            add_intel(ctx, rule, [d for _, d in items.values()], [srcs[a] for a in items])
        if hunt is not None:
            kept = {a: v for a, v in items.items() if hunt.mark(v[1], srcs[a])}
            stats.unlisted += len(items) - len(kept)
            items, groups = kept, [g for g in groups if g.aid in kept]
        add_ancestry(ctx, [d for _, d in items.values()], [srcs[a] for a in items])
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

"""``new_value``: a combination of field values first seen in the window and never within the
history before it; one alert per value, ever."""

from __future__ import annotations

from typing import Any

from detectors.alerts import alert_id, alert_index_for, find_alerts, from_event, write_alerts
from detectors.builders.context import FIRST_EVENT, RunContext, RunStats, key_clause
from detectors.builders.enrich import add_ancestry
from detectors.model import NewValueParams, Rule
from detectors.query import events_pattern, iter_composite, rule_query


def build_new_value(rule: Rule, ctx: RunContext) -> RunStats:
    assert isinstance(rule.params, NewValueParams)
    p = rule.params
    stats = RunStats()
    es, index = ctx.es, events_pattern(ctx.prefix)
    query = rule_query(es, rule, ctx.prefix, window=ctx.window)
    sources = [{f: {"terms": {"field": f, "missing_bucket": True}}} for f in p.fields]
    cands: dict[tuple[Any, ...], dict[str, Any]] = {}
    for b in iter_composite(es, index, query, sources, {"first": FIRST_EVENT}):
        key = tuple(b["key"][f] for f in p.fields)
        stats.hits += int(b["doc_count"])
        if p.require_any and all(b["key"][f] is None for f in p.require_any):
            continue
        cands[key] = b["first"]["hits"]["hits"][0]
    keys = list(cands)
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        ids = {k: alert_id(rule.id, "value", *("" if v is None else v for v in k)) for k in chunk}
        existing = find_alerts(es, ctx.prefix, ids.values())
        todo = [k for k in chunk if ids[k] not in existing]
        stats.duplicates += len(chunk) - len(todo)
        if not todo:
            continue
        should = []
        for k in todo:
            first = cands[k]["_source"]["@timestamp"]
            should.append(
                {
                    "bool": {
                        "filter": [
                            *key_clause(p.fields, k),
                            {"range": {"@timestamp": {"lt": first, "gte": f"{first}||-{p.history}s"}}},
                        ]
                    }
                }
            )
        hist_q = rule_query(
            es, rule, ctx.prefix, extra=[{"bool": {"should": should, "minimum_should_match": 1}}]
        )
        seen = {tuple(b["key"][f] for f in p.fields) for b in iter_composite(es, index, hist_q, sources)}
        items: list[tuple[str, str, dict[str, Any]]] = []
        srcs: list[dict[str, Any]] = []
        for k in todo:
            if k in seen:
                continue
            hit = cands[k]
            doc = from_event(rule, hit, ctx.now, ids[k])
            doc["alert"]["new_value"] = {
                "fields": list(p.fields),
                "values": ["" if v is None else str(v) for v in k],
                "first_seen": hit["_source"].get("@timestamp"),
                "history": f"{p.history}s",
            }
            items.append(
                (alert_index_for(ctx.prefix, hit["_source"].get("@timestamp"), ctx.now), ids[k], doc)
            )
            srcs.append(hit["_source"])
        add_ancestry(ctx, [d for _, _, d in items], srcs)
        res = write_alerts(es, items)
        stats.alerts += res.created
        stats.duplicates += res.duplicates
    return stats

"""``threshold``: at least N events per group in a fixed ``@timestamp`` window."""

from __future__ import annotations

from typing import Any

from detectors.alerts import alert_id, alert_index_for, find_alerts, from_event, put_alert
from detectors.builders.context import FIRST_EVENT, RunContext, RunStats, key_clause, ms_to_iso
from detectors.builders.enrich import add_ancestry
from detectors.model import Rule, ThresholdParams
from detectors.query import events_pattern, get_path, iter_composite, rule_query


def build_threshold(rule: Rule, ctx: RunContext) -> RunStats:
    assert isinstance(rule.params, ThresholdParams)
    p = rule.params
    stats = RunStats()
    es, index = ctx.es, events_pattern(ctx.prefix)
    query = rule_query(es, rule, ctx.prefix, window=ctx.window)
    sources: list[dict[str, Any]] = [
        {"t": {"date_histogram": {"field": "@timestamp", "fixed_interval": f"{p.window}s"}}}
    ]
    sources += [{f: {"terms": {"field": f}}} for f in p.group_by]
    cands: list[tuple[Any, ...]] = []
    for b in iter_composite(es, index, query, sources):
        stats.hits += int(b["doc_count"])
        cands.append(tuple(b["key"][s] for s in ["t", *p.group_by]))
    for i in range(0, len(cands), 200):
        chunk = cands[i : i + 200]
        should = [
            {
                "bool": {
                    "filter": [
                        *key_clause(p.group_by, k[1:]),
                        {
                            "range": {
                                "@timestamp": {
                                    "gte": k[0],
                                    "lt": k[0] + p.window * 1000,
                                    "format": "epoch_millis",
                                }
                            }
                        },
                    ]
                }
            }
            for k in chunk
        ]
        cq = rule_query(es, rule, ctx.prefix, extra=[{"bool": {"should": should, "minimum_should_match": 1}}])
        wanted = set(chunk)
        over: list[tuple[tuple[Any, ...], int, dict[str, Any]]] = []
        for b in iter_composite(es, index, cq, sources, {"first": FIRST_EVENT}):
            k = tuple(b["key"][s] for s in ["t", *p.group_by])
            if k in wanted and int(b["doc_count"]) >= p.threshold:
                over.append((k, int(b["doc_count"]), b["first"]["hits"]["hits"][0]))
        ids = {k: alert_id(rule.id, "threshold", *k) for k, _, _ in over}
        existing = find_alerts(es, ctx.prefix, ids.values())
        for k, count, hit in over:
            aid = ids[k]
            old = existing.get(aid)
            if old is not None and get_path(old["_source"], "alert.count") == count:
                stats.duplicates += 1
                continue
            start = ms_to_iso(k[0])
            doc = from_event(rule, hit, ctx.now, aid) if old is None else dict(old["_source"])
            doc["alert"]["count"] = count
            doc["alert"]["group"] = {
                "fields": list(p.group_by),
                "values": [str(v) for v in k[1:]],
                "key": "|".join(str(v) for v in k[1:]),
                "window_start": start,
                "window_end": ms_to_iso(k[0] + p.window * 1000),
            }
            if old is None:
                add_ancestry(ctx, [doc], [hit["_source"]])
            if put_alert(es, alert_index_for(ctx.prefix, start, ctx.now), aid, doc, old):
                if old is None:
                    stats.alerts += 1
                else:
                    stats.updated += 1
    return stats

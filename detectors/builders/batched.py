"""Many ``query`` rules in one search: each rule is a named clause (``_name``) of one bool
``should``, so every hit lists the rules it matched (``matched_queries``) and becomes one alert
per (rule, event) — the same document, index and ``_id`` as the rule's own run
(:mod:`detectors.builders.events`) writes, so switching between the two never duplicates.

Each named clause is the rule's whole query (:func:`detectors.query.rule_query`: event codes,
Lucene, exceptions) *with its own window* on ``event.ingested``; the outer filter is the union of
the windows and of the event codes, which only narrows what Lucene visits. A rule therefore
matches exactly the events its own run would, whatever its checkpoint: rules with different
windows share one search without being grouped by window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from detectors.alerts import create_alerts
from detectors.builders.context import RunContext, RunStats
from detectors.builders.enrich import add_ancestry
from detectors.builders.event_alert import event_alert, run_times
from detectors.model import Rule
from detectors.query import Window, events_pattern, iter_pages, rule_query


def union_window(windows: Sequence[Window]) -> Window:
    """The smallest window holding all of ``windows`` (an open start wins)."""
    starts = [w.start for w in windows]
    start = None if any(s is None for s in starts) else min(s for s in starts if s is not None)
    return Window(start, max(w.end for w in windows))


def union_codes(rules: Sequence[Rule]) -> list[str]:
    """Every event code of ``rules``, in numeric order."""
    return sorted({c for r in rules for c in r.filter.event_codes}, key=lambda c: (len(c), c))


def batch_query(ctx: RunContext, rules: Sequence[Rule], windows: Mapping[str, Window]) -> dict[str, Any]:
    """One query for ``rules``: clause ``str(i)`` is rule ``i``'s own query within its own window."""
    named: list[dict[str, Any]] = []
    for i, rule in enumerate(rules):
        q = rule_query(ctx.es, rule, ctx.prefix, window=windows[rule.id])
        q["bool"]["_name"] = str(i)
        named.append(q)
    codes = union_codes(rules)
    outer = union_window([windows[r.id] for r in rules])
    return {
        "bool": {
            "filter": [
                outer.clause(),
                {"terms": {"event.code": codes}},
                {"bool": {"should": named, "minimum_should_match": 1}},
            ]
        }
    }


def run_batch(
    rules: Sequence[Rule], windows: Mapping[str, Window], ctx: RunContext, created: set[str]
) -> dict[str, RunStats]:
    """Run ``rules`` in one paged search (PIT + ``search_after``) and write their alerts; the
    counts per rule id. ``created`` holds the alert ids this run created so far: an earlier,
    failed attempt of the same rules may have written some, and they count as alerts, not as
    duplicates, when written again. Raises on any failure (the caller splits the batch)."""
    stats = {r.id: RunStats() for r in rules}
    query = batch_query(ctx, rules, windows)
    pages = iter_pages(ctx.es, events_pattern(ctx.prefix), query, page_size=ctx.page_size, skip_shards=True)
    for page in pages:
        owners: list[str] = []
        items: list[tuple[str, str, dict[str, Any]]] = []
        srcs: list[dict[str, Any]] = []
        for hit in page:
            src = hit["_source"]
            for name in hit.get("matched_queries") or ():
                rule = rules[int(name)]
                stats[rule.id].hits += 1
                owners.append(rule.id)
                items.append(event_alert(rule, hit, ctx.prefix, ctx.now, run_times(windows[rule.id])))
                srcs.append(src)
        write_alerts(ctx, owners, items, srcs, stats, created)
    return stats


def write_alerts(
    ctx: RunContext,
    owners: Sequence[str],
    items: list[tuple[str, str, dict[str, Any]]],
    srcs: list[dict[str, Any]],
    stats: Mapping[str, RunStats],
    created: set[str],
) -> None:
    """Add ancestry to a page's alerts (``owners[i]``: the rule of ``items[i]``, made from
    ``srcs[i]``), write them and count them per rule: an alert this run created before (an
    earlier, failed attempt) counts as an alert again, any other 409 as a duplicate."""
    add_ancestry(ctx, [doc for _, _, doc in items], srcs)
    for rid, (_, aid, _), status in zip(owners, items, create_alerts(ctx.es, items), strict=True):
        if status != 409:
            created.add(aid)
            stats[rid].alerts += 1
        elif aid in created:
            stats[rid].alerts += 1
        else:
            stats[rid].duplicates += 1

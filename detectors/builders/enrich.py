"""What alerts are enriched with: the process ancestry and the matched intel indicators."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from detectors.ancestry import Chain, Link, build_chains, link_from_source
from detectors.builders.context import RunContext, field_values
from detectors.intel.lookup import find_indicators
from detectors.model import IntelMatchParams, Rule
from detectors.query import get_path

ChainBuilder = Callable[
    [Sequence[tuple[str, str]], dict[tuple[str, str], Link]], dict[tuple[str, str], Chain]
]


def add_ancestry(
    ctx: RunContext,
    docs: Sequence[dict[str, Any]],
    src_by_doc: Sequence[dict[str, Any]],
    chains_for: ChainBuilder | None = None,
) -> None:
    """Attach ``ancestry`` to every alert that names a process, in one batch for all of them.
    ``chains_for(starts, known)``: how the chains are built (default: the cluster,
    :func:`build_chains`; the stream stage asks its process cache first)."""
    starts: list[tuple[str, str]] = []
    known: dict[tuple[str, str], Link] = {}
    for src in src_by_doc:
        host, eid = get_path(src, "host.name"), get_path(src, "process.entity_id")
        if host and eid:
            key = (str(host), str(eid))
            starts.append(key)
            if get_path(src, "event.code") == "1" and key not in known:
                known[key] = link_from_source(src)
    if not starts:
        return
    if chains_for is None:
        chains = build_chains(ctx.es, ctx.prefix, starts, depth=ctx.ancestry_depth, known=known)
    else:
        chains = chains_for(starts, known)
    for doc, src in zip(docs, src_by_doc, strict=True):
        host, eid = get_path(src, "host.name"), get_path(src, "process.entity_id")
        if host and eid:
            doc["ancestry"] = chains[(str(host), str(eid))].to_doc()


def add_intel(
    ctx: RunContext, rule: Rule, docs: Sequence[dict[str, Any]], srcs: Sequence[dict[str, Any]]
) -> None:
    """Attach the matched indicators (``threat.indicator``, ``threat.enrichments``)."""
    assert isinstance(rule.params, IntelMatchParams)
    p = rule.params
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for f in p.fields:
        values = sorted({v for src in srcs for v in field_values(get_path(src, f))})
        found[f] = find_indicators(ctx.es, f, values, kind="intel", prefix=ctx.prefix) if values else {}
    for doc, src in zip(docs, srcs, strict=True):
        enrichments: list[dict[str, Any]] = []
        for f in p.fields:
            for v in field_values(get_path(src, f)):
                for ind in found[f].get(v, []):
                    feed = get_path(ind, "threat.feed.name") or get_path(ind, "intel.feed")
                    if p.feeds and feed not in p.feeds:
                        continue
                    indicator = get_path(ind, "threat.indicator") or {}
                    enrichments.append(
                        {
                            "indicator": indicator,
                            "feed": {"name": feed},
                            "matched": {
                                "atomic": v,
                                "field": f,
                                "type": "indicator_match_rule",
                                "id": get_path(ind, "intel.value") or v,
                            },
                        }
                    )
        threat = doc["threat"]
        if enrichments:
            threat["enrichments"] = enrichments
            threat["indicator"] = enrichments[0]["indicator"]
            threat["feed"] = {"name": enrichments[0]["feed"]["name"]}
        doc["alert"]["intel"] = {
            "matched_fields": sorted({e["matched"]["field"] for e in enrichments}),
            "matched_values": sorted({e["matched"]["atomic"] for e in enrichments}),
            "feeds": sorted({str(e["feed"]["name"]) for e in enrichments if e["feed"]["name"]}),
        }

"""Rule type → builder (a registry, not an if-chain).

A builder runs one rule over one window (``event.ingested``) and writes its alerts:

- ``query``: every matching event is an alert (id: rule + source event).
- ``intel_match``: the same, with the intel lookup clause in the query; each alert is enriched
  with the matched indicators (``threat.indicator.*``, ``threat.enrichments``).
- ``new_value``: a combination of field values, first seen in this window, never seen within the
  history before it: one alert per value, ever (id: rule + value).
- ``spread``: a value on at least N hosts within a window: one alert per value, updated with
  read-modify-write (``if_seq_no``) as hosts appear; patient zero by the events' ``@timestamp``.
- ``threshold``: at least N events per group in a fixed ``@timestamp`` window (id: rule + group +
  window start).

Every alert carries the process ancestry of its process (one query per level for a whole page of
alerts; for ``spread``, the ancestry on the patient-zero host).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

from detectors.alerts import (
    alert_id,
    alert_index_for,
    base_alert,
    copy_fields,
    find_alerts,
    from_event,
    put_alert,
    update_alerts,
    write_alerts,
)
from detectors.ancestry import DEFAULT_DEPTH, Link, build_chains, link_from_source
from detectors.intel.lookup import find_indicators
from detectors.model import (
    IntelMatchParams,
    NewValueParams,
    Rule,
    SpreadParams,
    Suppression,
    ThresholdParams,
)
from detectors.query import (
    PAGE_SIZE,
    Window,
    events_pattern,
    get_path,
    iso,
    iter_composite,
    iter_pages,
    rule_query,
)


@dataclass(slots=True)
class RunContext:
    es: Elasticsearch
    prefix: str
    now: datetime
    window: Window
    ancestry_depth: int = DEFAULT_DEPTH
    page_size: int = PAGE_SIZE


@dataclass(slots=True)
class RunStats:
    hits: int = 0
    alerts: int = 0
    duplicates: int = 0
    suppressed: int = 0
    updated: int = 0
    notes: list[str] = field(default_factory=list)


Builder = Callable[[Rule, RunContext], RunStats]
BUILDERS: dict[str, Builder] = {}


def register(rule_type: str) -> Callable[[Builder], Builder]:
    def deco(fn: Builder) -> Builder:
        BUILDERS[rule_type] = fn
        return fn

    return deco


def _ms_to_iso(ms: float | int | None) -> str | None:
    if ms is None:
        return None
    return iso(datetime.fromtimestamp(float(ms) / 1000.0, tz=UTC))


def _values(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, list):
        return [str(x) for x in v if x is not None]
    return [str(v)]


# ------------------------------------------------------------------ shared enrichment
def add_ancestry(
    ctx: RunContext, docs: Sequence[dict[str, Any]], src_by_doc: Sequence[dict[str, Any]]
) -> None:
    """Attach ``ancestry`` to every alert that names a process, in one batch for all of them."""
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
    chains = build_chains(ctx.es, ctx.prefix, starts, depth=ctx.ancestry_depth, known=known)
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
        values = sorted({v for src in srcs for v in _values(get_path(src, f))})
        found[f] = find_indicators(ctx.es, f, values, kind="intel", prefix=ctx.prefix) if values else {}
    for doc, src in zip(docs, srcs, strict=True):
        enrichments: list[dict[str, Any]] = []
        for f in p.fields:
            for v in _values(get_path(src, f)):
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


# ------------------------------------------------------------------ query and intel_match
def _event_alerts(rule: Rule, ctx: RunContext, intel: bool) -> RunStats:
    stats = RunStats()
    query = rule_query(ctx.es, rule, ctx.prefix, window=ctx.window)
    sup = rule.suppression
    base_query: dict[str, Any] | None = None  # the rule's filter without the ingest window
    for page in iter_pages(ctx.es, events_pattern(ctx.prefix), query, page_size=ctx.page_size):
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
                    "window_end": _ms_to_iso((start + sup.window) * 1000),
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


# ------------------------------------------------------------------ suppression groups
def group_key(src: dict[str, Any], fields: Sequence[str]) -> list[str]:
    """The suppression key of an event: per field, its values (strings, source order) joined with
    ``|``; a missing (or null, or empty-list) field is ``""``."""
    return ["|".join(_values(get_path(src, f))) for f in fields]


def bucket_start(ts: Any, window: int, now: datetime) -> int:
    """Start (epoch seconds) of the ``window``-second bucket of an event's ``@timestamp``
    (``now`` when the event has none)."""
    t = datetime.fromisoformat(str(ts).replace("Z", "+00:00")) if ts else now
    return int(t.timestamp()) // window * window


@dataclass(frozen=True, slots=True)
class GroupRef:
    """A suppression alert touched by a page: its id, index, key and bucket start."""

    aid: str
    index: str
    key: tuple[str, ...]
    start: int


def part_terms(part: str) -> list[str]:
    """Every value an event whose key component is ``part`` can hold: any run of consecutive
    ``|``-separated pieces (``a|b`` comes from ``["a", "b"]`` or from ``["a|b"]``)."""
    pieces = part.split("|")
    n = len(pieces)
    return sorted({"|".join(pieces[i:j]) for i in range(n) for j in range(i + 1, n + 1)})


def part_clause(field: str, part: str) -> dict[str, Any]:
    """A clause every event whose key component for ``field`` is ``part`` matches (a superset when
    ``part`` is empty or holds ``|``; :func:`figures_from_response` tells when it was exact)."""
    if part == "":
        return {
            "bool": {
                "should": [{"bool": {"must_not": [{"exists": {"field": field}}]}}, {"term": {field: ""}}],
                "minimum_should_match": 1,
            }
        }
    if "|" not in part:
        return {"term": {field: part}}
    return {"terms": {field: part_terms(part)}}


def group_query(base: dict[str, Any], fields: Sequence[str], g: GroupRef, window: int) -> dict[str, Any]:
    """``base`` (the rule's query) restricted to the group's bucket and values."""
    rng = {"gte": g.start * 1000, "lt": (g.start + window) * 1000, "format": "epoch_millis"}
    extra = [{"range": {"@timestamp": rng}}, *(part_clause(f, p) for f, p in zip(fields, g.key, strict=True))]
    b = dict(base["bool"])
    b["filter"] = [*b.get("filter", []), *extra]
    return {"bool": b}


def figures_aggs(fields: Sequence[str]) -> dict[str, Any]:
    aggs: dict[str, Any] = {
        "first": {"min": {"field": "@timestamp"}},
        "last": {"max": {"field": "@timestamp"}},
    }
    for i, f in enumerate(fields):
        aggs[f"n{i}"] = {"value_count": {"field": f}}
        aggs[f"e{i}"] = {"filter": {"exists": {"field": f}}}
    return aggs


def figures_from_response(resp: dict[str, Any], key: Sequence[str]) -> dict[str, Any] | None:
    """``count``/``first_seen``/``last_seen`` from a :func:`figures_aggs` search, or None when the
    clauses may have matched events of other keys: a component with ``|``, or an event holding
    more than one distinct value of a group field (values counted == events having the field)."""
    if any("|" in part for part in key):
        return None
    aggs = resp.get("aggregations") or {}
    for i in range(len(key)):
        if int(aggs[f"n{i}"]["value"]) != int(aggs[f"e{i}"]["doc_count"]):
            return None
    count = int(resp["hits"]["total"]["value"])
    return {
        "count": count,
        "first_seen": _ms_to_iso(aggs["first"]["value"]) if count else None,
        "last_seen": _ms_to_iso(aggs["last"]["value"]) if count else None,
    }


def tally(srcs: Iterable[dict[str, Any]], fields: Sequence[str], key: Sequence[str]) -> dict[str, Any]:
    """The figures of the events (``_source``) whose :func:`group_key` is ``key``."""
    count, lo, hi = 0, None, None
    for src in srcs:
        if group_key(src, fields) != list(key):
            continue
        ts = src.get("@timestamp")
        if not ts:
            continue
        t = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
        count += 1
        lo = t if lo is None or t < lo else lo
        hi = t if hi is None or t > hi else hi
    return {
        "count": count,
        "first_seen": iso(lo) if lo else None,
        "last_seen": iso(hi) if hi else None,
    }


def _iter_sources(ctx: RunContext, query: dict[str, Any], fields: Sequence[str]) -> Iterator[dict[str, Any]]:
    for page in iter_pages(
        ctx.es,
        events_pattern(ctx.prefix),
        query,
        source=[*fields, "@timestamp"],
        page_size=ctx.page_size,
    ):
        for hit in page:
            yield hit["_source"]


def update_group_figures(
    ctx: RunContext, sup: Suppression, base: dict[str, Any], groups: Sequence[GroupRef], stats: RunStats
) -> None:
    """Write the absolute ``alert.group.count``/``first_seen``/``last_seen`` of every touched
    suppression alert, counted over the events (not a running tally: reruns and overlapping
    windows write the same figures). One ``msearch`` of aggregations for a whole page; a group
    whose key the aggregation cannot count exactly (multi-valued fields) is counted by reading
    its candidate events' group fields."""
    fields = sup.group_by
    todo = list({g.aid: g for g in groups}.values())
    updates: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(0, len(todo), 200):
        chunk = todo[i : i + 200]
        searches: list[dict[str, Any]] = []
        queries = [group_query(base, fields, g, sup.window) for g in chunk]
        for q in queries:
            searches.append({"index": events_pattern(ctx.prefix), "ignore_unavailable": True,
                             "allow_no_indices": True})  # fmt: skip
            searches.append({"query": q, "size": 0, "track_total_hits": True, "aggs": figures_aggs(fields)})
        resp = ctx.es.msearch(searches=searches)
        for g, q, r in zip(chunk, queries, resp["responses"], strict=True):
            if "error" in r:
                stats.notes.append(f"group figures of alert {g.aid} not computed: {str(r['error'])[:300]}")
                continue
            figures = figures_from_response(r, g.key)
            if figures is None:
                figures = tally(_iter_sources(ctx, q, fields), fields, g.key)
            if figures["count"]:
                updates.append((g.index, g.aid, {"alert": {"group": figures}}))
    update_alerts(ctx.es, updates)


@register("query")
def build_query(rule: Rule, ctx: RunContext) -> RunStats:
    return _event_alerts(rule, ctx, intel=False)


@register("intel_match")
def build_intel_match(rule: Rule, ctx: RunContext) -> RunStats:
    return _event_alerts(rule, ctx, intel=True)


# ------------------------------------------------------------------ new_value
def _key_clause(fields: Sequence[str], key: Sequence[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for f, v in zip(fields, key, strict=True):
        if v is None:
            out.append({"bool": {"must_not": [{"exists": {"field": f}}]}})
        else:
            out.append({"term": {f: v}})
    return out


_TOP = {"top_hits": {"size": 1, "sort": [{"@timestamp": {"order": "asc"}}]}}


@register("new_value")
def build_new_value(rule: Rule, ctx: RunContext) -> RunStats:
    assert isinstance(rule.params, NewValueParams)
    p = rule.params
    stats = RunStats()
    es, index = ctx.es, events_pattern(ctx.prefix)
    query = rule_query(es, rule, ctx.prefix, window=ctx.window)
    sources = [{f: {"terms": {"field": f, "missing_bucket": True}}} for f in p.fields]
    cands: dict[tuple[Any, ...], dict[str, Any]] = {}
    for b in iter_composite(es, index, query, sources, {"first": _TOP}):
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
                            *_key_clause(p.fields, k),
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


# ------------------------------------------------------------------ spread
def _merge_hosts(old: list[dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    by: dict[str, dict[str, Any]] = {h["name"]: h for h in old}
    for name, h in new.items():
        cur = by.get(name)
        if cur is None or h["first_seen"] < cur["first_seen"]:
            by[name] = h
    return sorted(by.values(), key=lambda h: (h["first_seen"], h["name"]))


def _spread_window(hosts: list[dict[str, Any]], window: int, min_hosts: int) -> list[dict[str, Any]]:
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


@register("spread")
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
    for b in iter_composite(ctx.es, events_pattern(ctx.prefix), hq, sources, {"first": _TOP}):
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
        merged = _spread_window(_merge_hosts(old_hosts, hosts), p.window, p.min_hosts)
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


# ------------------------------------------------------------------ threshold
@register("threshold")
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
                        *_key_clause(p.group_by, k[1:]),
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
        for b in iter_composite(es, index, cq, sources, {"first": _TOP}):
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
            start = _ms_to_iso(k[0])
            doc = from_event(rule, hit, ctx.now, aid) if old is None else dict(old["_source"])
            doc["alert"]["count"] = count
            doc["alert"]["group"] = {
                "fields": list(p.group_by),
                "values": [str(v) for v in k[1:]],
                "key": "|".join(str(v) for v in k[1:]),
                "window_start": start,
                "window_end": _ms_to_iso(k[0] + p.window * 1000),
            }
            if old is None:
                add_ancestry(ctx, [doc], [hit["_source"]])
            if put_alert(es, alert_index_for(ctx.prefix, start, ctx.now), aid, doc, old):
                if old is None:
                    stats.alerts += 1
                else:
                    stats.updated += 1
    return stats


def builder_for(rule: Rule) -> Builder:
    try:
        return BUILDERS[rule.type]
    except KeyError:
        raise KeyError(f"no builder registered for rule type {rule.type!r}") from None


__all__ = [
    "BUILDERS",
    "Builder",
    "RunContext",
    "RunStats",
    "base_alert",
    "builder_for",
    "copy_fields",
    "register",
]

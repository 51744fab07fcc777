"""Elasticsearch queries for rules: the event filter, the run window, and reading every match.

Every match of a window is read with a point-in-time and ``search_after`` (no 10,000 cap), in
pages, so a run's memory is bounded by the page size, not by the number of matches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

from detectors.intel.lookup import ChunkLists, lookup_clause
from detectors.model import Filter, IntelClause, Rule

PAGE_SIZE = 5000
PIT_KEEP_ALIVE = "2m"


def events_pattern(prefix: str) -> str:
    return f"{prefix}-events-*"


def alerts_pattern(prefix: str) -> str:
    return f"{prefix}-alerts-*"


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open interval ``[start, end)`` on ``event.ingested``; ``start`` None = from the
    beginning."""

    start: datetime | None
    end: datetime

    def clause(self, field: str = "event.ingested") -> dict[str, Any]:
        rng: dict[str, Any] = {"lt": iso(self.end), "format": "strict_date_optional_time"}
        if self.start is not None:
            rng["gte"] = iso(self.start)
        return {"range": {field: rng}}

    def __str__(self) -> str:
        return f"[{iso(self.start) if self.start else '-∞'}, {iso(self.end)})"


def _values_clause(field: str, values: Sequence[str]) -> dict[str, Any]:
    """A value exception. ``.caseless`` fields are stored lower-case, and so are hashes (the
    shipper lower-cases every digest): a hash copied upper-case from a report still matches."""
    if field.endswith(".caseless") or ".hash." in f".{field}.":
        values = [v.lower() for v in values]
    return {"terms": {field: list(values)}}


def intel_should(
    es: Elasticsearch, clause: IntelClause, prefix: str, kind: str = "intel", chunks: ChunkLists | None = None
) -> dict[str, Any]:
    """Match any of the clause's fields against the (intel or allow) lists (or only against
    ``chunks``: see :func:`~detectors.intel.lookup.lookup_clause`)."""
    parts = [
        lookup_clause(
            es,
            f,
            kind="allow" if kind == "allow" else "intel",
            feeds=list(clause.feeds) if clause.feeds else None,
            prefix=prefix,
            types=list(clause.types) if clause.types else None,
            chunks=chunks,
        )
        for f in clause.fields
    ]
    if len(parts) == 1:
        return parts[0]
    return {"bool": {"should": parts, "minimum_should_match": 1}}


def filter_clauses(es: Elasticsearch, flt: Filter, prefix: str) -> list[dict[str, Any]]:
    # no event codes: every event (the integrity rules watch every record)
    out: list[dict[str, Any]] = [{"terms": {"event.code": list(flt.event_codes)}}] if flt.event_codes else []
    if flt.query is not None:
        out.append(flt.query)
    if flt.lucene is not None:
        out.append({"query_string": {"query": flt.lucene, "analyze_wildcard": True}})
    if flt.intel is not None:
        out.append(intel_should(es, flt.intel, prefix))
    return out


def rule_query(
    es: Elasticsearch,
    rule: Rule,
    prefix: str,
    *,
    window: Window | None = None,
    extra: Sequence[dict[str, Any]] = (),
    exceptions: bool = True,
    intel_chunks: ChunkLists | None = None,
) -> dict[str, Any]:
    """The bool query of a rule: its filter (and the intel match of ``intel_match`` rules),
    minus its exceptions, within ``window`` on ``event.ingested``. ``intel_chunks``: the
    ``intel_match`` clause looks only at these lookup chunks (a retro-hunt's added indicators)."""
    from detectors.model import IntelMatchParams

    must = filter_clauses(es, rule.filter, prefix)
    if isinstance(rule.params, IntelMatchParams):
        p = rule.params
        must.append(intel_should(es, IntelClause(p.fields, p.feeds, p.types), prefix, chunks=intel_chunks))
    if window is not None:
        must.append(window.clause())
    must.extend(extra)
    must_not: list[dict[str, Any]] = []
    if exceptions:
        for allow in rule.exceptions.allowlists:
            must_not.append(intel_should(es, allow, prefix, kind="allow"))
        for ve in rule.exceptions.values:
            must_not.append(_values_clause(ve.field, ve.values))
    q: dict[str, Any] = {"filter": must}
    if must_not:
        q["must_not"] = must_not
    return {"bool": q}


def iter_pages(
    es: Elasticsearch,
    index: str,
    query: dict[str, Any],
    *,
    source: Sequence[str] | bool | None = None,
    page_size: int = PAGE_SIZE,
    sort: Sequence[Any] = ("_shard_doc",),
    skip_shards: bool = False,
    docvalue_fields: Sequence[Any] = (),
) -> Iterator[list[dict[str, Any]]]:
    """Every hit of ``query`` in ``index``, page by page, with a point-in-time and
    ``search_after`` (sorted by ``_shard_doc``, the cheapest total order, unless ``sort`` asks
    otherwise; end it with ``_shard_doc`` so the order is total). ``skip_shards``: let
    Elasticsearch leave out the shards whose range of a top-level range filter (the window on
    ``event.ingested``) cannot match, before they build the query (a pre-filter round trip).
    A shard that fails raises: by default Elasticsearch answers 200 with the other shards' hits
    only, and a rule would move its checkpoint past events it never saw."""
    pit = es.open_point_in_time(
        index=index, keep_alive=PIT_KEEP_ALIVE, ignore_unavailable=True, allow_partial_search_results=False
    )
    pit_id: str = pit["id"]
    try:
        after: list[Any] | None = None
        while True:
            kwargs: dict[str, Any] = {
                "pit": {"id": pit_id, "keep_alive": PIT_KEEP_ALIVE},
                "query": query,
                "size": page_size,
                "sort": list(sort),
                "track_total_hits": False,
                "allow_partial_search_results": False,
            }
            if skip_shards:
                kwargs["pre_filter_shard_size"] = 1
            if source is not None:
                kwargs["source"] = source if isinstance(source, bool) else list(source)
            if docvalue_fields:
                kwargs["docvalue_fields"] = list(docvalue_fields)
            if after is not None:
                kwargs["search_after"] = after
            resp = es.search(**kwargs)
            pit_id = resp.get("pit_id", pit_id)
            hits: list[dict[str, Any]] = resp["hits"]["hits"]
            if not hits:
                return
            yield hits
            if len(hits) < page_size:
                return
            after = hits[-1]["sort"]
    finally:
        try:
            es.close_point_in_time(id=pit_id)
        except Exception:  # the PIT expires on its own; never mask the real error
            pass


def iter_composite(
    es: Elasticsearch,
    index: str,
    query: dict[str, Any],
    sources: list[dict[str, Any]],
    aggs: dict[str, Any] | None = None,
    *,
    page_size: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Every bucket of a composite aggregation, paging with ``after_key``."""
    after: dict[str, Any] | None = None
    while True:
        comp: dict[str, Any] = {"size": page_size, "sources": sources}
        if after is not None:
            comp["after"] = after
        agg: dict[str, Any] = {"composite": comp}
        if aggs:
            agg["aggs"] = aggs
        resp = es.search(
            index=index,
            query=query,
            size=0,
            aggs={"c": agg},
            ignore_unavailable=True,
            allow_no_indices=True,
            track_total_hits=False,
        )
        c = (resp.get("aggregations") or {}).get("c")
        if not c:
            return
        buckets: list[dict[str, Any]] = c.get("buckets", [])
        yield from buckets
        after = c.get("after_key")
        if not buckets or after is None or len(buckets) < page_size:
            return


def get_path(doc: dict[str, Any], dotted: str) -> Any:
    """A dotted field of a nested ``_source`` (also accepting flattened dotted keys)."""
    if dotted in doc:
        return doc[dotted]
    cur: Any = doc
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def set_path(doc: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = doc
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    cur[parts[-1]] = value

"""What the shipped saved objects run and read, for the tests: a saved search as the request
Discover sends, a Lens layer as the aggregation Lens runs (and the table it draws from the
answer), and every field an object uses. Only the operations the shipped objects use are
supported; anything else is rejected, so a new object fails its test rather than being
translated wrongly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from detectors.kibana.objects import KibanaError, SavedObjects
from tests.kibana_kql import es_query, parse_kql

#: Lens's pseudo field of the ``count`` operation.
RECORDS_FIELD = "___records___"


def search_source(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = (obj.get("attributes") or {}).get("kibanaSavedObjectMeta") or {}
    raw = meta.get("searchSourceJSON") or "{}"
    data: dict[str, Any] = json.loads(raw)
    return data


def _data_view(objects: SavedObjects, obj: Mapping[str, Any], ref_name: str) -> dict[str, Any]:
    for ref in obj.get("references", []):
        if ref.get("name") == ref_name and ref.get("type") == "index-pattern":
            view = objects.by_key().get(("index-pattern", str(ref["id"])))
            if view is None:
                raise KibanaError(f"{obj['type']} {obj['id']}: data view {ref['id']} not found")
            return view
    raise KibanaError(f"{obj['type']} {obj['id']}: no reference {ref_name!r}")


@dataclass(frozen=True, slots=True)
class SearchRequest:
    index: str
    query: dict[str, Any]
    sort: list[dict[str, str]]
    columns: list[str]


def search_request(
    objects: SavedObjects, obj: Mapping[str, Any], *, time_range: tuple[str, str] | None = None
) -> SearchRequest:
    """The request Discover sends for a saved search: its data view's index pattern, its KQL and
    filters (only an empty filter list is supported), its sort and columns."""
    src = search_source(obj)
    if src.get("filter"):
        raise KibanaError(f"search {obj['id']}: filters are not supported, use the KQL query")
    q = src.get("query") or {}
    if q.get("language", "kuery") != "kuery":
        raise KibanaError(f"search {obj['id']}: only KQL queries are supported")
    view = _data_view(objects, obj, str(src.get("indexRefName", "")))
    vattrs = view["attributes"]
    attrs = obj["attributes"]
    return SearchRequest(
        index=str(vattrs["title"]),
        query=es_query(
            str(q.get("query", "")), time_field=vattrs.get("timeFieldName"), time_range=time_range
        ),
        sort=[{str(f): str(d)} for f, d in attrs.get("sort", [])],
        columns=list(attrs.get("columns", [])),
    )


@dataclass(frozen=True, slots=True)
class LensRequest:
    """One Lens layer as an aggregation request; ``buckets`` are the bucket column ids in nesting
    order (the aggregation names), ``metrics`` the metric column ids (``count`` = ``doc_count``)."""

    layer_id: str
    index: str
    query: dict[str, Any]
    aggs: dict[str, Any]
    buckets: list[str]
    metrics: list[str]
    columns: dict[str, dict[str, Any]]


def lens_layers(obj: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    state = obj["attributes"]["state"]
    layers: dict[str, dict[str, Any]] = state["datasourceStates"]["formBased"]["layers"]
    return layers


def _bucket_agg(col_id: str, col: Mapping[str, Any], interval: str) -> dict[str, Any]:
    op = col.get("operationType")
    params = col.get("params") or {}
    if op == "terms":
        order = params.get("orderBy") or {"type": "alphabetical"}
        direction = str(params.get("orderDirection", "desc"))
        if order.get("type") == "alphabetical":
            key = "_key"
        elif order.get("type") == "column":
            key = "_count"  # checked by the caller: the ordering column is a count
        else:
            raise KibanaError(f"column {col_id}: terms ordered by {order.get('type')!r} is not supported")
        terms: dict[str, Any] = {"field": col["sourceField"], "size": int(params.get("size", 5))}
        terms["order"] = {key: direction}
        if params.get("missingBucket"):
            terms["missing"] = "(missing value)"
        return {"terms": terms}
    if op == "date_histogram":
        value = str(params.get("interval", "auto"))
        hist: dict[str, Any] = {
            "field": col["sourceField"],
            "fixed_interval": interval if value == "auto" else value,
        }
        if params.get("includeEmptyRows"):
            hist["min_doc_count"] = 0
        return {"date_histogram": hist}
    raise KibanaError(f"column {col_id}: bucket operation {op!r} is not supported")


def lens_request(
    objects: SavedObjects,
    obj: Mapping[str, Any],
    layer_id: str,
    *,
    time_range: tuple[str, str] | None = None,
    auto_interval: str = "1h",
) -> LensRequest:
    """The aggregation Lens runs for ``layer_id`` of ``obj``: bucket columns (``terms``,
    ``date_histogram``) nested in ``columnOrder``, ``count`` metrics as ``doc_count``, the
    visualisation's KQL and the time filter. ``auto`` intervals become ``auto_interval`` (Kibana
    derives them from the time range). Other operations, filters and column filters are rejected."""
    state = obj["attributes"]["state"]
    if state.get("filters"):
        raise KibanaError(f"lens {obj['id']}: filters are not supported, use the KQL query")
    q = state.get("query") or {}
    if q.get("language", "kuery") != "kuery":
        raise KibanaError(f"lens {obj['id']}: only KQL queries are supported")
    layer = lens_layers(obj)[layer_id]
    columns: dict[str, dict[str, Any]] = layer["columns"]
    view = _data_view(objects, obj, f"indexpattern-datasource-layer-{layer_id}")
    vattrs = view["attributes"]
    buckets: list[str] = []
    metrics: list[str] = []
    for cid in layer["columnOrder"]:
        col = columns[cid]
        if col.get("filter"):
            raise KibanaError(f"lens {obj['id']} column {cid}: column filters are not supported")
        if col.get("isBucketed"):
            order = (col.get("params") or {}).get("orderBy") or {}
            if order.get("type") == "column" and columns[order["columnId"]].get("operationType") != "count":
                raise KibanaError(f"lens {obj['id']} column {cid}: ordering by a non-count column")
            buckets.append(cid)
        elif col.get("operationType") == "count":
            metrics.append(cid)
        else:
            raise KibanaError(
                f"lens {obj['id']} column {cid}: metric {col.get('operationType')!r} not supported"
            )
    aggs: dict[str, Any] = {}
    for cid in reversed(buckets):
        agg = _bucket_agg(cid, columns[cid], auto_interval)
        if aggs:
            agg["aggs"] = aggs
        aggs = {cid: agg}
    return LensRequest(
        layer_id=layer_id,
        index=str(vattrs["title"]),
        query=es_query(
            str(q.get("query", "")), time_field=vattrs.get("timeFieldName"), time_range=time_range
        ),
        aggs=aggs,
        buckets=buckets,
        metrics=metrics,
        columns=columns,
    )


def lens_rows(req: LensRequest, response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The table Lens draws from the response: one row per leaf bucket, keyed by column id
    (date keys as ``key_as_string``), each count metric the bucket's ``doc_count``. Empty
    date buckets are kept, as Lens does with ``includeEmptyRows``."""
    rows: list[dict[str, Any]] = []

    def walk(node: Mapping[str, Any], depth: int, row: dict[str, Any]) -> None:
        if depth == len(req.buckets):
            rows.append({**row, **{m: int(node["doc_count"]) for m in req.metrics}})
            return
        cid = req.buckets[depth]
        for b in node[cid]["buckets"]:
            walk(b, depth + 1, {**row, cid: b.get("key_as_string", b["key"])})

    if not req.buckets:
        total = response["hits"]["total"]
        return [{m: int(total["value"] if isinstance(total, Mapping) else total) for m in req.metrics}]
    walk(response["aggregations"], 0, {})
    return rows


# ------------------------------------------------------------------------- field inventory
def dashboard_panels(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(obj["attributes"].get("panelsJSON") or "[]")
    return panels


def fields_used(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(field, where)`` for every field ``obj`` uses: data view time field, saved-search
    columns, sort and KQL, Lens source fields and KQL, dashboard KQL. Lens's ``___records___``
    (the count pseudo field) is left out."""
    out: list[tuple[str, str]] = []
    attrs = obj.get("attributes") or {}
    kind = obj.get("type")
    if kind == "index-pattern":
        if attrs.get("timeFieldName"):
            out.append((str(attrs["timeFieldName"]), "timeFieldName"))
    elif kind in ("search", "dashboard"):
        src = search_source(obj)
        for f in parse_kql(str((src.get("query") or {}).get("query", ""))).fields:
            out.append((f, "query"))
        for f in attrs.get("columns", []):
            out.append((str(f), "columns"))
        for f, _ in attrs.get("sort", []):
            out.append((str(f), "sort"))
    elif kind == "lens":
        state = attrs["state"]
        for f in parse_kql(str((state.get("query") or {}).get("query", ""))).fields:
            out.append((f, "query"))
        for lid, layer in lens_layers(obj).items():
            for cid, col in layer["columns"].items():
                sf = col.get("sourceField")
                if sf and sf != RECORDS_FIELD:
                    out.append((str(sf), f"layer {lid} column {cid}"))
                flt = col.get("filter")
                if flt:
                    for f in parse_kql(str(flt.get("query", ""))).fields:
                        out.append((f, f"layer {lid} column {cid} filter"))
    return out


def references_of(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    refs: list[dict[str, Any]] = list(obj.get("references") or [])
    return refs


def data_view_of(objects: SavedObjects, obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The data views ``obj`` reads (a dashboard: those of its panels)."""
    by_key = objects.by_key()
    views: list[dict[str, Any]] = []
    for ref in references_of(obj):
        target = by_key.get((str(ref.get("type")), str(ref.get("id"))))
        if target is None:
            continue
        if target["type"] == "index-pattern":
            views.append(target)
        elif obj["type"] == "dashboard":
            views.extend(data_view_of(objects, target))
    return list({v["id"]: v for v in views}.values())

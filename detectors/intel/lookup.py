"""Query helpers for detectors: match event fields against intel feeds and allowlists.

:func:`lookup_clause` reads the feeds' manifests (``<prefix>-intel-feeds``) and returns a query
clause with one ``terms`` lookup per current chunk of ``<prefix>-intel-lookup``. Chunks of the
generation a manifest names are never deleted before the refresh after next (and a grace period),
so a clause built from a manifest keeps working while feeds refresh.

:func:`find_indicators` and :func:`is_listed` read the indicator documents for alert enrichment
and ``intel check``; they only accept documents of each feed's current generation (or newer:
a load in progress overwrites documents before it flips the manifest).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any, Literal

from elasticsearch import Elasticsearch

from .indices import feeds_index, indicators_index, lookup_index
from .model import infer

Kind = Literal["intel", "allow"]

_IP = ("ip", "cidr")
_HASHES = ("md5", "sha1", "sha256")

FIELD_TYPES: dict[str, tuple[str, ...]] = {
    "destination.ip": _IP,
    "source.ip": _IP,
    "dns.resolved_ip": _IP,
    "related.ip": _IP,
    "dns.question.name": ("domain",),
    "dns.question.registered_domain": ("domain",),
    "destination.domain": ("domain",),
    "source.domain": ("domain",),
    "related.hosts": ("domain",),
    "url.full": ("url",),
    "url.original": ("url",),
    "related.hash": _HASHES,
    "process.executable": ("image_path",),
    "process.parent.executable": ("image_path",),
    "file.path": ("image_path",),
    "process.name": ("image_name",),
    "process.parent.name": ("image_name",),
    "file.name": ("image_name",),
}
for _target in ("process", "process.parent", "file", "dll"):
    for _algo in _HASHES:
        FIELD_TYPES[f"{_target}.hash.{_algo}"] = (_algo,)

CASELESS_TYPES: frozenset[str] = frozenset({"image_path", "image_name"})
"""Types stored lower-cased and matched on the event field's ``.caseless`` sub-field."""

_MAX_HITS = 10_000
_VALUES_PER_QUERY = 1_000


def _types_for(field: str, types: Sequence[str] | None) -> tuple[str, ...]:
    if types is not None:
        return tuple(types)
    try:
        return FIELD_TYPES[field]
    except KeyError:
        raise ValueError(f"no indicator types known for field {field!r}; pass types=") from None


def manifests(
    es: Elasticsearch, *, kind: Kind | None = None, feeds: Sequence[str] | None = None, prefix: str = "sysmon"
) -> list[dict[str, Any]]:
    """The current manifests (feeds with a loaded generation), optionally of one kind / names."""
    filters: list[dict[str, Any]] = [{"exists": {"field": "generation_id"}}]
    if kind is not None:
        filters.append({"term": {"kind": kind}})
    if feeds is not None:
        if not feeds:
            return []
        filters.append({"terms": {"feed": list(feeds)}})
    resp = es.options(ignore_status=404).search(
        index=feeds_index(prefix),
        size=10_000,
        query={"bool": {"filter": filters}},
        source_includes=["feed", "kind", "generation", "generation_id", "chunks"],
    )
    return [dict(h["_source"]) for h in resp.get("hits", {}).get("hits", [])]


ChunkLists = dict[str, dict[str, list[str]]]
"""Lookup chunk ids by feed, then by indicator type (a manifest's ``chunks``, per feed)."""


def lookup_clause(
    es: Elasticsearch,
    field: str,
    *,
    kind: Literal["intel", "allow"] = "intel",
    feeds: Sequence[str] | None = None,
    prefix: str = "sysmon",
    types: Sequence[str] | None = None,
    chunks: ChunkLists | None = None,
) -> dict[str, Any]:
    """An ES query clause matching ``field`` against every entry of every selected feed of
    ``kind`` (``feeds`` None: all of them): a ``bool`` ``should`` of ``terms`` lookups, one per
    current chunk, or ``{"match_none": {}}`` when no feed lists anything of the field's types.

    ``chunks`` replaces the manifests' current chunks (a retro-hunt passes the chunks of the
    indicators a load added); ``feeds`` and ``types`` still select among them.
    Image path / name types match ``<field>.caseless`` (values are stored lower-case).
    """
    wanted = _types_for(field, types)
    if chunks is None:
        lists = {
            str(m["feed"]): dict(m.get("chunks") or {})
            for m in manifests(es, kind=kind, feeds=feeds, prefix=prefix)
        }
    else:
        lists = {f: c for f, c in chunks.items() if feeds is None or f in feeds}
    index = lookup_index(prefix)
    should: list[dict[str, Any]] = []
    for feed in sorted(lists):
        for t in wanted:
            target = f"{field}.caseless" if t in CASELESS_TYPES else field
            for cid in lists[feed].get(t, []):
                should.append({"terms": {target: {"index": index, "id": cid, "path": "values"}}})
    if not should:
        return {"match_none": {}}
    return {"bool": {"should": should, "minimum_should_match": 1}}


def _current_filter(found: list[dict[str, Any]]) -> dict[str, Any]:
    """Indicator documents of the current generation (or newer) of the given manifests."""
    return {
        "bool": {
            "should": [
                {
                    "bool": {
                        "filter": [
                            {"term": {"intel.feed": m["feed"]}},
                            {"range": {"intel.generation": {"gte": int(m["generation"])}}},
                        ]
                    }
                }
                for m in found
            ],
            "minimum_should_match": 1,
        }
    }


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _matches(doc: dict[str, Any], value: str, lowered: str, addr: Any) -> bool:
    intel = doc.get("intel", {})
    t, v = intel.get("type"), intel.get("value")
    if t == "cidr":
        if addr is None:
            return False
        try:
            return bool(addr in ipaddress.ip_network(str(v), strict=False))
        except (TypeError, ValueError):
            return False
    if t == "ip":
        return addr is not None and _ip(str(v)) == addr
    return str(v) in (value, lowered)


def _search_indicators(
    es: Elasticsearch,
    prefix: str,
    found: list[dict[str, Any]],
    types: Sequence[str] | None,
    values: list[str],
) -> list[dict[str, Any]]:
    should: list[dict[str, Any]] = [{"terms": {"intel.value": values}}]
    addrs = [v for v in values if _ip(v) is not None]
    if addrs and (types is None or "cidr" in types):
        should.append({"terms": {"intel.cidr": addrs}})
    filters: list[dict[str, Any]] = [
        _current_filter(found),
        {"bool": {"should": should, "minimum_should_match": 1}},
    ]
    if types is not None:
        filters.append({"terms": {"intel.type": list(types)}})
    resp = es.options(ignore_status=404).search(
        index=indicators_index(prefix),
        size=_MAX_HITS,
        query={"bool": {"filter": filters}},
        sort=[{"intel.feed": "asc"}, {"intel.type": "asc"}],
    )
    return [dict(h["_source"]) for h in resp.get("hits", {}).get("hits", [])]


def find_indicators(
    es: Elasticsearch,
    field: str,
    values: Sequence[str],
    *,
    kind: Literal["intel", "allow"] = "intel",
    prefix: str = "sysmon",
) -> dict[str, list[dict[str, Any]]]:
    """For each event value (as given), the indicator documents (``_source``) of feeds of
    ``kind`` that match it — an IP inside a listed CIDR included. Values without a match are
    absent from the result."""
    wanted = _types_for(field, None)
    found = manifests(es, kind=kind, prefix=prefix)
    if not found or not values:
        return {}
    distinct = list(dict.fromkeys(v for v in values if v))
    out: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(distinct), _VALUES_PER_QUERY):
        batch = distinct[start : start + _VALUES_PER_QUERY]
        keys: list[str] = []
        for v in batch:
            keys.append(v)
            if v.lower() != v:
                keys.append(v.lower())
            addr = _ip(v)
            if addr is not None and str(addr) != v:
                keys.append(str(addr))
        docs = _search_indicators(es, prefix, found, wanted, keys)
        for v in batch:
            addr = _ip(v)
            lowered = v.lower()
            hits = [d for d in docs if _matches(d, v, lowered, addr)]
            if hits:
                out[v] = hits
    return out


def is_listed(es: Elasticsearch, value: str, *, prefix: str = "sysmon") -> list[dict[str, Any]]:
    """Every indicator document, of any feed or allowlist, that lists ``value`` (normalised as
    feeds are: a hash or domain in any case, a URL, an IP — inside a listed CIDR included —, an
    image path or name)."""
    found = manifests(es, prefix=prefix)
    raw = value.strip()
    if not found or not raw:
        return []
    keys = [raw, raw.lower()]
    try:
        keys.append(infer(raw)[1])
    except ValueError:
        pass
    keys = list(dict.fromkeys(keys))
    docs = _search_indicators(es, prefix, found, None, keys)
    addr = _ip(keys[-1]) or _ip(raw)
    return [d for d in docs if any(_matches(d, k, k.lower(), addr) for k in keys)]

"""The Elasticsearch query DSL subset rules write (``filter.query``), as predicates: bool, term,
terms, prefix, wildcard, regexp, range, exists, match_all, match_none, query_string. Any other
query or option raises Unsupported."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from detectors.stream import leaves
from detectors.stream.errors import Unsupported
from detectors.stream.fields import field_spec
from detectors.stream.lucene import compile_lucene
from detectors.stream.predicates import ALWAYS, NEVER, Pred, boolean

_SCORING = frozenset({"boost", "_name"})


def _one_field(kind: str, body: Any) -> tuple[str, dict[str, Any]]:
    """``{field: value}`` or ``{field: {value: ..., options}}`` → field, options with ``value``."""
    if not isinstance(body, dict):
        raise Unsupported(f"{kind}: {body!r}")
    fields = {k: v for k, v in body.items() if k not in _SCORING}
    if len(fields) != 1:
        raise Unsupported(f"{kind} on {len(fields)} fields")
    ((name, spec),) = fields.items()
    opts = dict(spec) if isinstance(spec, dict) else {"value": spec}
    for k in _SCORING:
        opts.pop(k, None)
    return name, opts


def _check(kind: str, opts: dict[str, Any], allowed: set[str]) -> None:
    extra = set(opts) - allowed
    if extra:
        raise Unsupported(f"{kind} option(s) {sorted(extra)}")


def _term(body: Any) -> Pred:
    name, o = _one_field("term", body)
    _check("term", o, {"value", "case_insensitive"})
    return leaves.term(field_spec(name), o["value"], bool(o.get("case_insensitive")))


def _terms(body: Any) -> Pred:
    if not isinstance(body, dict):
        raise Unsupported(f"terms: {body!r}")
    fields = {k: v for k, v in body.items() if k not in _SCORING}
    if len(fields) != 1 or not isinstance(next(iter(fields.values())), list):
        raise Unsupported("terms other than one field and a list of values (a terms lookup?)")
    ((name, values),) = fields.items()
    return leaves.terms(field_spec(name), values)


def _prefix(body: Any) -> Pred:
    name, o = _one_field("prefix", body)
    _check("prefix", o, {"value", "case_insensitive"})
    return leaves.prefix(field_spec(name), str(o["value"]), bool(o.get("case_insensitive")))


def _wildcard(body: Any) -> Pred:
    name, o = _one_field("wildcard", body)
    if "wildcard" in o and "value" not in o:
        o["value"] = o.pop("wildcard")
    _check("wildcard", o, {"value", "case_insensitive"})
    return leaves.wildcard(field_spec(name), str(o["value"]), bool(o.get("case_insensitive")))


def _regexp(body: Any) -> Pred:
    name, o = _one_field("regexp", body)
    _check("regexp", o, {"value", "case_insensitive", "flags", "max_determinized_states"})
    if o.get("flags", "ALL") != "ALL":
        raise Unsupported(f"regexp flags {o['flags']}")
    return leaves.regexp(field_spec(name), str(o["value"]), bool(o.get("case_insensitive")))


def _range(body: Any) -> Pred:
    name, o = _one_field("range", body)
    _check("range", o, {"gt", "gte", "lt", "lte"})
    lo_inc = "gte" in o
    hi_inc = "lte" in o
    lo = o.get("gte", o.get("gt"))
    hi = o.get("lte", o.get("lt"))
    return leaves.range_(field_spec(name), lo, hi, lo_inc, hi_inc)


def _exists(body: Any) -> Pred:
    if not isinstance(body, dict) or set(body) - _SCORING != {"field"}:
        raise Unsupported(f"exists: {body!r}")
    return leaves.exists(field_spec(body["field"]))


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def _bool(body: Any) -> Pred:
    if not isinstance(body, dict):
        raise Unsupported(f"bool: {body!r}")
    _check("bool", {k: 1 for k in body if k not in _SCORING},
           {"must", "filter", "should", "must_not", "minimum_should_match"})  # fmt: skip
    must = [compile_dsl(q) for k in ("must", "filter") for q in _list(body.get(k, []))]
    should = [compile_dsl(q) for q in _list(body.get("should", []))]
    must_not = [compile_dsl(q) for q in _list(body.get("must_not", []))]
    msm = body.get("minimum_should_match")
    if msm is None:
        need = 0 if must else (1 if should else 0)
    elif isinstance(msm, int) or (isinstance(msm, str) and msm.isdigit()):
        need = int(msm)
    else:
        raise Unsupported(f"minimum_should_match {msm!r}")
    return boolean(must, should, must_not, need)


def _query_string(body: Any) -> Pred:
    if not isinstance(body, dict) or "query" not in body:
        raise Unsupported(f"query_string: {body!r}")
    _check("query_string", {k: 1 for k in body if k not in _SCORING}, {"query", "analyze_wildcard"})
    if body.get("analyze_wildcard") is not True:
        raise Unsupported("query_string without analyze_wildcard")
    return compile_lucene(str(body["query"]))


_QUERIES: dict[str, Callable[[Any], Pred]] = {
    "bool": _bool,
    "term": _term,
    "terms": _terms,
    "prefix": _prefix,
    "wildcard": _wildcard,
    "regexp": _regexp,
    "range": _range,
    "exists": _exists,
    "match_all": lambda _b: ALWAYS,
    "match_none": lambda _b: NEVER,
    "query_string": _query_string,
}


def compile_dsl(query: Any) -> Pred:
    """The predicate of one DSL query; raises Unsupported."""
    if not isinstance(query, dict) or len(query) != 1:
        raise Unsupported(f"query {query!r}: not one query object")
    ((kind, body),) = query.items()
    build = _QUERIES.get(kind)
    if build is None:
        raise Unsupported(f"query type {kind}")
    return build(body)

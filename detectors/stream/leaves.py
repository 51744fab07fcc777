"""Term-level queries on one field, as Elasticsearch runs them on our mapping: term, prefix,
wildcard, regexp, range and exists on keyword (with the ``.caseless`` normaliser), ip (addresses
and CIDR blocks), long and boolean fields. Any other kind of field raises Unsupported."""

from __future__ import annotations

import ipaddress
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from detectors.stream.errors import Unsupported
from detectors.stream.fields import FieldSpec
from detectors.stream.patterns import lucene_regex, wildcard_literals, wildcard_regex
from detectors.stream.predicates import IR, NEVER, FieldRegex, Literals, Pred, any_of, regex_pred
from detectors.stream.values import accessor, ip_key, java_lower, other_case, raw_values


def _need(spec: FieldSpec, kinds: tuple[str, ...], what: str) -> None:
    if spec.kind not in kinds:
        raise Unsupported(f"{what} on {spec.name} ({spec.kind} field)")


def field_ir(spec: FieldSpec) -> IR:
    """A field as the native core reads its values (see detectors.stream.values)."""
    return {"path": spec.path, "kind": spec.kind, "lower": spec.lowercase, "ia": spec.ignore_above}


def _literal_set(spec: FieldSpec, text: str) -> Literals | None:
    """The longest ASCII run of ``text``, lower-cased (ASCII case folds the same in every
    engine, so the prefilter's text and the query's agree on it), on the field's path."""
    runs = [r for r in re.split(r"[^\x01-\x7f]+", java_lower(text)) if r]
    return frozenset({(spec.path, max(runs, key=len))}) if runs else None


def _on_values(spec: FieldSpec, ok: Any, ir: IR | None) -> Pred:
    get, key = accessor(spec), spec.name
    full = None if ir is None else {**ir, "f": field_ir(spec)}
    return Pred(lambda d, c: any(ok(v) for v in c.values(key, get, d)), None, ir=full)


def _regex(spec: FieldSpec, pattern: str, literals: Literals | None = None) -> Pred:
    return regex_pred(FieldRegex(spec.name, accessor(spec), pattern, field_ir(spec)), literals)


def _span(lo: Any, hi: Any) -> IR:
    """Inclusive integer bounds (None: open) as the native core compares them (decimal text:
    addresses are 128-bit)."""
    return {"lo": None if lo is None else str(lo), "hi": None if hi is None else str(hi)}


def _cidr(text: str) -> tuple[int, int] | None:
    if "/" not in text:
        return None
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise Unsupported(f"{text!r} is not an address block") from exc
    lo, hi = int(net.network_address), int(net.broadcast_address)
    if net.version == 4:
        lo, hi = lo | 0xFFFF_0000_0000, hi | 0xFFFF_0000_0000
    return lo, hi


def _number(spec: FieldSpec, text: Any) -> Decimal:
    try:
        return Decimal(str(text).strip())
    except InvalidOperation as exc:
        raise Unsupported(f"{text!r} is not a number for {spec.name}") from exc


def term(spec: FieldSpec, value: Any, case_insensitive: bool = False) -> Pred:
    if spec.kind in ("unmapped",):
        return NEVER
    if spec.kind == "keyword":
        t = java_lower(str(value)) if spec.lowercase else str(value)
        if isinstance(value, bool):
            t = "true" if value else "false"
        escaped = "".join("\\" + c for c in t)  # the term as a pattern of literals
        return _regex(
            spec, wildcard_regex(escaped, other_case if case_insensitive else None), _literal_set(spec, t)
        )
    if spec.kind == "ip":
        block = _cidr(str(value))
        if block is not None:
            lo, hi = block
            return _on_values(spec, lambda v: lo <= v <= hi, {"t": "ip", **_span(lo, hi)})
        key = ip_key(str(value))
        if key is None:
            raise Unsupported(f"{value!r} is not an address for {spec.name}")
        return _on_values(spec, key.__eq__, {"t": "ip", **_span(key, key)})
    if spec.kind == "long":
        n = _number(spec, value)
        if n != n.to_integral_value():
            return NEVER  # Elasticsearch: a decimal never equals a long
        return _on_values(spec, int(n).__eq__, {"t": "long", **_span(int(n), int(n))})
    if spec.kind == "boolean":
        b = value if isinstance(value, bool) else {"true": True, "false": False}.get(str(value))
        if b is None:
            raise Unsupported(f"{value!r} is not a boolean for {spec.name}")
        return _on_values(spec, b.__eq__, {"t": "bool", "v": b})
    raise Unsupported(f"term on {spec.name} ({spec.kind} field)")


def terms(spec: FieldSpec, values: list[Any]) -> Pred:
    return any_of([term(spec, v) for v in values])


def wildcard(spec: FieldSpec, pattern: str, case_insensitive: bool = False) -> Pred:
    if spec.kind == "unmapped":
        return NEVER
    _need(spec, ("keyword",), "wildcard")
    if spec.lowercase:
        pattern = java_lower(pattern)
    runs = [s for r in wildcard_literals(pattern) if (s := _literal_set(spec, r))]
    lits = max(runs, key=lambda s: len(next(iter(s))[1])) if runs else None
    return _regex(spec, wildcard_regex(pattern, other_case if case_insensitive else None), lits)


def prefix(spec: FieldSpec, text: str, case_insensitive: bool = False) -> Pred:
    escaped = "".join("\\" + c if c in "*?\\" else c for c in str(text))
    return wildcard(spec, escaped + "*", case_insensitive)


def regexp(spec: FieldSpec, pattern: str, case_insensitive: bool = False) -> Pred:
    if spec.kind == "unmapped":
        return NEVER
    _need(spec, ("keyword",), "regexp")
    rx = lucene_regex(pattern, case_insensitive)  # a normaliser does not touch a regexp
    return _regex(spec, rx.pattern)


def _bound(spec: FieldSpec, text: Any) -> Any:
    if spec.kind == "keyword":
        t = java_lower(str(text)) if spec.lowercase else str(text)
        return t.encode("utf-8")  # terms sort as UTF-8 bytes
    if spec.kind == "long":
        return _number(spec, text)
    if spec.kind == "ip":
        key = ip_key(str(text))
        if key is None:
            raise Unsupported(f"{text!r} is not an address for {spec.name}")
        return key
    raise Unsupported(f"range on {spec.name} ({spec.kind} field)")


def range_(spec: FieldSpec, lo: Any, hi: Any, include_lo: bool, include_hi: bool) -> Pred:
    """``lo``/``hi`` None: open."""
    if spec.kind == "unmapped":
        return NEVER
    low = None if lo is None else _bound(spec, lo)
    high = None if hi is None else _bound(spec, hi)
    utf8 = spec.kind == "keyword"

    def ok(v: Any) -> bool:
        k = v.encode("utf-8") if utf8 else v
        if low is not None and (k < low or (k == low and not include_lo)):
            return False
        return not (high is not None and (k > high or (k == high and not include_hi)))

    return _on_values(spec, ok, _range_ir(spec, low, high, include_lo, include_hi))


def _range_ir(spec: FieldSpec, low: Any, high: Any, include_lo: bool, include_hi: bool) -> IR:
    if spec.kind == "keyword":  # UTF-8 byte order, as Rust orders strings
        return {
            "t": "krange",
            "lo": None if low is None else low.decode("utf-8"),
            "hi": None if high is None else high.decode("utf-8"),
            "il": include_lo,
            "ih": include_hi,
        }
    # integers (long values, 128-bit addresses) against bounds: the inclusive integer bounds
    lo = None if low is None else (math.ceil(low) if include_lo else math.floor(low) + 1)
    hi = None if high is None else (math.floor(high) if include_hi else math.ceil(high) - 1)
    return {"t": "long" if spec.kind == "long" else "ip", **_span(lo, hi)}


def exists(spec: FieldSpec) -> Pred:
    if spec.kind == "unmapped":
        return NEVER
    if spec.kind == "object":
        from detectors.stream.fields import field_spec

        return any_of([exists(field_spec(f)) for f in spec.leaves]) if spec.leaves else NEVER
    if spec.kind in ("keyword", "ip", "long", "boolean"):
        get, key = accessor(spec), spec.name
        return Pred(lambda d, c: bool(c.values(key, get, d)), ir={"t": "exists", "f": field_ir(spec)})
    if spec.kind in ("date",):
        parts = tuple(spec.path.split("."))
        return Pred(
            lambda d, _i: any(True for _ in raw_values(d, parts)), ir={"t": "present", "path": spec.path}
        )
    raise Unsupported(f"exists on {spec.name} ({spec.kind} field)")

"""A field's values as Elasticsearch indexes them: arrays flattened at any depth (objects in
arrays too), ``null`` skipped, keyword text as JSON writes a scalar, long values coerced, and a
keyword value longer than ``ignore_above`` (counted in UTF-16 units, as Java does) not indexed."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from detectors.stream.fields import FieldSpec


def java_lower(text: str) -> str:
    """Lucene's LowerCaseFilter: ``Character.toLowerCase`` per code point (one code point to
    one; Python's ``str.lower`` turns İ into two and reads a final sigma in context)."""
    if text.isascii():
        return text.lower()
    return "".join(_lower_char(c) for c in text)


def _lower_char(c: str) -> str:
    low = c.lower()
    return low if len(low) == 1 else ("i" if c == "\u0130" else c)


def other_case(c: str) -> str:
    """The one alternative Elasticsearch's case-insensitive term/wildcard accepts for ``c``: its
    lower case, else its upper case (single code points only)."""
    low = _lower_char(c)
    if low != c:
        return low
    up = c.upper()
    return up if len(up) == 1 else c


def raw_values(doc: Any, parts: tuple[str, ...]) -> list[Any]:
    """Every scalar under ``parts`` (a dotted key may also be stored flat, ``{"a.b": 1}``)."""
    out: list[Any] = []
    _collect(doc, _joined(parts), 0, out)
    return out


@cache
def _joined(parts: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """Per depth ``k``, the keys a document may use there: ``parts[k]``, ``parts[k].parts[k+1]``…"""
    return tuple(
        tuple(".".join(parts[k:end]) for end in range(k + 1, len(parts) + 1)) for k in range(len(parts))
    )


def _collect(doc: Any, joined: tuple[tuple[str, ...], ...], depth: int, out: list[Any]) -> None:
    if isinstance(doc, list):
        for item in doc:
            _collect(item, joined, depth, out)
    elif depth == len(joined):
        if doc is not None and not isinstance(doc, dict):
            out.append(doc)
    elif isinstance(doc, dict):
        for i, key in enumerate(joined[depth]):
            if key in doc:
                _collect(doc[key], joined, depth + i + 1, out)


def keyword_text(value: Any) -> str:
    """The term a keyword field indexes for a JSON scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def utf16_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def _keyword(spec: FieldSpec) -> Callable[[Any], str | None]:
    limit = spec.ignore_above

    def conv(v: Any) -> str | None:
        t = keyword_text(v)
        if limit is not None and utf16_len(t) > limit:
            return None
        return java_lower(t) if spec.lowercase else t

    return conv


def to_long(v: Any) -> int | None:
    """A long field's value (ES coerces numeric strings and truncates decimals)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    try:
        return int(Decimal(str(v)))
    except (InvalidOperation, ValueError):
        return None


def ip_key(text: str) -> int | None:
    """An address as the 128-bit number Elasticsearch stores (IPv4 as IPv4-mapped IPv6)."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return int(ip) | 0xFFFF_0000_0000 if ip.version == 4 else int(ip)


def _ip(v: Any) -> int | None:
    return ip_key(str(v)) if isinstance(v, str) else None


def _boolean(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    return {"true": True, "false": False, "": False}.get(v) if isinstance(v, str) else None


CONVERTERS: dict[str, Callable[[FieldSpec], Callable[[Any], Any]]] = {
    "keyword": _keyword,
    "long": lambda _s: to_long,
    "ip": lambda _s: _ip,
    "boolean": lambda _s: _boolean,
}


def accessor(spec: FieldSpec) -> Callable[[dict[str, Any]], list[Any]]:
    """The indexed values of ``spec`` in a document (empty for kinds that hold none we read)."""
    make = CONVERTERS.get(spec.kind)
    if make is None:
        return lambda _doc: []
    conv = make(spec)
    parts = tuple(spec.path.split("."))

    def values(doc: dict[str, Any]) -> list[Any]:
        out = []
        for raw in raw_values(doc, parts):
            v = conv(raw)
            if v is not None:
                out.append(v)
        return out

    return values

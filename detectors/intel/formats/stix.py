"""STIX 2.1 bundles and TAXII 2.1 envelopes.

A bundle is one JSON document, so it is loaded whole (``json.loads``); memory grows with the
bundle. TAXII servers page their collections, so a loader fetching one envelope at a time stays
bounded by the page size.

Only what can be matched exactly is taken: indicators with ``pattern_type: stix`` whose pattern
is one or more observations joined by ``OR``, each observation a comparison (or ``OR`` of
comparisons) ``<path> = '<value>'`` on a supported path. ``AND``, ``FOLLOWEDBY``, other
operators, qualifiers and other paths are reported as ``unsupported`` issues; other object types
are ignored. In an ``OR`` of supported and unsupported comparisons the supported ones are kept
(an OR matches if any term matches, so keeping a subset adds no false positive).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from ..model import IndicatorType, ParseIssue, ParseItem, clean, iso_utc, parse_confidence
from .base import FormatSpec, Meta, ParseContext, first_lines, load_json_document

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<lbr>\[) | (?P<rbr>\]) | (?P<paren>[()]) |
      (?P<string>[a-z]?'(?:[^'\\]|\\.)*') |
      (?P<path>[a-z0-9][a-z0-9-]*:(?:[A-Za-z0-9_-]+|'[^']*'|"[^"]*"|\.|\[\*\]|\[\d+\])+) |
      (?P<op>!=|<=|>=|=|<|>) |
      (?P<word>[A-Za-z_]+|\d+)
    )""",
    re.VERBOSE,
)

# object path -> indicator type; hash algorithm names are matched without quotes, dashes, case
_PATHS: dict[str, IndicatorType] = {
    "ipv4-addr:value": "ip",
    "ipv6-addr:value": "ip",
    "domain-name:value": "domain",
    "url:value": "url",
    "file:hashes.md5": "md5",
    "file:hashes.sha1": "sha1",
    "file:hashes.sha256": "sha256",
}


class PatternError(ValueError):
    """A STIX pattern we cannot (or will not) turn into exact-match indicators."""


@dataclass(frozen=True, slots=True)
class Comparison:
    path: str
    value: str
    kind: IndicatorType | None  # None: a path we do not support


def _canonical_path(path: str) -> str:
    obj, _, prop = path.partition(":")
    if prop.startswith("hashes."):
        algo = prop[len("hashes.") :].strip("'\"").replace("-", "").replace("_", "").lower()
        return f"{obj}:hashes.{algo}"
    return f"{obj}:{prop}"


def _unquote(token: str) -> str:
    if not token.startswith("'"):
        raise PatternError(f"typed literal {token[:20]}… not supported")
    body = token[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def parse_pattern(pattern: str) -> list[Comparison]:
    """The comparisons of an OR-only STIX pattern; raises :class:`PatternError` otherwise."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = pattern.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise PatternError(f"cannot read the pattern at offset {pos}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind != "paren":  # only OR is accepted, so grouping does not change the meaning
            tokens.append((kind, m.group(kind)))
    out: list[Comparison] = []
    i = 0

    def expect(kind: str, what: str) -> str:
        nonlocal i
        if i >= len(tokens) or tokens[i][0] != kind:
            found = tokens[i][1] if i < len(tokens) else "end of pattern"
            raise PatternError(f"expected {what}, found {found!r}")
        i += 1
        return tokens[i - 1][1]

    def is_or() -> bool:
        return i < len(tokens) and tokens[i] == ("word", "OR")

    while True:
        expect("lbr", "'['")
        while True:
            path = expect("path", "an object path")
            op = expect("op", "a comparison operator")
            if op != "=":
                raise PatternError(f"operator {op!r} not supported (only '=')")
            value = _unquote(expect("string", "a quoted string"))
            canonical = _canonical_path(path)
            out.append(Comparison(path, value, _PATHS.get(canonical)))
            if not is_or():
                break
            i += 1
        expect("rbr", "']'")
        if i == len(tokens):
            return out
        if not is_or():
            raise PatternError(f"{tokens[i][1]!r} not supported (only OR joins observations)")
        i += 1


def _sniff_stix(head: str, filename: str | None) -> bool:
    text = head.lstrip()
    if not text.startswith(("{", "[")):
        return False
    return bool(re.search(r'"type"\s*:\s*"bundle"', head) or re.search(r'"objects"\s*:\s*\[', head))


_ID = re.compile(r'"id"\s*:\s*"([^"]+)"')


def parse_stix(lines: Iterable[str], ctx: ParseContext) -> Iterator[ParseItem]:
    loaded = load_json_document(lines, ctx)
    if isinstance(loaded, ParseIssue):
        yield loaded
        return
    text, doc = loaded
    if isinstance(doc, dict) and isinstance(doc.get("objects"), list):
        objects: list[Any] = doc["objects"]
    elif isinstance(doc, list):
        objects = doc
    elif isinstance(doc, dict) and doc.get("type") == "indicator":
        objects = [doc]
    else:
        yield ctx.issue(1, "neither a STIX bundle nor a TAXII envelope (no 'objects' list)")
        return
    where = first_lines(text, _ID)
    malware = _malware_names(objects)
    for index, obj in enumerate(objects):
        if not isinstance(obj, dict):
            yield ctx.issue(1, f"object #{index} is not a JSON object")
            continue
        if obj.get("type") != "indicator":
            continue
        yield from _indicator(ctx, obj, where.get(str(obj.get("id")), 1), malware)


def _malware_names(objects: list[Any]) -> dict[str, str]:
    """indicator id -> malware name, from ``indicates`` relationships to malware objects."""
    names = {
        o["id"]: o["name"]
        for o in objects
        if isinstance(o, dict) and o.get("type") == "malware" and isinstance(o.get("name"), str)
    }
    out: dict[str, str] = {}
    for o in objects:
        if (
            isinstance(o, dict)
            and o.get("type") == "relationship"
            and o.get("relationship_type") == "indicates"
            and o.get("target_ref") in names
        ):
            out.setdefault(str(o.get("source_ref")), names[o["target_ref"]])
    return out


def _str(value: object) -> str | None:
    return clean(value) if isinstance(value, str) else None


def _indicator(
    ctx: ParseContext, obj: dict[str, Any], line: int, malware: dict[str, str]
) -> Iterator[ParseItem]:
    ident = str(obj.get("id", "?"))
    pattern = obj.get("pattern")
    raw = pattern if isinstance(pattern, str) else ""
    if obj.get("revoked") is True:
        yield ctx.issue(line, f"{ident}: revoked", raw, "skipped")
        return
    pattern_type = obj.get("pattern_type", "stix")
    if pattern_type != "stix":
        yield ctx.issue(line, f"{ident}: pattern_type {pattern_type!r} not supported", raw, "unsupported")
        return
    if not raw:
        yield ctx.issue(line, f"{ident}: indicator without a pattern")
        return
    try:
        comparisons = parse_pattern(raw)
    except PatternError as exc:
        yield ctx.issue(line, f"{ident}: {exc}", raw, "unsupported")
        return
    meta, issues = _meta(ctx, obj, line, ident, malware)
    yield from issues
    for comp in comparisons:
        if comp.kind is None:
            yield ctx.issue(line, f"{ident}: object path {comp.path!r} not supported", raw, "unsupported")
            continue
        for item in ctx.emit(comp.kind, comp.value, line, raw, meta):
            yield replace(item, message=f"{ident}: {item.message}") if isinstance(item, ParseIssue) else item


def _meta(
    ctx: ParseContext, obj: dict[str, Any], line: int, ident: str, malware: dict[str, str]
) -> tuple[Meta, list[ParseItem]]:
    issues: list[ParseItem] = []
    times: dict[str, str | None] = {}
    for key, field in (("first_seen", "valid_from"), ("last_seen", "valid_until")):
        try:
            times[key] = iso_utc(_str(obj.get(field)))
        except ValueError as exc:
            times[key] = None
            issues.append(ctx.issue(line, f"{ident}: {field}: {exc}"))
    try:
        confidence = parse_confidence(obj.get("confidence"))
    except ValueError as exc:
        confidence = None
        issues.append(ctx.issue(line, f"{ident}: {exc}"))
    tags = [t for key in ("indicator_types", "labels") for t in obj.get(key) or () if isinstance(t, str)]
    reference = None
    for ref in obj.get("external_references") or ():
        if isinstance(ref, dict) and isinstance(ref.get("url"), str):
            reference = ref["url"]
            break
    meta: Meta = {
        "first_seen": times["first_seen"],
        "last_seen": times["last_seen"],
        "confidence": confidence,
        "description": _str(obj.get("name")) or _str(obj.get("description")),
        "malware": malware.get(ident),
        "tags": tuple(dict.fromkeys(tags)),
        "reference": reference,
        "extra": (("stix_id", ident),),
    }
    return meta, issues


FORMATS = (
    FormatSpec(
        "stix",
        parse_stix,
        sniff=_sniff_stix,
        priority=10,
        description="STIX 2.1 bundle or TAXII 2.1 envelope",
    ),
)

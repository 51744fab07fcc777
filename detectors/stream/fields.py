"""How each event field is indexed, read from the events index template (mappings/): the stream
matcher must see a document exactly as Elasticsearch indexed it.

``dynamic: false`` roots: a field the template does not map is not searchable, whatever the
document holds; ``winlog.event_data.*`` is mapped by a dynamic template (keyword + ``.caseless``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from shipper.assets import asset_dir

Kind = Literal["keyword", "ip", "long", "boolean", "date", "text", "object", "unmapped", "unindexed"]
_NUMBERS = frozenset({"long", "integer", "short", "byte"})
_EVENT_DATA = "winlog.event_data."


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A searchable field: its kind, the document path holding its values (a multi-field reads its
    parent's), whether a lower-case normaliser applies, and keyword's ``ignore_above``."""

    name: str
    kind: Kind
    path: str
    lowercase: bool = False
    ignore_above: int | None = None
    #: an object: the leaf fields under it (``_exists_`` on an object is any of them)
    leaves: tuple[str, ...] = ()


def _kind(mapping: dict[str, Any]) -> Kind:
    t = mapping.get("type", "object")
    if mapping.get("index") is False:
        return "unindexed"
    if t in _NUMBERS:
        return "long"
    if t in ("keyword", "ip", "boolean", "date", "text"):
        return t  # type: ignore[no-any-return]
    return "object" if t == "object" else "unindexed"


def _spec(name: str, path: str, mapping: dict[str, Any]) -> FieldSpec:
    kind = _kind(mapping)
    lowercase = kind == "keyword" and mapping.get("normalizer") == "caseless"
    return FieldSpec(name, kind, path, lowercase, mapping.get("ignore_above") if kind == "keyword" else None)


def _walk(props: dict[str, Any], prefix: str, out: dict[str, FieldSpec]) -> None:
    for key, m in props.items():
        name = prefix + key
        if "properties" in m:
            _walk(m["properties"], name + ".", out)
            leaves = tuple(f for f in out if f.startswith(name + ".") and "." not in f[len(name) + 1 :])
            out[name] = FieldSpec(name, "object", name, leaves=leaves)
            continue
        out[name] = _spec(name, name, m)
        for sub, sm in (m.get("fields") or {}).items():
            out[f"{name}.{sub}"] = _spec(f"{name}.{sub}", name, sm)


@cache
def _template() -> dict[str, FieldSpec]:
    doc = json.loads((asset_dir("mappings") / "events-mappings.json").read_text(encoding="utf-8"))
    out: dict[str, FieldSpec] = {}
    _walk(doc["template"]["mappings"]["properties"], "", out)
    # object leaves: every mapped field below the object, not only direct children
    for name, spec in list(out.items()):
        if spec.kind == "object":
            below = tuple(f for f, s in out.items() if f.startswith(name + ".") and s.kind != "object")
            out[name] = FieldSpec(name, "object", name, leaves=below)
    return out


def field_spec(name: str) -> FieldSpec:
    """How ``name`` (as a query names it) is indexed; ``unmapped`` when the template has no such
    field (a query on it matches nothing)."""
    known = _template().get(name)
    if known is not None:
        return known
    if name.startswith(_EVENT_DATA):
        rest = name[len(_EVENT_DATA) :]
        if rest.endswith(".caseless") and "." not in rest[: -len(".caseless")]:
            return FieldSpec(name, "keyword", name[: -len(".caseless")], True, 8191)
        if "." not in rest:
            return FieldSpec(name, "keyword", name, False, 8191)
    return FieldSpec(name, "unmapped", name)

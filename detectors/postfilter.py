"""What the query cannot say: Sigma's ``|fieldref`` compares two fields of one event, which
Elasticsearch can only do with a script (none on a stock node without painless here). The query
keeps every other condition; each hit is then checked here (:class:`detectors.model.FieldRef`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from detectors.model import FieldRef, Filter
from detectors.query import get_path


def _texts(value: Any) -> list[str]:
    """A field's values as lower-case text; a user object (``user``, ``process.parent.user``)
    as Sysmon writes it, ``DOMAIN\\name``."""
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for v in items:
        if isinstance(v, Mapping):
            name, domain = v.get("name"), v.get("domain")
            v = f"{domain}\\{name}" if name is not None and domain else name
        if v is not None and not isinstance(v, Mapping | list):
            out.append(str(v).lower())
    return out


def _holds(ref: FieldRef, src: dict[str, Any]) -> bool:
    """The comparison itself; an absent field compares unequal, as in Sigma."""
    left, right = _texts(get_path(src, ref.field)), _texts(get_path(src, ref.ref))
    ops: dict[str, Callable[[str, str], bool]] = {
        "equals": str.__eq__,
        "startswith": str.startswith,
        "endswith": str.endswith,
        "contains": str.__contains__,
    }
    op = ops[ref.mode]
    return any(op(a, b) for a in left for b in right)


def keeps(flt: Filter, src: dict[str, Any]) -> bool:
    """Whether a hit of the filter's query also satisfies its field comparisons."""
    return all(_holds(r, src) != r.negated for r in flt.field_refs)

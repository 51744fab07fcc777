# STAND-IN: replaced by the full module at merge
"""A minimal matcher for the stream stage's tests: ``intel_match`` rules and ``query`` rules whose
filter is event codes plus at most a ``term`` query; everything else is left to the schedule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from detectors.model import IntelClause, IntelMatchParams, Rule
from detectors.query import get_path

if TYPE_CHECKING:
    from detectors.stream.intel import IntelMemory

HISTORY_TYPES = frozenset({"new_value", "spread", "threshold", "correlation", "sequence_gap", "silence"})


def _values(v: Any) -> list[str]:
    items = v if isinstance(v, list) else [v]
    return [str(x) for x in items if x is not None and not isinstance(x, dict | list)]


def _why_not(rule: Rule) -> str | None:
    if rule.type in HISTORY_TYPES:
        return "needs history"
    f = rule.filter
    if f.lucene is not None or f.field_refs:
        return "stand-in matcher: Lucene filters not supported"
    q = f.query
    if q is not None and not (set(q) == {"term"} and len(q["term"]) == 1):
        return "stand-in matcher: only a single term query is supported"
    return None


def _term(q: dict[str, Any] | None, doc: dict[str, Any]) -> bool:
    if q is None:
        return True
    ((fname, want),) = q["term"].items()
    want = want.get("value") if isinstance(want, dict) else want
    return str(want) in _values(get_path(doc, fname))


def _listed(clause: IntelClause, kind: str, doc: dict[str, Any], intel: IntelMemory) -> bool:
    return any(
        intel.has(kind, f, v, clause.feeds, clause.types)  # type: ignore[arg-type]
        for f in clause.fields
        for v in _values(get_path(doc, f))
    )


@dataclass
class StreamRules:
    supported: tuple[Rule, ...] = ()
    unsupported: dict[str, str] = field(default_factory=dict)
    needs_intel: bool = False

    @classmethod
    def compile(cls, rules: Sequence[Rule]) -> StreamRules:
        out = cls()
        kept: list[Rule] = []
        for r in rules:
            why = _why_not(r)
            if why is None:
                kept.append(r)
            else:
                out.unsupported[r.id] = why
        out.supported = tuple(kept)
        out.needs_intel = any(_uses_intel(r) for r in kept)
        return out

    def match(self, doc: dict[str, Any], intel: IntelMemory | None) -> list[Rule]:
        code = str(get_path(doc, "event.code"))
        out: list[Rule] = []
        for r in self.supported:
            if r.filter.event_codes and code not in r.filter.event_codes:
                continue
            if _uses_intel(r) and intel is None:
                continue
            if not _term(r.filter.query, doc):
                continue
            if intel is not None and not _intel_ok(r, doc, intel):
                continue
            if any(str(v).lower() in {x.lower() for x in ve.values} for ve in r.exceptions.values
                   for v in _values(get_path(doc, ve.field))):  # fmt: skip
                continue
            out.append(r)
        return out


def _uses_intel(r: Rule) -> bool:
    return r.type == "intel_match" or r.filter.intel is not None or bool(r.exceptions.allowlists)


def _intel_ok(r: Rule, doc: dict[str, Any], intel: IntelMemory) -> bool:
    if isinstance(r.params, IntelMatchParams):
        p = r.params
        if not _listed(IntelClause(p.fields, p.feeds, p.types), "intel", doc, intel):
            return False
    if r.filter.intel is not None and not _listed(r.filter.intel, "intel", doc, intel):
        return False
    return not any(_listed(a, "allow", doc, intel) for a in r.exceptions.allowlists)

"""Which fields a converted Sigma rule needs events to carry (:class:`detectors.model.FieldNeed`),
and whether it can match given the fields that do appear: three-valued, so that only a rule that
can never match is called so. A field missing from every event makes a value match on it false,
a ``null`` / ``|exists: false`` on it true, and anything else depends on the values."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
)
from sigma.rule import SigmaRule
from sigma.types import SigmaExists, SigmaFieldReference, SigmaNull

from detectors.model import FieldNeed, NeedOp

Verdict = Literal["yes", "no", "maybe"]
_FLIP: dict[Verdict, Verdict] = {"yes": "no", "no": "yes", "maybe": "maybe"}
_USER_ROOTS = ("user", "process.parent.user")  # a user object is there when its name is


def _field(name: str) -> str:
    return f"{name}.name" if name in _USER_ROOTS else name


def _item(node: ConditionFieldEqualsValueExpression) -> FieldNeed:
    value = node.value
    if isinstance(value, SigmaNull) or (isinstance(value, SigmaExists) and not value.exists):
        return FieldNeed("lacks", field=_field(node.field))
    if isinstance(value, SigmaFieldReference):
        return FieldNeed(
            "all", (FieldNeed("has", field=_field(node.field)), FieldNeed("has", field=_field(value.field)))
        )
    return FieldNeed("has", field=_field(node.field))


def need_of(node: Any) -> FieldNeed:
    """The need of a pySigma condition tree (after our pipeline: field names are ours)."""
    if isinstance(node, ConditionAND | ConditionOR):
        op: NeedOp = "all" if isinstance(node, ConditionAND) else "any"
        return FieldNeed(op, tuple(need_of(a) for a in node.args))
    if isinstance(node, ConditionNOT):
        return FieldNeed("not", (need_of(node.args[0]),))
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _item(node)
    return FieldNeed("anything")  # a keyword: any field may hold it


def rule_needs(rule: SigmaRule) -> FieldNeed:
    """A processed rule's need: any of its conditions."""
    parts = tuple(need_of(c.parsed) for c in rule.detection.parsed_condition)
    return parts[0] if len(parts) == 1 else FieldNeed("any", parts)


def verdict(need: FieldNeed, present: Callable[[str], bool]) -> Verdict:
    """Whether a rule with ``need`` can match events whose fields are those ``present``."""
    if need.op == "anything":
        return "maybe"
    if need.op in ("has", "lacks"):
        if present(need.field):
            return "maybe"
        return "no" if need.op == "has" else "yes"
    parts = [verdict(a, present) for a in need.args]
    if need.op == "not":
        return _FLIP[parts[0]]
    definite: Verdict = "no" if need.op == "all" else "yes"
    other: Verdict = "yes" if need.op == "all" else "no"
    if definite in parts:
        return definite
    return other if all(p == other for p in parts) else "maybe"


def fields(need: FieldNeed) -> Iterator[str]:
    """Every field the need names."""
    if need.field:
        yield need.field
    for a in need.args:
        yield from fields(a)

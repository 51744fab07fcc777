"""Sigma v2 correlation rules → ``correlation`` detectors (:mod:`detectors.builders.correlation`).

A correlation runs when every base rule it names (by id or name; pySigma resolves them) runs on
our documents; otherwise it takes its base rules' class: failed, else not applicable, else cannot
fire here. Group-by names (or their ``aliases``, per base rule) and the ``value_count`` field are
mapped to our fields for each base rule's event codes. Supported: ``event_count``,
``value_count``, ``temporal``, ``temporal_ordered`` with a plain condition (``gt``, ``gte``,
``lt``, ``lte``, ``eq``, ``neq``); not: the value_sum/avg/percentile/median types, extended
(boolean string) conditions, correlations of correlations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sigma.collection import SigmaCollection
from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationRule,
    SigmaRuleReference,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from detectors.model import CORRELATION_KINDS, CorrelationBase, CorrelationParams, Filter, Where
from detectors.sigma import schema
from detectors.sigma.errors import CannotFire
from detectors.sigma.rules import Converted, build_rule

#: special fields whose values our documents hold elsewhere but whole: a user root
_GROUPABLE_SPECIAL = frozenset({"User", "ParentUser"})
#: when base rules do not all run, the correlation takes the first of these classes among them
_WORST = ("failed", "not_applicable", "cannot_fire")


def resolve_correlations(collection: SigmaCollection) -> None:
    """Resolve each correlation's references on its own (``load_ruleset`` with
    ``resolve_references=False``): a reference to a missing rule fails that correlation only,
    not the whole load."""
    for r in collection.rules:
        if isinstance(r, SigmaCorrelationRule):
            try:
                r.resolve_rule_references(collection)
            except SigmaError as exc:
                r.errors.append(exc)


def silenced(rules: Sequence[Any]) -> dict[int, str]:
    """Base rules of a correlation without ``generate: true`` (by ``id()``) → that correlation's
    title: they match only as part of it."""
    out: dict[int, str] = {}
    for r in rules:
        if isinstance(r, SigmaCorrelationRule) and not r.generate:
            for ref in r.referenced_rules:
                if hasattr(ref, "rule"):
                    out.setdefault(id(ref.rule), r.title)
    return out


def silent(c: Converted, correlation: str) -> Converted:
    """A base rule that raises no alerts of its own (no detector; it still shows as runs)."""
    if c.outcome != "runs":
        return c
    reason = f"only inside correlation {correlation!r} (generate: false): no alerts of its own"
    return replace(c, rule=None, reason=reason)


def field_spec(name: str, codes: tuple[str, ...]) -> tuple[str, ...]:
    """Where events of ``codes`` hold the Sigma field ``name`` (a name with a dot is ours)."""
    if "." in name or name.startswith("@"):
        return (name,)
    if name in schema.SPECIAL and name not in _GROUPABLE_SPECIAL:
        raise CannotFire(f"field {name!r}: its values are rewritten for matching, not kept whole")
    targets = sorted({t for t in schema.fields_for(codes, name).values() if t is not None})
    if not targets:
        raise CannotFire(f"field {name!r}: Sysmon events {', '.join(codes)} never carry it in our documents")
    return tuple(targets)


def _alias(corr: SigmaCorrelationRule, name: str, ref: SigmaRuleReference) -> str:
    alias = corr.aliases.aliases.get(name)
    if alias is None:
        return name
    for r, field in alias.mapping.items():
        if r.reference == ref.reference or getattr(r, "rule", None) is getattr(ref, "rule", False):
            return field
    raise CannotFire(f"alias {name!r} names no field for rule {ref.reference!r}")


def _problem(corr: SigmaCorrelationRule, done: Mapping[int, Converted]) -> tuple[str, str] | None:
    """Why the correlation cannot run (class, reason), or None."""
    kind = corr.type.name.lower()
    if corr.errors:
        return "failed", "; ".join(str(e) for e in corr.errors)
    if kind not in CORRELATION_KINDS:
        return "failed", f"{kind} correlations are not supported"
    if not isinstance(corr.condition, SigmaCorrelationCondition):
        return "failed", "extended (boolean) correlation conditions are not supported"
    if isinstance(corr.condition.fieldref, list) and len(corr.condition.fieldref) != 1:
        return "failed", "value_count over several fields is not supported"
    found: dict[str, str] = {}
    for ref in corr.referenced_rules:
        base = getattr(ref, "rule", None)
        if not isinstance(base, SigmaRule):
            return "failed", f"rule {ref.reference!r}: correlations of correlations are not supported"
        c = done.get(id(base))
        if c is None or c.rule is None:
            cls = c.outcome if c is not None else "failed"
            why = c.reason if c is not None else "not found"
            found.setdefault(cls, f"base rule {ref.reference!r} {cls}: {why}")
        elif c.rule.filter.field_refs:  # checked per hit; the correlation reads events by query
            why = "uses |fieldref, not supported in correlations"
            found.setdefault("failed", f"base rule {ref.reference!r} {why}")
    for worst in _WORST:
        if worst in found:
            return worst, found[worst]
    return None


def _bases(corr: SigmaCorrelationRule, done: Mapping[int, Converted]) -> tuple[CorrelationBase, ...]:
    cond = corr.condition
    assert isinstance(cond, SigmaCorrelationCondition)
    value = cond.fieldref[0] if isinstance(cond.fieldref, list) else cond.fieldref
    out: list[CorrelationBase] = []
    for ref in corr.referenced_rules:
        c = done[id(ref.rule)]
        assert c.rule is not None and c.rule.filter.lucene is not None
        codes = c.rule.filter.event_codes
        out.append(
            CorrelationBase(
                ref=ref.reference,
                title=c.title,
                event_codes=codes,
                lucene=c.rule.filter.lucene,
                group_fields=tuple(field_spec(_alias(corr, g, ref), codes) for g in corr.group_by or ()),
                value_field=field_spec(_alias(corr, value, ref), codes) if value else (),
            )
        )
    return tuple(out)


def _union_filter(bases: Sequence[CorrelationBase]) -> Filter:
    """Events of any base rule (what ``validate`` and the rule's own query see)."""
    should = [
        {
            "bool": {
                "filter": [
                    {"terms": {"event.code": list(b.event_codes)}},
                    {"query_string": {"query": b.lucene, "analyze_wildcard": True}},
                ]
            }
        }
        for b in bases
    ]
    codes = tuple(sorted({c for b in bases for c in b.event_codes}, key=int))
    return Filter(event_codes=codes, query={"bool": {"should": should, "minimum_should_match": 1}})


def convert_correlation(
    corr: SigmaCorrelationRule, where: Where, interval: int, done: Mapping[int, Converted]
) -> Converted:
    title = corr.title or where.path
    sid = str(corr.id) if corr.id is not None else ""
    level = corr.level.name.lower() if corr.level is not None else ""
    status = corr.status.name.lower() if corr.status is not None else ""
    problem = _problem(corr, done)
    if problem is not None:
        return Converted(problem[0], where, title, sid, problem[1], None, level, status)  # type: ignore[arg-type]
    try:
        bases = _bases(corr, done)
    except CannotFire as exc:
        return Converted("cannot_fire", where, title, sid, str(exc), None, level, status)
    cond = corr.condition
    assert isinstance(cond, SigmaCorrelationCondition)
    value = cond.fieldref[0] if isinstance(cond.fieldref, list) else cond.fieldref
    params = CorrelationParams(
        kind=corr.type.name.lower(),  # type: ignore[arg-type]
        bases=bases,
        group_by=tuple(corr.group_by or ()),
        timespan=int(corr.timespan.seconds),
        op=cond.op.name.lower(),  # type: ignore[arg-type]
        count=int(cond.count),
        value_name=value,
    )
    flt = _union_filter(bases)
    summary = f"{params.kind} of {', '.join(b.ref for b in bases)} within {params.timespan}s"
    rule = build_rule(corr, summary, flt.event_codes, where, interval, flt=flt, params=params)
    return Converted("runs", where, title, sid, "", rule, level, status)

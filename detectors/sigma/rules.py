"""Sigma rules → :class:`detectors.model.Rule`, each landing in exactly one class: it runs, it is
not applicable (a logsource Sysmon does not produce), it cannot fire here (it needs what our
documents never carry), or it failed (pySigma's message, with file and line)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule, SigmaRuleBase

from detectors.model import FieldRef, Filter, Params, QueryParams, Rule, SigmaMeta, Where
from detectors.sigma.attack import threats
from detectors.sigma.backend import SysmonLuceneBackend
from detectors.sigma.errors import CannotFire
from detectors.sigma.needs import rule_needs
from detectors.sigma.options import Outcome
from detectors.sigma.pipeline import event_codes

#: Sigma ``level`` → our severity and risk score (Elastic's conventional numbers).
LEVELS: dict[str, tuple[str, int]] = {
    "informational": ("low", 10),
    "low": ("low", 21),
    "medium": ("medium", 47),
    "high": ("high", 73),
    "critical": ("critical", 99),
}
DEFAULT_INTERVAL = 300
#: what a Sigma alert copies from its event: every root a Sysmon document has
COPY: tuple[str, ...] = (
    "host",
    "user",
    "process",
    "file",
    "network",
    "source",
    "destination",
    "dns",
    "registry",
    "related",
    "winlog",
    "message",
    "sysmon",
    "log",
)
_SLUG = re.compile(r"[^a-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class Converted:
    """One Sigma rule and what became of it."""

    outcome: Outcome
    where: Where
    title: str
    sigma_id: str
    reason: str = ""
    rule: Rule | None = None
    level: str = ""
    status: str = ""


def _where(rule: SigmaRule | SigmaCorrelationRule, fallback: str) -> Where:
    src = rule.source
    path = str(src.path) if src is not None and src.path is not None else fallback
    line = getattr(src, "line", None) if src is not None else None
    return Where(path, int(line) if line else 1)


def _rule_id(rule: SigmaRuleBase, where: Where) -> str:
    if rule.id is not None:
        return str(rule.id).lower()
    stem = where.path.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()
    return ("sigma-" + _SLUG.sub("-", stem))[:100]


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def sigma_meta(sigma: SigmaRuleBase, query: str, logsource: tuple[tuple[str, str], ...] = ()) -> SigmaMeta:
    level = sigma.level.name.lower() if sigma.level is not None else "medium"
    return SigmaMeta(
        uuid=str(sigma.id) if sigma.id is not None else "",
        title=sigma.title,
        level=level,
        status=sigma.status.name.lower() if sigma.status is not None else None,
        author=sigma.author,
        date=_text(sigma.date),
        modified=_text(sigma.modified),
        license=sigma.license,
        false_positives=tuple(str(f) for f in sigma.falsepositives or ()),
        logsource=logsource,
        query=query,
        # read after the pipeline: the field names are ours (a correlation's are its base rules')
        needs=rule_needs(sigma) if isinstance(sigma, SigmaRule) else None,
    )


def build_rule(
    sigma: SigmaRuleBase,
    query: str,
    codes: tuple[str, ...],
    where: Where,
    interval: int,
    *,
    flt: Filter | None = None,
    params: Params | None = None,
    field_refs: tuple[FieldRef, ...] = (),
) -> Rule:
    """The detector for a converted rule: a ``query`` rule on its event codes and Lucene query,
    and the field comparisons (``|fieldref``) checked on each hit (or, given ``params``, a rule
    of their type: a correlation)."""
    logsource: tuple[tuple[str, str], ...] = ()
    if isinstance(sigma, SigmaRule):
        ls = sigma.logsource
        logsource = tuple(
            (k, v)
            for k, v in (("product", ls.product), ("category", ls.category), ("service", ls.service))
            if v
        )
    meta = sigma_meta(sigma, query, logsource)
    severity, risk = LEVELS.get(meta.level, LEVELS["medium"])
    tags = [str(t) for t in sigma.tags]
    return Rule(
        id=_rule_id(sigma, where),
        name=sigma.title,
        description=(sigma.description or sigma.title).strip(),
        severity=severity,  # type: ignore[arg-type]
        risk_score=risk,
        type="query" if params is None else "correlation",
        interval=interval,
        enabled=True,
        threat=threats(tags),
        references=tuple(str(r) for r in sigma.references or ()),
        filter=flt or Filter(event_codes=codes, lucene=query, field_refs=field_refs),
        fields=COPY,
        params=params or QueryParams(),
        where=where,
        tags=tuple(tags),
        sigma=meta,
    )


def convert_one(
    backend: SysmonLuceneBackend, rule: SigmaRule | SigmaCorrelationRule, path: str, interval: int
) -> Converted:
    where = _where(rule, path)
    title = rule.title or where.path
    sid = str(rule.id) if rule.id is not None else ""
    if isinstance(rule, SigmaCorrelationRule):
        # its base rules live in its collection: convert() converts correlations
        return Converted("failed", where, title, sid, "a correlation rule is converted with its collection")
    level = rule.level.name.lower() if rule.level is not None else ""
    status = rule.status.name.lower() if rule.status is not None else ""

    def out(outcome: Outcome, reason: str = "", built: Rule | None = None) -> Converted:
        return Converted(outcome, where, title, sid, reason, built, level, status)

    if rule.errors:
        return out("failed", "; ".join(str(e) for e in rule.errors))
    codes = event_codes(rule.logsource)
    if codes is None:
        ls = rule.logsource
        parts = [
            f"{k}: {v}"
            for k, v in (("product", ls.product), ("category", ls.category), ("service", ls.service))
            if v
        ]
        return out("not_applicable", "Sysmon does not produce " + (", ".join(parts) or "an empty logsource"))
    try:
        queries = backend.convert_rule(rule)
        if not queries and not backend.errors and rule._backreferences:
            # a base rule of a correlation without generate: pySigma converts it but returns nothing
            queries = rule.get_conversion_result()
    except CannotFire as exc:
        return out("cannot_fire", str(exc))
    except (SigmaError, NotImplementedError, ValueError, TypeError) as exc:
        # a rule pySigma cannot convert is reported; the others go on
        return out("failed", str(exc) or type(exc).__name__)
    if backend.errors:
        error = backend.errors[-1][1]
        backend.errors.clear()
        return out("cannot_fire" if isinstance(error, CannotFire) else "failed", str(error))
    if len(queries) != 1 or not isinstance(queries[0], str):
        return out("failed", f"conversion gave {len(queries)} queries, expected one")
    return out(
        "runs",
        built=build_rule(rule, queries[0], codes, where, interval, field_refs=tuple(backend.field_refs)),
    )


def convert(collection: SigmaCollection, *, interval: int = DEFAULT_INTERVAL) -> list[Converted]:
    """Every rule of ``collection``, each in exactly one class, in the collection's order. Base
    rules first, then the correlations built on them; a base rule of a correlation without
    ``generate: true`` runs only inside it (no alerts of its own)."""
    from detectors.sigma.correlation import convert_correlation, silenced, silent  # builds on this module

    backend = SysmonLuceneBackend()
    done: dict[int, Converted] = {}
    for r in collection.rules:
        if isinstance(r, SigmaRule):
            done[id(r)] = convert_one(backend, r, "<sigma>", interval)
    for r in collection.rules:
        if isinstance(r, SigmaCorrelationRule):
            done[id(r)] = convert_correlation(r, _where(r, "<sigma>"), interval, done)
    quiet = silenced(collection.rules)
    return [silent(done[id(r)], quiet[id(r)]) if id(r) in quiet else done[id(r)] for r in collection.rules]


def runnable(results: Iterable[Converted]) -> list[Rule]:
    return [c.rule for c in results if c.rule is not None]

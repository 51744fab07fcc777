"""The typed rule model: frozen dataclasses with Literal vocabularies.

A rule is data (one YAML file per rule, see ``detectors/rules/``); :mod:`detectors.loader` turns a
file into a :class:`Rule` and reports every problem with the file and line it came from. Type
specific parameters live in ``params`` and are parsed by the class registered for the rule's
``type`` in :data:`PARAMS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
RuleType = Literal[
    "intel_match", "query", "new_value", "spread", "threshold", "correlation", "sequence_gap", "silence"
]
RULE_TYPES: tuple[str, ...] = get_args(RuleType)
#: types only made by converting Sigma rules (no YAML ``params`` for them)
SIGMA_ONLY_TYPES: tuple[str, ...] = ("correlation",)
#: types that watch the log itself rather than matching events: ``filter`` is optional
INTEGRITY_TYPES: tuple[str, ...] = ("sequence_gap", "silence")
SilenceClock = Literal["event.ingested", "@timestamp"]
SILENCE_CLOCKS: tuple[str, ...] = get_args(SilenceClock)
CorrelationKind = Literal["event_count", "value_count", "temporal", "temporal_ordered"]
CORRELATION_KINDS: tuple[str, ...] = get_args(CorrelationKind)
CompareOp = Literal["gt", "gte", "lt", "lte", "eq", "neq"]
ListKind = Literal["intel", "allow"]

#: a field name in a rule (``process.hash.sha256``, ``@timestamp``)
FIELD_NAME = re.compile(r"^[@A-Za-z_][A-Za-z0-9_.]*$")
#: ECS ``event.severity`` is a number; the labels map to Kibana's conventional values.
SEVERITY_NUMBER: dict[str, int] = {"low": 21, "medium": 47, "high": 73, "critical": 99}

#: ECS roots an alert may copy from its source event (``fields`` in a rule).
COPYABLE_ROOTS: frozenset[str] = frozenset(
    {
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
        "event",
        "log",
    }
)


@dataclass(frozen=True, slots=True)
class Where:
    """Where a rule (or a part of it) was defined: file and 1-based line."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class Technique:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Threat:
    """One ATT&CK tactic and the techniques of the rule under it."""

    tactic_id: str
    tactic_name: str
    techniques: tuple[Technique, ...]


@dataclass(frozen=True, slots=True)
class IntelClause:
    """Events must match an intel list (or an allowlist) on at least one of ``fields``."""

    fields: tuple[str, ...]
    feeds: tuple[str, ...] | None = None
    types: tuple[str, ...] | None = None


FieldRefMode = Literal["equals", "startswith", "endswith", "contains"]


@dataclass(frozen=True, slots=True)
class FieldRef:
    """Sigma's ``|fieldref``: ``field``'s value compared with ``ref``'s on each hit, without case
    (Elasticsearch cannot compare two fields without a script). ``negated``: the rule wants them
    to differ."""

    field: str
    ref: str
    mode: FieldRefMode = "equals"
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Filter:
    """Which events a rule looks at: Sysmon event IDs, plus an ES query dict or a Lucene string,
    plus optionally a match against the intel lists; ``field_refs`` are checked on each hit."""

    event_codes: tuple[str, ...]
    query: dict[str, Any] | None = None
    lucene: str | None = None
    intel: IntelClause | None = None
    field_refs: tuple[FieldRef, ...] = ()


@dataclass(frozen=True, slots=True)
class Suppression:
    """At most one alert per distinct ``group_by`` values per ``window`` (seconds)."""

    group_by: tuple[str, ...]
    window: int


@dataclass(frozen=True, slots=True)
class ValueException:
    field: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Exceptions:
    """Events excluded from the rule: a field found in an allowlist, or a field with a value."""

    allowlists: tuple[IntelClause, ...] = ()
    values: tuple[ValueException, ...] = ()


# ------------------------------------------------------------------ type-specific parameters
@dataclass(frozen=True, slots=True)
class QueryParams:
    """``query``: every event matching the filter is an alert."""


@dataclass(frozen=True, slots=True)
class IntelMatchParams:
    """``intel_match``: an event field against the intel lists (lookup clause); the alert carries
    the matched indicators."""

    fields: tuple[str, ...]
    feeds: tuple[str, ...] | None = None
    types: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class NewValueParams:
    """``new_value``: the combination of ``fields`` (missing ones allowed, at least one of
    ``require_any`` present) not seen within ``history`` seconds before its first appearance."""

    fields: tuple[str, ...]
    history: int
    require_any: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SpreadParams:
    """``spread``: the same ``field`` value on at least ``min_hosts`` distinct ``host_field``
    values within ``window`` seconds of its first sighting."""

    field: str
    min_hosts: int
    window: int
    host_field: str = "host.name"


@dataclass(frozen=True, slots=True)
class ThresholdParams:
    """``threshold``: at least ``threshold`` events per ``group_by`` in a fixed ``window``."""

    group_by: tuple[str, ...]
    threshold: int
    window: int


@dataclass(frozen=True, slots=True)
class CorrelationBase:
    """One base rule of a correlation: what it matches, and where its events hold each group-by
    value. A field spec is a tuple of our fields, the first one present wins (a category of
    several event codes may hold the value in different fields); a root (``user``) reads as
    ``domain\\name``."""

    ref: str  # the Sigma id, else the name, the correlation refers to it by
    title: str
    event_codes: tuple[str, ...]
    lucene: str
    group_fields: tuple[tuple[str, ...], ...]  # one spec per ``group_by`` name
    value_field: tuple[str, ...] = ()  # value_count: the spec of the counted field


@dataclass(frozen=True, slots=True)
class CorrelationParams:
    """``correlation`` (Sigma v2): the base rules' events per ``group_by`` within any sliding
    ``timespan`` (seconds) whose figure — events, distinct values, base rules (in order) —
    satisfies ``op count``."""

    kind: CorrelationKind
    bases: tuple[CorrelationBase, ...]
    group_by: tuple[str, ...]
    timespan: int
    op: CompareOp
    count: int
    value_name: str | None = None  # value_count: the Sigma field name, for the alert


@dataclass(frozen=True, slots=True)
class SequenceGapParams:
    """``sequence_gap``: missing ``winlog.record_id`` values between consecutive records of one
    (host, channel), judged only once the records around them were ingested ``grace`` seconds
    ago (late archives fill gaps first); a drop of more than ``reset_tolerance`` ids is a reset
    (log cleared, or a VM reverted), reported as its own kind."""

    grace: int = 3600
    reset_tolerance: int = 16
    host_field: str = "host.name"
    channel_field: str = "winlog.channel"


@dataclass(frozen=True, slots=True)
class SilenceParams:
    """``silence``: a host whose events in the last ``window`` fall below ``fraction`` of what
    its own history predicts (the median count per ``bucket`` over ``history``); hosts with less
    than ``min_history`` of history, or an expected count under ``min_expected``, are skipped."""

    history: int = 7 * 86400
    bucket: int = 3600
    window: int = 3600
    fraction: float = 0.1
    min_history: int = 86400
    min_expected: int = 20
    clock: SilenceClock = "event.ingested"
    host_field: str = "host.name"


Params = (
    QueryParams
    | IntelMatchParams
    | NewValueParams
    | SpreadParams
    | ThresholdParams
    | CorrelationParams
    | SequenceGapParams
    | SilenceParams
)

#: rule type → the parameter class the loader fills from ``params``.
PARAMS: dict[str, type[Any]] = {
    "query": QueryParams,
    "intel_match": IntelMatchParams,
    "new_value": NewValueParams,
    "spread": SpreadParams,
    "threshold": ThresholdParams,
    "correlation": CorrelationParams,
    "sequence_gap": SequenceGapParams,
    "silence": SilenceParams,
}


NeedOp = Literal["all", "any", "not", "has", "lacks", "anything"]


@dataclass(frozen=True, slots=True)
class FieldNeed:
    """Which fields a Sigma condition needs an event to have, as its condition tree: ``has`` a
    value on ``field``, ``lacks`` it (null, ``|exists: false``), ``anything`` (a keyword);
    ``all``/``any``/``not`` of ``args``. ``sigma check --live`` evaluates it against the fields
    the indexed events carry (:mod:`detectors.sigma.needs`)."""

    op: NeedOp
    args: tuple[FieldNeed, ...] = ()
    field: str = ""


@dataclass(frozen=True, slots=True)
class SigmaMeta:
    """What a rule converted from Sigma keeps of its source (``rule.*`` and ``sigma.*`` of its
    alerts)."""

    uuid: str
    title: str
    level: str
    status: str | None = None
    author: str | None = None
    date: str | None = None
    modified: str | None = None
    license: str | None = None
    false_positives: tuple[str, ...] = ()
    logsource: tuple[tuple[str, str], ...] = ()
    #: the Lucene query as converted, before the event codes were added
    query: str = ""
    needs: FieldNeed | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    description: str
    severity: Severity
    risk_score: int
    type: RuleType
    interval: int
    enabled: bool
    threat: tuple[Threat, ...]
    references: tuple[str, ...]
    filter: Filter
    fields: tuple[str, ...]
    params: Params
    where: Where
    suppression: Suppression | None = None
    exceptions: Exceptions = field(default_factory=Exceptions)
    version: int = 1
    tags: tuple[str, ...] = ()
    builtin: bool = False
    sigma: SigmaMeta | None = None
    #: top-level key → line of the rule file (for errors found when the rule runs)
    lines: dict[str, int] = field(default_factory=dict, compare=False)

    def at(self, key: str) -> Where:
        """Where ``key`` (a top-level key such as ``filter``) is defined, else the rule itself."""
        return Where(self.where.path, self.lines.get(key, self.where.line))

    @property
    def technique_ids(self) -> tuple[str, ...]:
        return tuple(t.id for th in self.threat for t in th.techniques)

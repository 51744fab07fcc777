"""Load rule files into :class:`detectors.model.Rule`, reporting every problem with file and line.

The YAML is composed into nodes (which carry their marks), never constructed blindly, so that each
error can name the line of the offending key or value. :func:`load_rules` collects every error of
every file instead of stopping at the first (``sysmon-detect validate``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from detectors.integrity_params import DEFAULTED
from detectors.model import (
    FIELD_NAME,
    INTEGRITY_TYPES,
    PARAMS,
    RULE_TYPES,
    SEVERITIES,
    SIGMA_ONLY_TYPES,
    Exceptions,
    Filter,
    IntelClause,
    IntelMatchParams,
    NewValueParams,
    Params,
    QueryParams,
    Rule,
    Severity,
    SpreadParams,
    Suppression,
    Technique,
    Threat,
    ThresholdParams,
    ValueException,
    Where,
)
from shipper.errors import ConfigError
from shipper.yamlnodes import NodeReader, Section, line_of, plain

BUILTIN_DIR = Path(__file__).with_name("rules")
RULES_DIRS_ENV = "SYSMON_RULES_DIRS"

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,99}$")
_TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")
_TACTIC = re.compile(r"^TA\d{4}$")


class RuleError(ConfigError):
    """A problem in a rule file, with its file and line."""

    def __init__(self, message: str, *, path: str, line: int) -> None:
        self.path = path
        self.line = line
        super().__init__(message, source=f"{path}:{line}")

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class RuleErrors(ConfigError):
    """Every error found while loading rules (raised by :func:`load_rules` with ``strict``)."""

    def __init__(self, errors: Sequence[RuleError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in errors) or "no errors")

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def format_duration(seconds: int) -> str:
    """The largest unit that divides it (``5m``, ``90s``), as ``sysmon-detect list`` shows it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _rule_error(message: str, path: str, line: int | None) -> RuleError:
    return RuleError(message, path=path, line=1 if line is None else line)


# A rule's values are YAML values (typed); every error is collected, each with its line.
Reader = Section[RuleError]


def _fields(r: Reader, key: str, required: bool = False) -> tuple[str, ...]:
    return r.strings(key, required=required, pattern=FIELD_NAME, kind="field name")


# ------------------------------------------------------------------ parts
def _intel_clause(r: Reader) -> IntelClause:
    r.check(("fields", "field", "feeds", "types"))
    fields = _fields(r, "fields", required="field" not in r.keys) + _fields(r, "field")
    feeds = r.strings("feeds") or None
    types = r.strings("types") or None
    return IntelClause(fields=fields, feeds=feeds, types=types)


def _filter(r: Reader) -> Filter:
    r.check(("event_codes", "query", "lucene", "intel"))
    codes = r.strings("event_codes", required=True, pattern=re.compile(r"^\d{1,3}$"), kind="Sysmon event ID")
    query: dict[str, Any] | None = None
    qn = r.get("query")
    if qn is not None:
        if not isinstance(qn, yaml.MappingNode) or len(qn.value) != 1:
            r.fail(qn, "'query' must be an Elasticsearch query: a mapping with one key (bool, term, …)")
        else:
            query = cast(dict[str, Any], plain(qn))
    lucene = r.string("lucene") or None
    if query is not None and lucene is not None:
        r.fail(r.keys["lucene"][0], "give either 'query' or 'lucene', not both")
    ir = r.section("intel", what="filter.intel")
    intel = _intel_clause(ir) if ir is not None else None
    return Filter(event_codes=codes, query=query, lucene=lucene, intel=intel)


def _threat(r: Reader) -> Threat:
    r.check(("tactic", "techniques"))
    tr = r.section("tactic", required=True, what="threat.tactic")
    tid = tname = ""
    if tr is not None:
        tr.check(("id", "name"))
        tid = tr.string("id", required=True)
        tname = tr.string("name", required=True)
        if tid and not _TACTIC.match(tid):
            tr.fail(tr.keys["id"][1], f"{tid!r} is not an ATT&CK tactic id (TA0000)")
    techniques: list[Technique] = []
    for t in r.sections("techniques", "threat technique"):
        t.check(("id", "name"))
        i, name = t.string("id", required=True), t.string("name", required=True)
        if i and not _TECHNIQUE.match(i):
            t.fail(t.keys["id"][1], f"{i!r} is not an ATT&CK technique id (T0000 or T0000.000)")
        techniques.append(Technique(i, name))
    if "techniques" in r.keys and not techniques:
        r.fail(r.keys["techniques"][1], "'techniques' must list at least one technique")
    elif "techniques" not in r.keys:
        r.fail(r.node, "threat: missing required key 'techniques'")
    return Threat(tid, tname, tuple(techniques))


def _params(rule_type: str, r: Reader | None, where: Reader) -> Params:
    cls = PARAMS.get(rule_type)
    if cls is None:
        return QueryParams()
    if cls is QueryParams:
        if r is not None:
            r.check(())
        return QueryParams()
    if cls in DEFAULTED:  # every parameter has a default
        return DEFAULTED[cls](r) if r is not None else cls()
    if r is None:
        where.fail(where.node, f"rule type {rule_type!r} needs 'params'")
        return QueryParams()
    if cls is IntelMatchParams:
        r.check(("fields", "feeds", "types"))
        return IntelMatchParams(
            fields=_fields(r, "fields", required=True),
            feeds=r.strings("feeds") or None,
            types=r.strings("types") or None,
        )
    if cls is NewValueParams:
        r.check(("fields", "history", "require_any"))
        fields = _fields(r, "fields", required=True)
        req = _fields(r, "require_any")
        for f in req:
            if f not in fields:
                r.fail(r.keys["require_any"][1], f"require_any: {f!r} is not one of 'fields'")
        return NewValueParams(fields=fields, history=r.duration("history", required=True), require_any=req)
    if cls is SpreadParams:
        r.check(("field", "min_hosts", "window", "host_field"))
        return SpreadParams(
            field=r.string("field", required=True),
            min_hosts=r.integer("min_hosts", required=True, minimum=2, maximum=10_000),
            window=r.duration("window", required=True),
            host_field=r.string("host_field", default="host.name"),
        )
    if cls is ThresholdParams:
        r.check(("group_by", "threshold", "window"))
        return ThresholdParams(
            group_by=_fields(r, "group_by", required=True),
            threshold=r.integer("threshold", required=True, minimum=1, maximum=10**9),
            window=r.duration("window", required=True),
        )
    raise AssertionError(f"no parameter reader for {cls.__name__}")  # pragma: no cover


def read_exceptions(er: Reader | None, *, also: tuple[str, ...] = ()) -> Exceptions:
    """A rule's ``exceptions`` (or an entry of the configuration's Sigma exceptions, whose other
    keys are ``also``)."""
    if er is None:
        return Exceptions()
    er.check(("allowlists", "values", *also))
    allow = tuple(_intel_clause(a) for a in er.sections("allowlists", "allowlist exception"))
    values: list[ValueException] = []
    for v in er.sections("values", "value exception"):
        v.check(("field", "values"))
        values.append(
            ValueException(field=v.string("field", required=True), values=v.strings("values", required=True))
        )
    return Exceptions(allowlists=allow, values=tuple(values))


_RULE_KEYS = (
    "id",
    "name",
    "description",
    "severity",
    "risk_score",
    "type",
    "interval",
    "enabled",
    "threat",
    "references",
    "filter",
    "fields",
    "suppression",
    "exceptions",
    "params",
    "version",
    "tags",
)


def _rule_root(text: str, path: str) -> Reader:
    """The rule file's top mapping; broken YAML, an empty file or a bad mapping raise at once."""
    reader = NodeReader(path, _rule_error, collect=True, typed=True)
    try:
        node = reader.compose(text)
    except RuleError as exc:
        raise RuleErrors([exc]) from exc
    if node is None:
        raise RuleErrors([RuleError("empty rule file", path=path, line=1)])
    r = reader.section(node, "rule")
    if reader.errors:
        raise RuleErrors(reader.errors)
    return r


def _choice(r: Reader, key: str, choices: Sequence[str], what: str) -> str:
    value = r.string(key, required=True)
    if value and value not in choices:
        r.fail(r.keys[key][1], f"{what} {value!r} is not one of {', '.join(choices)}")
    return value


def parse_rule(text: str, path: str, *, builtin: bool = False) -> Rule:
    """One rule from YAML text; raises :class:`RuleErrors` with every problem found."""
    r = _rule_root(text, path)
    r.check(_RULE_KEYS)
    rid = r.string("id", required=True)
    if rid and not _ID.match(rid):
        r.fail(r.keys["id"][1], f"id {rid!r}: use lower-case letters, digits, '-', '_' or '.'")
    name = r.string("name", required=True)
    description = r.string("description", required=True)
    severity = _choice(r, "severity", SEVERITIES, "severity")
    risk = r.integer("risk_score", required=True, maximum=100)
    # correlation rules come only from Sigma: their base rules are Sigma rules
    rtype = _choice(r, "type", tuple(t for t in RULE_TYPES if t not in SIGMA_ONLY_TYPES), "type")
    interval = r.duration("interval", required=True)
    enabled = r.boolean("enabled", default=True)
    threat = [_threat(t) for t in r.sections("threat", "threat entry")]
    if "threat" not in r.keys:
        r.fail(r.node, "rule: missing required key 'threat' (ATT&CK tactic and techniques)")
    elif not threat:
        r.fail(r.keys["threat"][1], "'threat' must list at least one tactic with techniques")
    references = r.strings("references")
    # integrity rules watch every record; a filter only narrows the hosts or channels
    fr = r.section("filter", required=rtype not in INTEGRITY_TYPES)
    flt = _filter(fr) if fr is not None else Filter(event_codes=())
    fields = _fields(r, "fields")
    sr = r.section("suppression")
    suppression = None
    if sr is not None:
        sr.check(("group_by", "window"))
        suppression = Suppression(
            group_by=_fields(sr, "group_by", required=True), window=sr.duration("window", required=True)
        )
    exceptions = read_exceptions(r.section("exceptions"))
    pr = r.section("params")
    params = _params(rtype, pr, r)
    version = r.integer("version", default=1, minimum=1)
    tags = r.strings("tags")
    if r.reader.errors:
        raise RuleErrors(r.reader.errors)
    return Rule(
        id=rid,
        name=name,
        description=description,
        severity=cast(Severity, severity),
        risk_score=risk,
        type=cast(Any, rtype),
        interval=interval,
        enabled=enabled,
        threat=tuple(threat),
        references=references,
        filter=flt,
        fields=fields,
        params=params,
        where=Where(path, 1),
        suppression=suppression,
        exceptions=exceptions,
        version=version,
        tags=tags,
        builtin=builtin,
        lines={
            **_lines("", r),
            **_lines("filter.", fr),
            **_lines("params.", pr),
        },
    )


def _lines(prefix: str, r: Reader | None) -> dict[str, int]:
    return {f"{prefix}{k}": line_of(kn) for k, (kn, _v) in r.keys.items()} if r is not None else {}


@dataclass(frozen=True, slots=True)
class LoadResult:
    rules: tuple[Rule, ...]
    errors: tuple[RuleError, ...]


def rule_dirs(extra: Sequence[str | os.PathLike[str]] = (), *, builtin: bool = True) -> list[Path]:
    """The built-in rule folder, then folders from ``SYSMON_RULES_DIRS`` (os.pathsep-separated),
    then ``extra`` (``--rules-dir``)."""
    dirs = [BUILTIN_DIR] if builtin else []
    env = os.environ.get(RULES_DIRS_ENV, "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p.strip()]
    dirs += [Path(p) for p in extra]
    return dirs


def load_rules(
    dirs: Sequence[str | os.PathLike[str]] | None = None,
    *,
    extra_dirs: Sequence[str | os.PathLike[str]] = (),
    strict: bool = False,
) -> LoadResult:
    """Every ``*.yml``/``*.yaml`` rule in ``dirs`` (default: :func:`rule_dirs` with
    ``extra_dirs``), collecting all errors. Duplicate ids are errors naming both places. With
    ``strict``, raise :class:`RuleErrors` if any error was found."""
    folders = [Path(d) for d in dirs] if dirs is not None else rule_dirs(extra_dirs)
    rules: list[Rule] = []
    errors: list[RuleError] = []
    seen: dict[str, Rule] = {}
    for folder in folders:
        if not folder.is_dir():
            errors.append(RuleError("rules folder does not exist", path=str(folder), line=0))
            continue
        is_builtin = folder.resolve() == BUILTIN_DIR.resolve()
        files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])
        for f in files:
            try:
                rule = parse_rule(f.read_text(encoding="utf-8"), str(f), builtin=is_builtin)
            except RuleErrors as exc:
                errors.extend(exc.errors)
                continue
            except (OSError, UnicodeDecodeError) as exc:
                errors.append(RuleError(f"cannot read: {exc}", path=str(f), line=0))
                continue
            if rule.id in seen:
                other = seen[rule.id]
                errors.append(
                    RuleError(f"duplicate rule id {rule.id!r} (also in {other.where})", path=str(f), line=1)
                )
                continue
            seen[rule.id] = rule
            rules.append(rule)
    if strict and errors:
        raise RuleErrors(errors)
    return LoadResult(tuple(rules), tuple(errors))

"""Load rule files into :class:`detectors.model.Rule`, reporting every problem with file and line.

The YAML is composed into nodes (which carry their marks), never constructed blindly, so that each
error can name the line of the offending key or value. :func:`load_rules` collects every error of
every file instead of stopping at the first (``sysmon-detect validate``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from detectors.model import (
    PARAMS,
    RULE_TYPES,
    SEVERITIES,
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

BUILTIN_DIR = Path(__file__).with_name("rules")
RULES_DIRS_ENV = "SYSMON_RULES_DIRS"

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,99}$")
_TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")
_TACTIC = re.compile(r"^TA\d{4}$")
_FIELD = re.compile(r"^[@A-Za-z_][A-Za-z0-9_.]*$")
_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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


def parse_duration(text: object) -> int:
    """``30s``/``5m``/``1h``/``7d`` (or a number of seconds) → seconds."""
    if isinstance(text, bool):
        raise ValueError("a duration like 30s, 5m, 1h or 7d")
    if isinstance(text, int):
        if text <= 0:
            raise ValueError("a duration must be positive")
        return text
    m = _DURATION.match(str(text).strip())
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 1h or 7d")
    return int(m.group(1)) * _UNITS[m.group(2)]


def format_duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _plain(node: yaml.Node) -> Any:
    """A node as plain Python (for free-form parts: the ES query dict)."""
    if isinstance(node, yaml.MappingNode):
        return {_plain(k): _plain(v) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_plain(v) for v in node.value]
    return yaml.safe_load(yaml.serialize(node))


class _Reader:
    """Reads one mapping node, appending errors (with the line) instead of raising."""

    def __init__(self, node: yaml.Node, path: str, errors: list[RuleError], what: str = "rule") -> None:
        self.path = path
        self.errors = errors
        self.node = node
        self.what = what
        self.keys: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a mapping")
            return
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                self.error(k, "keys must be plain strings")
                continue
            if k.value in self.keys:
                self.error(k, f"duplicate key {k.value!r}")
            self.keys[k.value] = (k, v)

    def line(self, node: yaml.Node) -> int:
        return node.start_mark.line + 1

    def error(self, node: yaml.Node, message: str) -> None:
        self.errors.append(RuleError(message, path=self.path, line=self.line(node)))

    def where(self) -> Where:
        return Where(self.path, self.line(self.node))

    def check_keys(self, allowed: Iterable[str]) -> None:
        allowed = set(allowed)
        for name, (k, _v) in self.keys.items():
            if name not in allowed:
                self.error(k, f"unknown key {name!r} in {self.what} (allowed: {', '.join(sorted(allowed))})")

    def node_of(self, key: str, required: bool) -> yaml.Node | None:
        if key in self.keys:
            return self.keys[key][1]
        if required:
            self.error(self.node, f"{self.what}: missing required key {key!r}")
        return None

    def scalar(self, key: str, required: bool = True) -> tuple[Any, yaml.Node] | None:
        n = self.node_of(key, required)
        if n is None:
            return None
        if not isinstance(n, yaml.ScalarNode):
            self.error(n, f"{key!r} must be a single value")
            return None
        return yaml.safe_load(yaml.serialize(n)), n

    def text(self, key: str, required: bool = True, default: str = "") -> str:
        got = self.scalar(key, required)
        if got is None:
            return default
        value, n = got
        if not isinstance(value, str) or not value.strip():
            self.error(n, f"{key!r} must be a non-empty string")
            return default
        return value.strip()

    def integer(self, key: str, required: bool = True, default: int = 0, lo: int = 0, hi: int = 10**9) -> int:
        got = self.scalar(key, required)
        if got is None:
            return default
        value, n = got
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.error(n, f"{key!r} must be an integer from {lo} to {hi}")
            return default
        return value

    def flag(self, key: str, default: bool) -> bool:
        got = self.scalar(key, False)
        if got is None:
            return default
        value, n = got
        if not isinstance(value, bool):
            self.error(n, f"{key!r} must be true or false")
            return default
        return value

    def duration(self, key: str, required: bool = True, default: int = 0) -> int:
        got = self.scalar(key, required)
        if got is None:
            return default
        value, n = got
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.error(n, f"{key!r}: {exc}")
            return default

    def strings(
        self, key: str, required: bool = True, pattern: re.Pattern[str] | None = None, what: str = "value"
    ) -> tuple[str, ...]:
        n = self.node_of(key, required)
        if n is None:
            return ()
        items = n.value if isinstance(n, yaml.SequenceNode) else None
        if items is None:
            if isinstance(n, yaml.ScalarNode):
                items = [n]
            else:
                self.error(n, f"{key!r} must be a list of strings")
                return ()
        out: list[str] = []
        for item in items:
            value = _plain(item) if isinstance(item, yaml.ScalarNode) else None
            if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
                self.error(item, f"{key!r}: each entry must be a non-empty string")
                continue
            text = str(value).strip()
            if pattern is not None and not pattern.match(text):
                self.error(item, f"{key!r}: {text!r} is not a valid {what}")
                continue
            out.append(text)
        if required and not out and not any(e.line == self.line(n) for e in self.errors):
            self.error(n, f"{key!r} must not be empty")
        return tuple(out)

    def fields(self, key: str, required: bool = True) -> tuple[str, ...]:
        return self.strings(key, required, _FIELD, "field name")

    def sub(self, key: str, required: bool = False, what: str | None = None) -> _Reader | None:
        n = self.node_of(key, required)
        if n is None:
            return None
        return _Reader(n, self.path, self.errors, what or key)

    def items(self, key: str, what: str) -> list[_Reader]:
        n = self.node_of(key, False)
        if n is None:
            return []
        if not isinstance(n, yaml.SequenceNode):
            self.error(n, f"{key!r} must be a list")
            return []
        return [_Reader(item, self.path, self.errors, what) for item in n.value]


# ------------------------------------------------------------------ parts
def _intel_clause(r: _Reader) -> IntelClause:
    r.check_keys(("fields", "field", "feeds", "types"))
    fields = r.fields("fields", required="field" not in r.keys) + r.fields("field", required=False)
    feeds = r.strings("feeds", required=False) or None
    types = r.strings("types", required=False) or None
    return IntelClause(fields=fields, feeds=feeds, types=types)


def _filter(r: _Reader) -> Filter:
    r.check_keys(("event_codes", "query", "lucene", "intel"))
    codes = r.strings("event_codes", pattern=re.compile(r"^\d{1,3}$"), what="Sysmon event ID")
    query: dict[str, Any] | None = None
    qn = r.node_of("query", False)
    if qn is not None:
        if not isinstance(qn, yaml.MappingNode) or len(qn.value) != 1:
            r.error(qn, "'query' must be an Elasticsearch query: a mapping with one key (bool, term, …)")
        else:
            query = cast(dict[str, Any], _plain(qn))
    lucene = r.text("lucene", required=False) or None
    if query is not None and lucene is not None:
        r.error(r.keys["lucene"][0], "give either 'query' or 'lucene', not both")
    ir = r.sub("intel", what="filter.intel")
    intel = _intel_clause(ir) if ir is not None else None
    return Filter(event_codes=codes, query=query, lucene=lucene, intel=intel)


def _threat(r: _Reader) -> Threat:
    r.check_keys(("tactic", "techniques"))
    tr = r.sub("tactic", required=True, what="threat.tactic")
    tid = tname = ""
    if tr is not None:
        tr.check_keys(("id", "name"))
        tid = tr.text("id")
        tname = tr.text("name")
        if tid and not _TACTIC.match(tid):
            tr.error(tr.keys["id"][1], f"{tid!r} is not an ATT&CK tactic id (TA0000)")
    techniques: list[Technique] = []
    for t in r.items("techniques", "threat technique"):
        t.check_keys(("id", "name"))
        i, name = t.text("id"), t.text("name")
        if i and not _TECHNIQUE.match(i):
            t.error(t.keys["id"][1], f"{i!r} is not an ATT&CK technique id (T0000 or T0000.000)")
        techniques.append(Technique(i, name))
    if "techniques" in r.keys and not techniques:
        r.error(r.keys["techniques"][1], "'techniques' must list at least one technique")
    elif "techniques" not in r.keys:
        r.error(r.node, "threat: missing required key 'techniques'")
    return Threat(tid, tname, tuple(techniques))


def _params(rule_type: str, r: _Reader | None, errors: list[RuleError], where: _Reader) -> Params:
    cls = PARAMS.get(rule_type)
    if cls is None:
        return QueryParams()
    if cls is QueryParams:
        if r is not None:
            r.check_keys(())
        return QueryParams()
    if r is None:
        where.error(where.node, f"rule type {rule_type!r} needs 'params'")
        return QueryParams()
    if cls is IntelMatchParams:
        r.check_keys(("fields", "feeds", "types"))
        return IntelMatchParams(
            fields=r.fields("fields"),
            feeds=r.strings("feeds", required=False) or None,
            types=r.strings("types", required=False) or None,
        )
    if cls is NewValueParams:
        r.check_keys(("fields", "history", "require_any"))
        fields = r.fields("fields")
        req = r.fields("require_any", required=False)
        for f in req:
            if f not in fields:
                r.error(r.keys["require_any"][1], f"require_any: {f!r} is not one of 'fields'")
        return NewValueParams(fields=fields, history=r.duration("history"), require_any=req)
    if cls is SpreadParams:
        r.check_keys(("field", "min_hosts", "window", "host_field"))
        return SpreadParams(
            field=r.text("field"),
            min_hosts=r.integer("min_hosts", lo=2, hi=10_000),
            window=r.duration("window"),
            host_field=r.text("host_field", required=False, default="host.name"),
        )
    if cls is ThresholdParams:
        r.check_keys(("group_by", "threshold", "window"))
        return ThresholdParams(
            group_by=r.fields("group_by"),
            threshold=r.integer("threshold", lo=1, hi=10**9),
            window=r.duration("window"),
        )
    raise AssertionError(f"no parameter reader for {cls.__name__}")  # pragma: no cover


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


def parse_rule(text: str, path: str, *, builtin: bool = False) -> Rule:
    """One rule from YAML text; raises :class:`RuleErrors` with every problem found."""
    errors: list[RuleError] = []
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise RuleErrors([RuleError(f"not valid YAML: {exc.problem or exc}", path=path, line=line)]) from exc
    if node is None:
        raise RuleErrors([RuleError("empty rule file", path=path, line=1)])
    r = _Reader(node, path, errors)
    if errors:
        raise RuleErrors(errors)
    r.check_keys(_RULE_KEYS)
    rid = r.text("id")
    if rid and not _ID.match(rid):
        r.error(r.keys["id"][1], f"id {rid!r}: use lower-case letters, digits, '-', '_' or '.'")
    name = r.text("name")
    description = r.text("description")
    severity = r.text("severity")
    if severity and severity not in SEVERITIES:
        r.error(r.keys["severity"][1], f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    risk = r.integer("risk_score", hi=100)
    rtype = r.text("type")
    if rtype and rtype not in RULE_TYPES:
        r.error(r.keys["type"][1], f"type {rtype!r} is not one of {', '.join(RULE_TYPES)}")
    interval = r.duration("interval")
    enabled = r.flag("enabled", True)
    threat = [_threat(t) for t in r.items("threat", "threat entry")]
    if "threat" not in r.keys:
        r.error(node, "rule: missing required key 'threat' (ATT&CK tactic and techniques)")
    elif not threat:
        r.error(r.keys["threat"][1], "'threat' must list at least one tactic with techniques")
    references = r.strings("references", required=False)
    fr = r.sub("filter", required=True)
    flt = _filter(fr) if fr is not None else Filter(event_codes=())
    fields = r.fields("fields", required=False)
    sr = r.sub("suppression")
    suppression = None
    if sr is not None:
        sr.check_keys(("group_by", "window"))
        suppression = Suppression(group_by=sr.fields("group_by"), window=sr.duration("window"))
    er = r.sub("exceptions")
    exceptions = Exceptions()
    if er is not None:
        er.check_keys(("allowlists", "values"))
        allow = tuple(_intel_clause(a) for a in er.items("allowlists", "allowlist exception"))
        values: list[ValueException] = []
        for v in er.items("values", "value exception"):
            v.check_keys(("field", "values"))
            values.append(ValueException(field=v.text("field"), values=v.strings("values")))
        exceptions = Exceptions(allowlists=allow, values=tuple(values))
    pr = r.sub("params")
    params = _params(rtype, pr, errors, r)
    version = r.integer("version", required=False, default=1, lo=1)
    tags = r.strings("tags", required=False)
    if errors:
        raise RuleErrors(errors)
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
            **{k: kn.start_mark.line + 1 for k, (kn, _v) in r.keys.items()},
            **({f"filter.{k}": kn.start_mark.line + 1 for k, (kn, _v) in fr.keys.items()} if fr else {}),
            **({f"params.{k}": kn.start_mark.line + 1 for k, (kn, _v) in pr.keys.items()} if pr else {}),
        },
    )


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

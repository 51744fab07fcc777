"""The rule model and loader: every built-in rule loads; bad rules are rejected with file and
line, and every error of a file is reported (not just the first)."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.builders import BUILDERS
from detectors.loader import BUILTIN_DIR, RuleErrors, format_duration, load_rules, parse_rule
from detectors.model import RULE_TYPES, IntelMatchParams, NewValueParams, SpreadParams
from shipper.durations import parse_duration
from shipper.sysmon.fields import EMITTED_FIELDS

GOOD = """\
id: my-rule
name: My rule
description: something
type: query
severity: medium
risk_score: 50
interval: 5m
threat:
  - tactic: {id: TA0002, name: Execution}
    techniques:
      - {id: T1059.001, name: PowerShell}
filter:
  event_codes: [1]
  lucene: "process.name:powershell.exe"
"""


def test_builtin_rules_load_and_cover_the_issue() -> None:
    res = load_rules([BUILTIN_DIR])
    assert res.errors == ()
    rules = {r.id: r for r in res.rules}
    assert len(rules) >= 12
    assert all(r.builtin and r.technique_ids and r.enabled for r in rules.values())
    codes = {c for r in rules.values() for c in r.filter.event_codes}
    assert {"1", "3", "6", "7", "8", "9", "10", "15", "22", "25", "29"} <= codes
    assert {r.type for r in rules.values()} >= {"intel_match", "query", "new_value", "spread"}
    assert isinstance(rules["bad-hash-spread"].params, SpreadParams)
    assert isinstance(rules["intel-dns-domain"].params, IntelMatchParams)
    assert isinstance(rules["new-binary-not-allowlisted"].params, NewValueParams)


def test_every_rule_type_has_a_builder() -> None:
    assert set(RULE_TYPES) == set(BUILDERS)


def _fields_used(rule: object) -> set[str]:
    from detectors.model import Rule

    assert isinstance(rule, Rule)
    out: set[str] = set()
    p = rule.params
    for name in ("fields", "group_by", "require_any"):
        out |= set(getattr(p, name, ()) or ())
    for name in ("field", "host_field"):
        if getattr(p, name, None):
            out.add(getattr(p, name))
    if rule.filter.intel:
        out |= set(rule.filter.intel.fields)
    for a in rule.exceptions.allowlists:
        out |= set(a.fields)
    out |= {v.field for v in rule.exceptions.values}
    if rule.suppression:
        out |= set(rule.suppression.group_by)
    return out


def test_every_field_a_builtin_rule_uses_is_mapped() -> None:
    mapped = set(EMITTED_FIELDS) | {"event.ingested"}
    for rule in load_rules([BUILTIN_DIR]).rules:
        for f in _fields_used(rule):
            assert f.removesuffix(".caseless") in mapped, (rule.id, f)


def _errors(text: str, tmp_path: Path) -> list[str]:
    p = tmp_path / "r.yml"
    p.write_text(text)
    with pytest.raises(RuleErrors) as exc:
        parse_rule(text, str(p))
    return [f"{e.line}: {e.message}" for e in exc.value.errors]


def test_good_rule_parses(tmp_path: Path) -> None:
    r = parse_rule(GOOD, "x.yml")
    assert (r.id, r.severity, r.interval, r.filter.event_codes) == ("my-rule", "medium", 300, ("1",))
    assert r.threat[0].techniques[0].id == "T1059.001"
    assert r.at("filter.lucene").line == 14


def test_all_errors_of_a_file_with_lines(tmp_path: Path) -> None:
    bad = (
        GOOD.replace("severity: medium", "severity: severe")
        .replace("risk_score: 50", "risk_score: 150")
        .replace("interval: 5m", "interval: soon")
        .replace("T1059.001", "X1059")
        .replace("event_codes: [1]", "event_codes: [1, abc]\n  colour: red")
    )
    errs = _errors(bad, tmp_path)
    assert errs == [
        "5: severity 'severe' is not one of low, medium, high, critical",
        "6: 'risk_score' must be an integer from 0 to 100",
        "7: 'interval': 'soon' is not a duration like 30s, 5m, 1h30m, 7d or 2w",
        "11: 'X1059' is not an ATT&CK technique id (T0000 or T0000.000)",
        "14: unknown key 'colour' in filter (allowed: event_codes, intel, lucene, query)",
        "13: 'event_codes': 'abc' is not a valid Sysmon event ID",
    ]


def test_missing_keys_unknown_type_and_params(tmp_path: Path) -> None:
    text = GOOD.replace("type: query", "type: magic").replace("name: My rule\n", "")
    errs = _errors(text, tmp_path)
    assert "1: rule: missing required key 'name'" in errs
    types = "intel_match, query, new_value, spread, threshold, sequence_gap, silence"
    assert f"3: type 'magic' is not one of {types}" in errs
    spread = (
        GOOD.replace("type: query", "type: spread")
        + "params:\n  field: process.hash.sha256\n  min_hosts: 1\n"
    )
    errs = _errors(spread, tmp_path)
    assert "17: 'min_hosts' must be an integer from 2 to 10000" in errs
    assert "16: params: missing required key 'window'" in errs


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    errs = _errors(GOOD + "references: [unclosed\n", tmp_path)
    assert len(errs) == 1 and errs[0].startswith("16: not valid YAML")


def test_query_and_lucene_are_exclusive(tmp_path: Path) -> None:
    text = GOOD.replace('  lucene: "process.name:powershell.exe"\n', "  query: {term: {process.name: x}}\n")
    assert parse_rule(text, "x.yml").filter.query == {"term": {"process.name": "x"}}
    errs = _errors(text + '  lucene: "a:b"\n', tmp_path)
    assert errs == ["15: give either 'query' or 'lucene', not both"]


def test_duplicate_ids_across_folders(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "one.yml").write_text(GOOD)
    (tmp_path / "b" / "two.yml").write_text(GOOD)
    (tmp_path / "b" / "bad.yml").write_text("id: [")
    res = load_rules([tmp_path / "a", tmp_path / "b"])
    assert [r.id for r in res.rules] == ["my-rule"]
    msgs = sorted(str(e) for e in res.errors)
    assert any("two.yml:1: duplicate rule id 'my-rule' (also in" in m for m in msgs)
    assert any("bad.yml:1: not valid YAML" in m for m in msgs)


def test_durations() -> None:
    assert [parse_duration(x) for x in ("30s", "5m", "1h", "7d", 90)] == [30, 300, 3600, 604800, 90]
    for bad in ("0m", "5y", "", True, -1):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert format_duration(300) == "5m" and format_duration(86400) == "1d" and format_duration(61) == "61s"


def test_value_exceptions_lower_case_for_caseless_fields_and_hashes() -> None:
    """Events carry lower-case digests (the shipper lower-cases them); an exception value copied
    upper-case from a vendor report must still match. Paths stay as written unless .caseless."""
    from detectors.query import _values_clause

    assert _values_clause("process.hash.sha256", ["ABCDEF"]) == {"terms": {"process.hash.sha256": ["abcdef"]}}
    assert _values_clause("file.hash.md5", ["AB"]) == {"terms": {"file.hash.md5": ["ab"]}}
    assert _values_clause("process.executable.caseless", ["C:\\X.exe"]) == {
        "terms": {"process.executable.caseless": ["c:\\x.exe"]}
    }
    assert _values_clause("process.executable", ["C:\\X.exe"]) == {
        "terms": {"process.executable": ["C:\\X.exe"]}
    }

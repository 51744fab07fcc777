"""ATT&CK technique names from a user-supplied STIX bundle (a small one built here): ids as names
without it; sub-techniques as Elastic writes them (``threat.technique`` the parent,
``threat.technique.subtechnique`` the sub-technique), also for the built-in rules' names;
``--attack-data`` over ``SYSMON_ATTACK_DATA`` over the configuration file; errors name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from detectors.alerts import threat_doc
from detectors.loader import BUILTIN_DIR, parse_rule
from detectors.model import Technique, Threat
from detectors.sigma.attack import threats
from detectors.sigma.attack_data import (
    ATTACK_DATA_ENV,
    attack_data_path,
    load_attack_names,
    with_technique_names,
)
from detectors.sigma.loading import load_sigma
from shipper.errors import ConfigError


def _pattern(tid: str, name: str, **extra: Any) -> dict[str, Any]:
    refs = [{"source_name": "mitre-attack", "external_id": tid, "url": "https://attack.mitre.org/x"}]
    return {
        "type": "attack-pattern",
        "id": f"attack-pattern--{tid}",
        "name": name,
        "external_references": refs,
    } | extra


BUNDLE = {
    "type": "bundle",
    "id": "bundle--test",
    "objects": [
        _pattern("T1059", "Command and Scripting Interpreter"),
        _pattern("T1059.001", "PowerShell"),
        _pattern("T1204", "User Execution"),
        _pattern("T1204.002", "Malicious File"),
        _pattern("T1086", "PowerShell (old)", revoked=True),
        _pattern("T1064", "Scripting", x_mitre_deprecated=True),
        {"type": "x-mitre-tactic", "name": "Execution", "external_references": []},
    ],
}


def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "enterprise-attack.json"
    path.write_text(json.dumps(BUNDLE, indent=1))
    return path


def test_names_from_a_bundle(tmp_path: Path) -> None:
    names = load_attack_names(bundle(tmp_path))
    assert names == {
        "T1059": "Command and Scripting Interpreter",
        "T1059.001": "Command and Scripting Interpreter: PowerShell",
        "T1204": "User Execution",
        "T1204.002": "User Execution: Malicious File",
    }


def test_sigma_alert_threat_as_elastic_writes_it(tmp_path: Path) -> None:
    rule = tmp_path / "r.yml"
    rule.write_text(
        "title: t\nid: 3f3c2a10-0000-4000-8000-000000000401\nstatus: test\nlevel: high\n"
        "tags: [attack.execution, attack.t1059.001, attack.t1204.002, attack.t1204, attack.t9999]\n"
        "logsource: {product: windows, category: process_creation}\n"
        "detection:\n  sel: {Image|endswith: x.exe}\n  condition: sel\n"
    )
    (c,) = load_sigma([rule])
    assert c.rule is not None
    bare = threat_doc(c.rule)["technique"]
    assert bare["id"] == ["T1059", "T1204", "T9999"] and bare["name"] == ["T1059", "T1204", "T9999"]
    assert bare["subtechnique"]["id"] == bare["subtechnique"]["name"] == ["T1059.001", "T1204.002"]
    (named,) = with_technique_names([c.rule], load_attack_names(bundle(tmp_path)))
    doc = threat_doc(named)["technique"]
    assert doc["id"] == ["T1059", "T1204", "T9999"]
    assert doc["name"] == ["Command and Scripting Interpreter", "User Execution", "T9999"]
    assert doc["reference"][0] == "https://attack.mitre.org/techniques/T1059/"
    assert doc["subtechnique"] == {
        "id": ["T1059.001", "T1204.002"],
        "name": ["PowerShell", "Malicious File"],
        "reference": [
            "https://attack.mitre.org/techniques/T1059/001/",
            "https://attack.mitre.org/techniques/T1204/002/",
        ],
    }


def test_builtin_names_split_the_same_way() -> None:
    rule = parse_rule((BUILTIN_DIR / "intel_dns_domain.yml").read_text(), "intel_dns_domain.yml")
    doc = threat_doc(rule)["technique"]
    assert doc["id"] == ["T1071", "T1568"]
    assert doc["name"] == ["Application Layer Protocol", "Dynamic Resolution"]
    assert doc["subtechnique"]["name"] == ["DNS"]
    # a rule's own names are kept; ids only where it had no name
    kept = with_technique_names([rule], {"T1071.004": "X: Y", "T1568": "Z"})
    assert kept[0].threat == rule.threat
    assert threats(["attack.t1059"]) == (Threat("", "", (Technique("T1059", "T1059"),)),)


def test_precedence_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ATTACK_DATA_ENV, raising=False)
    assert attack_data_path(None, tmp_path / "conf.json") == str(tmp_path / "conf.json")
    monkeypatch.setenv(ATTACK_DATA_ENV, "/env.json")
    assert attack_data_path(None, tmp_path / "conf.json") == "/env.json"
    assert attack_data_path("/flag.json", tmp_path / "conf.json") == "/flag.json"
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "objects": [\n    {"type": "attack-pattern",}\n  ]\n}\n')
    with pytest.raises(ConfigError, match=r"broken.json \(line 3\): not JSON"):
        load_attack_names(broken)
    empty = tmp_path / "empty.json"
    empty.write_text('{"type": "bundle", "objects": []}')
    with pytest.raises(ConfigError, match="no ATT&CK techniques"):
        load_attack_names(empty)
    with pytest.raises(ConfigError, match="cannot read ATT&CK data"):
        load_attack_names(tmp_path / "missing.json")

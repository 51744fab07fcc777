"""Technique names on Sigma alerts, on the real node: ``sysmon-detect run`` with the ATT&CK
bundle named in the configuration file (relative to it) writes ``threat.technique.name`` and
``threat.technique.subtechnique.name`` as Elastic does; ``SYSMON_ATTACK_DATA`` overrides the
file (a missing bundle is an error naming it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from elasticsearch import Elasticsearch

from detectors.cli import main
from shipper.es import ClusterSettings
from shipper.raw import SYSMON_CHANNEL, SYSMON_PROVIDER, RawEvent
from shipper.sysmon.ecs import to_ecs
from tests.integration.test_detect_support import alerts, cli_env, index_docs, ts_ago
from tests.unit.test_sigma_attack import bundle

RULE = """title: PowerShell from Downloads
id: 3f3c2a10-0000-4000-8000-000000000501
status: test
level: medium
tags: [attack.execution, attack.t1059.001]
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\\\\powershell.exe', CurrentDirectory|contains: '\\\\downloads\\\\'}
  condition: sel
"""


def _event() -> dict[str, Any]:
    raw = RawEvent(
        provider=SYSMON_PROVIDER,
        event_id=1,
        event_data={
            "UtcTime": ts_ago(0, -30).replace("T", " ").rstrip("Z"),
            "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            "CurrentDirectory": "C:\\Users\\bob\\Downloads\\",
            "CommandLine": "powershell.exe",
        },
        record_id=1,
        computer="WKS-ATTACK.corp.example",
        channel=SYSMON_CHANNEL,
    )
    return to_ecs(raw)


def test_technique_names_from_the_configured_bundle(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path
) -> None:
    conf = tmp_path / "conf"
    (conf / "sigma").mkdir(parents=True)
    (conf / "sigma" / "ps.yml").write_text(RULE)
    bundle(conf)
    cfg = conf / "detect.yml"
    cfg.write_text("sigma:\n  paths: [sigma]\n  attack_data: enterprise-attack.json\n")
    index_docs(es, prefix, [_event()])
    env = cli_env(es_settings, prefix) | {"SYSMON_SIGMA_PATHS": "", "SYSMON_ATTACK_DATA": ""}
    args = ["run", "--no-builtin", "--config", str(cfg), "--all", "--ingest-delay", "0", "--json"]
    r = CliRunner().invoke(main, args, env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.splitlines()[0])["alerts"] == 1
    (alert,) = alerts(es, prefix)
    technique = alert["threat"]["technique"]
    assert (technique["id"], technique["name"]) == (["T1059"], ["Command and Scripting Interpreter"])
    assert technique["subtechnique"]["id"] == ["T1059.001"]
    assert technique["subtechnique"]["name"] == ["PowerShell"]
    assert alert["threat"]["tactic"]["name"] == ["Execution"]
    # the environment wins over the file
    r = CliRunner().invoke(main, args, env=env | {"SYSMON_ATTACK_DATA": str(tmp_path / "none.json")})
    assert r.exit_code == 1 and f"{tmp_path / 'none.json'}: cannot read ATT&CK data" in r.output

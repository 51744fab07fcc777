"""``sysmon-detect sigma check --live`` on the real node: a rule needing a field that never
appears in the indexed events for its event codes goes to "cannot fire here", naming the field;
a rule that only needs such a field absent (``not``, ``null``) still runs; no event of a rule's
codes at all is said so."""

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
from tests.integration.test_detect_support import cli_env, index_docs, ts_ago


def _event(eid: int, record: int, **data: str) -> dict[str, Any]:
    raw = RawEvent(
        provider=SYSMON_PROVIDER,
        event_id=eid,
        event_data={"UtcTime": ts_ago(0, -30).replace("T", " ").rstrip("Z"), **data},
        record_id=record,
        computer="WKS-LIVE.corp.example",
        channel=SYSMON_CHANNEL,
    )
    return to_ecs(raw)


RULES = {
    "present": ("process_creation", "  sel: {CommandLine|contains: evil}\n  condition: sel"),
    "absent": ("process_creation", "  sel: {ParentCommandLine|contains: evil}\n  condition: sel"),
    "not_absent": (
        "process_creation",
        "  sel: {Image|endswith: '.exe'}\n  f: {ParentCommandLine|contains: x}\n  condition: sel and not f",
    ),
    "either_absent": (
        "process_creation",
        "  sel1: {ParentCommandLine: x}\n  sel2: {OriginalFileName: y}\n  condition: 1 of sel*",
    ),
    "one_present": (
        "process_creation",
        "  sel1: {ParentCommandLine: x}\n  sel2: {CommandLine: y}\n  condition: 1 of sel*",
    ),
    "null_parent": ("process_creation", "  sel: {ParentCommandLine: null}\n  condition: sel"),
    "no_events": ("registry_set", "  sel: {TargetObject|endswith: '\\\\Run'}\n  condition: sel"),
}


def _write(folder: Path) -> None:
    folder.mkdir()
    for n, (name, (category, detection)) in enumerate(RULES.items()):
        (folder / f"{name}.yml").write_text(
            f"title: {name}\nid: 3f3c2a10-0000-4000-8000-0000000001{n:02d}\nstatus: test\nlevel: high\n"
            f"logsource: {{product: windows, category: {category}}}\ndetection:\n{detection}\n"
        )


def test_live_check_names_the_fields_never_indexed(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path
) -> None:
    _write(tmp_path / "sigma")
    index_docs(
        es,
        prefix,
        [
            _event(1, 1, Image="C:\\x\\evil.exe", CommandLine="evil.exe -a"),
            _event(3, 2, Image="C:\\x\\evil.exe", DestinationIp="203.0.113.7", DestinationPort="443"),
        ],
    )
    env = cli_env(es_settings, prefix)
    r = CliRunner().invoke(main, ["sigma", "check", "--json", str(tmp_path / "sigma")], env=env)
    assert r.exit_code == 0, r.output
    offline = {Path(d["file"]).stem: d["class"] for d in map(json.loads, r.stdout.splitlines()[:-1])}
    assert set(offline.values()) == {"runs"}

    r = CliRunner().invoke(main, ["sigma", "check", "--live", "--json", str(tmp_path / "sigma")], env=env)
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    got = {Path(d["file"]).stem: d for d in lines[:-1]}
    assert {k: d["class"] for k, d in got.items()} == {
        "present": "runs",
        "absent": "cannot_fire",
        "not_absent": "runs",
        "either_absent": "cannot_fire",
        "one_present": "runs",
        "null_parent": "runs",
        "no_events": "cannot_fire",
    }
    index = f"{prefix}-events-*"
    assert (
        got["absent"]["reason"] == f"process.parent.command_line never appear in {index} for Sysmon event 1"
    )
    assert got["either_absent"]["reason"].startswith(
        "process.parent.command_line, process.pe.original_file_name"
    )
    assert got["no_events"]["reason"].startswith(f"no Sysmon event 13 in {index}: registry.path")
    assert lines[-1]["summary"]["cannot_fire"] == 3

    r = CliRunner().invoke(main, ["sigma", "check", "--live", str(tmp_path / "sigma")], env=env)
    assert "cannot fire here" in r.output and "process.parent.command_line never appear" in r.output

"""Stream detection without a cluster: the ``detect:`` configuration and flags, the summary,
the bounded process cache, and the shipper not importing ``detectors`` without ``--detect``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from detectors.stream.processes import ProcessCache
from shipper.config import load_file, resolve
from shipper.errors import ConfigError
from shipper.summary import RunSummary


def test_detect_section_and_flags(tmp_path: Path) -> None:
    f = tmp_path / "ship.yml"
    f.write_text("detect:\n  enabled: true\n  rules_dirs: [rules]\n  config: detect.yml\n  intel_poll: 5\n")
    cfg = load_file(f)
    assert cfg.detect.enabled and cfg.detect.intel_poll == 5.0 and cfg.detect.builtin
    assert cfg.detect.rules_dirs == (str(tmp_path / "rules"),)  # read from the file's folder
    assert cfg.detect.config == str(tmp_path / "detect.yml")
    flagged = resolve(str(f), env={}, detect={"rules_dirs": ("/more",), "config": "/x.yml"})
    assert flagged.detect.rules_dirs == (str(tmp_path / "rules"), "/more")
    assert flagged.detect.config == "/x.yml" and flagged.detect.enabled
    assert not resolve(None, env={}).detect.enabled
    assert resolve(None, env={}, detect={"enabled": True}).detect.enabled


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("detect:\n  enabled: maybe\n", 2, "detect.enabled must be true or false"),
        ("detect:\n  intel_poll: 0\n", 2, "detect.intel_poll must be a positive number"),
        ("detect:\n  colour: red\n", 2, "colour"),
    ],
)
def test_detect_errors_name_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    f = tmp_path / "ship.yml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_file(f)
    assert f"{f} (line {line})" in str(err.value) and words in str(err.value)


def test_summary_reports_alerts_and_degradation() -> None:
    s = RunSummary(shipped=10, elapsed=1.0)
    assert "alerts=" not in s.line() and "detection" not in s.as_dict()
    s.detection = {"alerts": 3, "duplicates": 1, "degraded": None}
    assert s.line().endswith(" alerts=3 alert_duplicates=1")
    s.detection["degraded"] = "intel not loaded: index closed"
    assert "detection degraded (intel not loaded: index closed;" in s.line()
    assert s.as_dict()["detection"]["alerts"] == 3


def _creation(host: str, eid: str, parent: str | None) -> dict[str, object]:
    proc: dict[str, object] = {"entity_id": eid, "executable": f"C:\\{eid}.exe", "pid": 1}
    if parent:
        proc["parent"] = {"entity_id": parent}
    return {
        "@timestamp": "2026-11-02T00:00:00.000Z",
        "event": {"code": "1"},
        "host": {"name": host},
        "process": proc,
    }


def test_process_cache_is_bounded_and_walks_chains() -> None:
    cache = ProcessCache(size=3)
    cache.see(
        {"event": {"code": "3"}, "host": {"name": "h"}, "process": {"entity_id": "x"}}
    )  # not a creation
    for eid, parent in (("a", None), ("b", "a"), ("c", "b")):
        cache.see(_creation("h", eid, parent))
    assert len(cache) == 3
    assert [k[1] for k in cache.known(("h", "c"), depth=8)] == ["c", "b", "a"]
    assert [k[1] for k in cache.known(("h", "c"), depth=2)] == ["c", "b"]
    assert cache.known(("other-host", "c"), depth=8) == {}  # entity ids are per host
    cache.see(_creation("h", "d", "c"))  # the least recently seen ("a") goes
    assert len(cache) == 3 and cache.get(("h", "a")) is None
    assert [k[1] for k in cache.known(("h", "d"), depth=8)] == ["d", "c", "b"]  # stops where it lacks


def test_shipper_does_not_import_detectors_without_detect() -> None:
    code = (
        "import sys, shipper.cli, shipper.cli.shipping, shipper.ship, shipper.watch, shipper.sink;"
        "print([m for m in sys.modules if m.split('.')[0] == 'detectors'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_list_says_which_engine_runs_each_rule() -> None:
    import json

    from click.testing import CliRunner

    from detectors.cli import main

    res = CliRunner().invoke(main, ["list", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["id"]: r for r in map(json.loads, (ln for ln in res.stdout.splitlines() if ln.startswith("{")))}
    assert rows["intel-ip-connection"]["engine"] == "stream+scheduled"
    assert rows["intel-ip-connection"]["stream_unsupported"] is None
    assert rows["bad-hash-spread"]["engine"] == "scheduled"
    assert rows["bad-hash-spread"]["stream_unsupported"] == "needs history"
    text = CliRunner().invoke(main, ["list"]).stdout
    assert "[scheduled: needs history]" in text and "[stream+scheduled]" in text


def test_the_stage_loads_the_sigma_rules_of_the_detectors_config(tmp_path: Path) -> None:
    from detectors.stream.build import rule_set
    from detectors.stream.stage import stream_plan

    sigma = tmp_path / "sigma"
    sigma.mkdir()
    (sigma / "evil.yml").write_text(
        "title: Evil\nid: 33333333-3333-4333-8333-333333333333\nstatus: test\nlevel: high\n"
        "logsource: {product: windows, category: process_creation}\n"
        "detection:\n  sel: {Image|endswith: '\\\\evil.exe'}\n  condition: sel\n"
    )
    (tmp_path / "detect.yml").write_text("sigma:\n  paths: [sigma]\n")
    warned: list[str] = []
    rules = rule_set((), False, str(tmp_path / "detect.yml"), warned.append)
    assert [r.name for r in rules] == ["Evil"] and rules[0].sigma is not None and warned == []
    assert rule_set((), True, None, warned.append)  # the built-in rules
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.yml").write_text("id: x\n")
    rule_set((str(bad),), False, None, warned.append)
    assert warned and str(bad / "x.yml") in warned[0]  # named, and shipping goes on
    plan = stream_plan(rules)
    assert {r.id for r in plan.supported} | set(plan.unsupported) == {rules[0].id}

"""The detectors' configuration file: Sigma paths (relative to the file) and the selection
options; errors with file:line; the command line over the environment over the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from detectors.cli import main
from detectors.config import load_config
from detectors.loader import RuleErrors
from detectors.sigma.options import SIGMA_PATHS_ENV

RULE = """title: {title}
id: {uid}
status: {status}
level: {level}
tags: [attack.execution]
logsource: {{product: windows, category: process_creation}}
detection:
  sel: {{Image|endswith: '\\\\evil.exe'}}
  condition: sel
"""
HIGH = "11111111-1111-4111-8111-111111111111"
LOW = "22222222-2222-4222-8222-222222222222"


def _rules(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "high.yml").write_text(RULE.format(title="High one", uid=HIGH, status="test", level="high"))
    (folder / "low.yml").write_text(RULE.format(title="Low one", uid=LOW, status="stable", level="low"))
    return folder


def _listed(args: list[str], env: dict[str, str] | None = None) -> set[str]:
    res = CliRunner().invoke(main, ["list", "--no-builtin", "--json", *args], env=env or {})
    assert res.exit_code == 0, res.output
    return {json.loads(line)["name"] for line in res.stdout.splitlines() if line.startswith("{")}


def test_paths_relative_to_the_file_and_selection(tmp_path: Path) -> None:
    _rules(tmp_path / "conf" / "sigma")
    cfg = tmp_path / "conf" / "detect.yml"
    cfg.write_text("sigma:\n  paths: [sigma]\n  level: [high, critical]\n  status: test\n")
    loaded = load_config(cfg).sigma
    assert loaded.paths == (tmp_path / "conf" / "sigma",)
    assert (loaded.levels, loaded.statuses) == (("high", "critical"), ("test",))
    assert _listed(["--config", str(cfg)]) == {"High one"}
    assert _listed([], env={"SYSMON_DETECT_CONFIG": str(cfg)}) == {"High one"}
    # flags win over the file, setting by setting
    assert _listed(["--config", str(cfg), "--sigma-level", "low", "--sigma-status", "stable"]) == {"Low one"}
    cfg.write_text(f"sigma:\n  paths: sigma\n  ids: [{LOW}]\n")
    assert _listed(["--config", str(cfg)]) == {"Low one"}


def test_cli_over_environment_over_file(tmp_path: Path) -> None:
    a, b, c = _rules(tmp_path / "a"), _rules(tmp_path / "b"), tmp_path / "c"
    (b / "high.yml").unlink()
    c.mkdir()
    cfg = tmp_path / "detect.yml"
    cfg.write_text(f"sigma:\n  paths: [{a}]\n")
    assert _listed(["--config", str(cfg)]) == {"High one", "Low one"}
    assert _listed(["--config", str(cfg)], env={SIGMA_PATHS_ENV: str(b)}) == {"Low one"}
    assert _listed(["--config", str(cfg), "--sigma", str(c)], env={SIGMA_PATHS_ENV: str(b)}) == set()


def test_sigma_check_takes_paths_from_the_file(tmp_path: Path) -> None:
    _rules(tmp_path / "sigma")
    cfg = tmp_path / "detect.yml"
    cfg.write_text("sigma:\n  paths: [sigma]\n")
    res = CliRunner().invoke(main, ["sigma", "check", "--config", str(cfg)], env={SIGMA_PATHS_ENV: ""})
    assert res.exit_code == 0, res.output
    assert "summary: 2 rules: 2 run" in res.output


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("sigma:\n  paths: [a]\n  levels: [high]\n", 3, "unknown key 'levels'"),
        ("sigma:\n  level: [high, severe]\n", 2, "'level': 'severe' is not a valid one of"),
        ("sigma:\n  status: [stable]\n  paths: {a: 1}\n", 3, "'paths' must be a list of strings"),
        ("rules: x\n", 1, "unknown key 'rules' in the configuration"),
        ("sigma: [\n", 2, "not valid YAML"),
        ("sigma:\n  exceptions:\n    - values: [{field: a, values: [b]}]\n", 3, "missing required key"),
        ("sigma:\n  exceptions:\n    - rules: all\n", 3, "needs 'allowlists' or 'values'"),
        ("sigma:\n  exceptions:\n    - rules: some\n      values: [{field: a, values: [b]}]\n", 3, "'all'"),
        ("sigma:\n  exceptions:\n    - rules: {level: [high]}\n      values: []\n", 3, "unknown key 'level'"),
        ("sigma:\n  exceptions:\n    - rules: all\n      allowlists: [{feeds: [x]}]\n", 4, "'fields'"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    cfg = tmp_path / "detect.yml"
    cfg.write_text(text)
    with pytest.raises(RuleErrors) as info:
        load_config(cfg)
    assert f"{cfg}:{line}: " in str(info.value) and message in str(info.value), str(info.value)
    res = CliRunner().invoke(main, ["list", "--no-builtin", "--config", str(cfg)])
    assert res.exit_code == 1 and f"{cfg}:{line}:" in res.output


def test_exceptions_attach_to_the_sigma_rules_they_name(tmp_path: Path) -> None:
    from detectors.sigma.config import with_overlays
    from detectors.sigma.loading import load_sigma

    _rules(tmp_path / "sigma")
    cfg = tmp_path / "detect.yml"
    cfg.write_text(
        "sigma:\n  exceptions:\n"
        "    - rules: {levels: [high], tags: [ATTACK.EXECUTION]}\n"
        "      values: [{field: host.name, values: [build01]}]\n"
        f"    - rules: {{ids: [{LOW}]}}\n"
        "      allowlists: [{fields: [process.hash.sha256], feeds: [corp]}]\n"
        "    - rules: all\n"
        "      values: [{field: user.name, values: [svc-scan]}]\n"
    )
    overlays = load_config(cfg).sigma.overlays
    assert [o.where.line for o in overlays] == [3, 5, 7]
    rules = [c.rule for c in load_sigma([tmp_path / "sigma"]) if c.rule is not None]
    got = {r.name: r.exceptions for r in with_overlays(rules, overlays)}
    assert [v.field for v in got["High one"].values] == ["host.name", "user.name"]
    assert got["High one"].allowlists == ()
    assert [v.field for v in got["Low one"].values] == ["user.name"]
    assert [a.feeds for a in got["Low one"].allowlists] == [("corp",)]

"""Loading Sigma rules: folders, files and zips; a broken file is reported with its name and the
others still load; not applicable and cannot-fire rules are classed, not run; selection; the
Lucene rewriting of regular expressions; the ``sigma check`` command."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from detectors.cli import main
from detectors.sigma.loading import load_sigma
from detectors.sigma.lucene import lucene_regex
from detectors.sigma.options import Selection

GOOD = """title: Good
id: 11111111-1111-4111-8111-111111111111
status: test
level: high
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\\\\evil.exe'}
  condition: sel
"""
SECURITY = GOOD.replace("category: process_creation", "service: security").replace("1111-4111", "2222-4222")
NO_FIELD = (
    GOOD.replace("Image|endswith", "CommandLine|contains")
    .replace("category: process_creation", "category: network_connection")
    .replace("1111-4111", "3333-4333")
)
EXPERIMENTAL_LOW = GOOD.replace("status: test", "status: deprecated").replace("1111-4111", "4444-4444")
BROKEN = "title: Broken\nlogsource: [\n"


def _folder(tmp_path: Path) -> Path:
    d = tmp_path / "rules"
    (d / "sub").mkdir(parents=True)
    (d / "good.yml").write_text(GOOD)
    (d / "sub" / "security.yml").write_text(SECURITY)
    (d / "sub" / "no_field.yaml").write_text(NO_FIELD)
    (d / "deprecated.yml").write_text(EXPERIMENTAL_LOW)
    (d / "broken.yml").write_text(BROKEN)
    (d / "notes.txt").write_text("not a rule")
    return d


def test_folder_every_file_in_one_class(tmp_path: Path) -> None:
    got = {Path(c.where.path).name: c for c in load_sigma([_folder(tmp_path)])}
    assert set(got) == {"good.yml", "security.yml", "no_field.yaml", "deprecated.yml", "broken.yml"}
    assert got["good.yml"].outcome == "runs"
    assert got["security.yml"].outcome == "not_applicable"
    assert "service: security" in got["security.yml"].reason
    assert got["no_field.yaml"].outcome == "cannot_fire"
    assert "CommandLine" in got["no_field.yaml"].reason and "3" in got["no_field.yaml"].reason
    assert got["broken.yml"].outcome == "failed"
    rule = got["good.yml"].rule
    assert rule is not None and rule.filter.event_codes == ("1",)
    assert rule.filter.lucene == "process.executable.caseless:*\\\\evil.exe"
    assert rule.severity == "high" and rule.sigma is not None and rule.sigma.status == "test"


def test_zip_names_the_member(tmp_path: Path) -> None:
    z = tmp_path / "sigma_all_rules.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("rules/windows/good.yml", GOOD)
        zf.writestr("rules/windows/broken.yml", BROKEN)
        zf.writestr("README.md", "x")
    got = load_sigma([z])
    assert sorted(c.where.path for c in got) == [
        f"{z}!rules/windows/broken.yml",
        f"{z}!rules/windows/good.yml",
    ]
    assert [c.outcome for c in sorted(got, key=lambda c: c.where.path)] == ["failed", "runs"]


def test_missing_path_and_bad_zip_are_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    got = load_sigma([tmp_path / "nope", bad])
    assert [c.outcome for c in got] == ["failed", "failed"]
    assert "no such file" in got[0].reason


def test_selection_by_status_level_tag_and_id(tmp_path: Path) -> None:
    got = load_sigma([_folder(tmp_path)])
    runs = [c for c in got if c.rule is not None]
    assert {c.sigma_id for c in runs if Selection().keeps(c)} == {"11111111-1111-4111-8111-111111111111"}
    assert {c.status for c in runs if Selection(statuses=("deprecated",)).keeps(c)} == {"deprecated"}
    assert not [c for c in runs if Selection(statuses=(), levels=("low",)).keeps(c)]
    assert (
        len(
            [
                c
                for c in runs
                if Selection(statuses=(), ids=("11111111-1111-4111-8111-111111111111",)).keeps(c)
            ]
        )
        == 1
    )


@pytest.mark.parametrize(
    ("pattern", "ignore_case", "expected"),
    [
        ("abc", False, ".*abc.*"),
        ("^abc$", False, "abc"),
        ("^a|b$", False, "(a.*|.*b)"),
        ("(?:x|y)z", False, ".*(x|y)z.*"),
        (":[^ \\\\]", False, ".*:[^ \\\\].*"),
        ("A\\DB", True, ".*a\\Db.*"),
        ('a"b<c@d', False, '.*a\\"b\\<c\\@d.*'),
    ],
)
def test_lucene_regex(pattern: str, ignore_case: bool, expected: str) -> None:
    assert lucene_regex(pattern, ignore_case=ignore_case) == expected


@pytest.mark.parametrize("pattern", ["a(?=b)", "\\bword", "a^b"])
def test_lucene_regex_refuses_what_lucene_cannot_do(pattern: str) -> None:
    from sigma.exceptions import SigmaFeatureNotSupportedByBackendError

    with pytest.raises(SigmaFeatureNotSupportedByBackendError):
        lucene_regex(pattern, ignore_case=False)


def test_sigma_check_cli_counts_and_json(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    res = CliRunner().invoke(main, ["sigma", "check", str(folder)])
    assert res.exit_code == 1  # one failed
    assert "summary: 5 rules: 2 run, 1 not applicable, 1 cannot fire here, 1 failed" in res.output
    assert "broken.yml" in res.output
    res = CliRunner().invoke(main, ["sigma", "check", "--json", str(folder)])
    lines = [json.loads(line) for line in res.output.splitlines()]
    assert lines[-1]["summary"] == {"runs": 2, "not_applicable": 1, "cannot_fire": 1, "failed": 1, "total": 5}
    assert {line["class"] for line in lines[:-1]} == {"runs", "not_applicable", "cannot_fire", "failed"}


def test_list_with_sigma_shows_the_selected_rules(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["list", "--no-builtin", "--json", "--sigma", str(_folder(tmp_path))])
    rows = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    assert [(r["id"], r["ruleset"]) for r in rows] == [("11111111-1111-4111-8111-111111111111", "sigma")]

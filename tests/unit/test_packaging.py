"""An installed package (not only a source checkout) carries the templates and saved objects."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from shipper.assets import asset_dir

ROOT = Path(__file__).resolve().parents[2]


def test_asset_dirs_resolve_to_the_source_folders() -> None:
    assert asset_dir("mappings").resolve() == (ROOT / "mappings").resolve()
    assert asset_dir("kibana").resolve() == (ROOT / "kibana").resolve()


def test_env_overrides_asset_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SYSMON_MAPPINGS_DIR", str(tmp_path))
    assert asset_dir("mappings") == tmp_path


@pytest.mark.slow
def test_wheel_contains_every_template_and_saved_object(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    [wheel] = list(tmp_path.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, pattern in (("mappings", "*.json"), ("kibana", "*.ndjson")):
        expected = {f"shipper/_assets/{folder}/{p.name}" for p in (ROOT / folder).glob(pattern)}
        assert expected, folder
        assert expected <= names, sorted(expected - names)
    assert "detectors/rules/intel-ip-connection.yml" in names or any(
        n.startswith("detectors/rules/") for n in names
    )

from __future__ import annotations

from click.testing import CliRunner

from detectors.cli import main as detect_main
from shipper import __version__
from shipper.cli import main as ship_main


def test_both_commands_show_version_and_help() -> None:
    runner = CliRunner()
    for cmd, name in ((ship_main, "sysmon-ship"), (detect_main, "sysmon-detect")):
        r = runner.invoke(cmd, ["--version"])
        assert r.exit_code == 0 and name in r.output and __version__ in r.output
        r = runner.invoke(cmd, ["--help"])
        assert r.exit_code == 0 and "Usage:" in r.output

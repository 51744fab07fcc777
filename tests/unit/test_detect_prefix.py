"""One ``--prefix`` for every sysmon-detect command group: the flag, else SYSMON_INDEX_PREFIX,
else ``sysmon``, refused with a message naming where a bad one came from."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from detectors.cli import main


@pytest.mark.parametrize(
    "args",
    [
        ["kibana", "export"],
        ["intel", "list"],
        ["setup"],
    ],
)
def test_a_bad_prefix_is_refused_before_anything_runs(args: list[str]) -> None:
    runner = CliRunner()
    flag = runner.invoke(main, [*args, "--prefix", "Bad Prefix"])
    assert flag.exit_code == 2 and "--prefix" in flag.output and "lower-case" in flag.output
    env = runner.invoke(main, args, env={"SYSMON_INDEX_PREFIX": "UPPER"})
    assert env.exit_code == 2 and "SYSMON_INDEX_PREFIX" in env.output


def test_the_prefix_comes_from_the_flag_the_environment_or_the_default() -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["kibana", "export", "--prefix", "corp"], env={"SYSMON_INDEX_PREFIX": "other"})
    assert out.exit_code == 0 and '"title":"corp-events*"' in out.output.replace(" ", "")
    out = runner.invoke(main, ["kibana", "export"], env={"SYSMON_INDEX_PREFIX": "other"})
    assert out.exit_code == 0 and '"title":"other-events*"' in out.output.replace(" ", "")
    out = runner.invoke(main, ["kibana", "export"], env={"SYSMON_INDEX_PREFIX": ""})
    assert out.exit_code == 0 and '"title":"sysmon-events*"' in out.output.replace(" ", "")

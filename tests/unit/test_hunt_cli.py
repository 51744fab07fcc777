"""``sysmon-detect hunt`` refuses bad input before it connects: the prefix, times, formats and
hashes are checked first, each with a message naming the option."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from detectors.cli import main

NO_CLUSTER = {"ES_URL": "http://127.0.0.1:9", "SYSMON_INDEX_PREFIX": ""}


@pytest.mark.parametrize("args", [["hunt", "stack"], ["hunt", "process", "{X}"], ["hunt", "hash", "ab" * 32]])
def test_a_bad_prefix_is_refused(args: list[str]) -> None:
    r = CliRunner().invoke(main, [*args, "--prefix", "Bad Prefix"], env=NO_CLUSTER)
    assert r.exit_code == 2 and "--prefix" in r.output and "lower-case" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hunt", "stack", "--since", "yesterday"], "neither an ISO date/time"),
        (
            ["hunt", "stack", "--since", "2026-02-01", "--until", "2026-01-01"],
            "--since must be before --until",
        ),
        (["hunt", "stack", "--format", "xml"], "'xml' is not one of 'table', 'csv', 'json'"),
        (["hunt", "stack", "--limit", "0"], "0 is not in the range x>=1"),
        (["hunt", "hash", "not-a-hash"], "'not-a-hash' is not a hash"),
        (["hunt", "hash", "ab" * 32, "--window", "soon"], "is not a duration"),
        (["hunt", "process", "{X}", "--depth", "0"], "--depth"),
        (["hunt", "stack", "--event-code", "1,dns"], "not an event ID: dns"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    r = CliRunner().invoke(main, args, env=NO_CLUSTER)
    assert r.exit_code == 2, r.output
    assert message in r.output


def test_an_unreachable_cluster_is_one_line() -> None:
    r = CliRunner().invoke(main, ["hunt", "stack"], env=NO_CLUSTER)
    assert r.exit_code == 1
    assert r.output.startswith("Error: ") and "Traceback" not in r.output

"""Saved stacks without a cluster: row ids, the document a row becomes, names, CLI refusals."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from click.testing import CliRunner
from elasticsearch import Elasticsearch

from detectors.cli import main
from detectors.hunt.saved import (
    DEFAULT_STACKS,
    SaveResult,
    check_name,
    row_doc,
    row_id,
    run_every,
    save_defaults,
    save_stack,
    window_scope,
)
from detectors.hunt.scope import Scope
from detectors.hunt.stack import StackError, StackRequest, StackRow

FIELDS = ("process.executable", "process.hash.sha256")
ROW = StackRow(
    values=("C:\\x\\a.exe", "ab" * 32),
    count=3,
    hosts=2,
    first_seen="2026-11-20T10:00:00.000Z",
    last_seen="2026-11-20T11:00:00.000Z",
    allow=(),
    intel=("bad-hashes",),
    known=False,
)


def test_row_ids_are_stable_and_tell_stacks_fields_and_values_apart() -> None:
    a = row_id("executables", FIELDS, ROW.values)
    assert a == row_id("executables", list(FIELDS), list(ROW.values))
    others = {
        row_id("cli-exec", FIELDS, ROW.values),
        row_id("executables", tuple(reversed(FIELDS)), tuple(reversed(ROW.values))),
        row_id("executables", FIELDS, ("C:\\x\\a.exe", "cd" * 32)),
        row_id("executables", ("process.executable",), ("C:\\x\\a.exe\x00" + "ab" * 32,)),
    }
    assert a not in others and len(others) == 4
    assert a.startswith("executables:")


def test_row_doc_puts_the_values_at_their_own_paths() -> None:
    scope = Scope(hosts=("WS01",), since=datetime(2026, 11, 1, tzinfo=UTC), event_codes=("1",))
    doc = row_doc("executables", FIELDS, ROW, scope, "2026-12-01T00:00:00.000Z")
    assert doc["process"] == {"executable": "C:\\x\\a.exe", "hash": {"sha256": "ab" * 32}}
    assert doc["stack"] == {
        "name": "executables",
        "fields": list(FIELDS),
        "values": list(ROW.values),
        "count": 3,
        "hosts": 2,
        "first_seen": ROW.first_seen,
        "last_seen": ROW.last_seen,
        "allowlisted": False,
        "intel_listed": True,
        "allowlists": [],
        "intel_feeds": ["bad-hashes"],
        "computed_at": "2026-12-01T00:00:00.000Z",
        "scope": {
            "since": "2026-11-01T00:00:00.000Z",
            "until": None,
            "hosts": ["WS01"],
            "event_codes": ["1"],
        },
    }


def test_every_default_stack_is_mapped_by_the_template() -> None:
    body = json.loads((Path(__file__).resolve().parents[2] / "mappings" / "hunt-stack.json").read_text())
    assert body["index_patterns"] == ["{prefix}-hunt-stack"]
    assert "{prefix}-events-mappings" in body["composed_of"]  # the by-fields keep the events' types
    for s in DEFAULT_STACKS.values():
        check_name(s.name)
        assert s.event_codes and s.fields


@pytest.mark.parametrize("bad", ["", "Exec", "a b", "-x", "a/b", "x" * 65])
def test_bad_stack_names_are_refused(bad: str) -> None:
    with pytest.raises(StackError, match="stack name"):
        check_name(bad)


def test_refusals_before_any_request() -> None:
    es = cast(Elasticsearch, None)  # never touched: each refusal comes first
    with pytest.raises(StackError, match="no such stack: nope"):
        save_defaults(es, "sysmon", ("executables", "nope"), Scope())
    with pytest.raises(StackError, match=r"stack\.\* fields"):
        save_stack(es, "sysmon", "x", StackRequest(fields=("stack.count",)))


@pytest.mark.parametrize("extra", [["--unknown"], ["--limit", "5"], ["--no-lookups"]])
def test_cli_save_refuses_filters(extra: list[str]) -> None:
    env: dict[str, Any] = {"ES_URL": "http://127.0.0.1:9"}  # never reached
    res = CliRunner().invoke(main, ["hunt", "stack", *extra, "--save", "x"], env=env)
    assert res.exit_code == 2 and "--save stores every row" in res.output


def _result(name: str) -> SaveResult:
    return SaveResult(name, rows=2, allowlisted=1, intel=0, removed=0, computed_at="2026-12-01T00:00:00.000Z")


def test_a_service_round_that_fails_is_logged_and_the_next_one_runs() -> None:
    stop, calls, lines = threading.Event(), [], list[str]()

    def save() -> list[SaveResult]:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("cluster down")
        if len(calls) == 3:
            stop.set()
        return [_result("domains")]

    assert run_every(save, 0.0, stop, lines.append) == 3
    assert lines[0] == "saved: failed: ConnectionError: cluster down"
    assert lines[1:] == [_result("domains").line()] * 2
    assert lines[1] == "saved: stack=domains rows=2 allowlisted=1 unknown=1 intel=0 removed=0"


def test_window_counts_back_from_each_save() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    scope = Scope(hosts=("WS01",))
    assert window_scope(scope, None, now) is scope
    assert window_scope(scope, 86_400, now) == Scope(
        hosts=("WS01",), since=datetime(2026, 11, 30, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--window", "7d", "--since", "24h"], 2, "--window counts back from each save"),
        (["nope", "--every", "1h"], 1, "no such stack: nope"),
        (["--every", "soon"], 2, "Invalid value for '--every'"),
    ],
)
def test_cli_save_refusals(args: list[str], code: int, message: str) -> None:
    res = CliRunner().invoke(main, ["hunt", "save", *args], env={"ES_URL": "http://127.0.0.1:9"})
    assert res.exit_code == code and message in res.output, res.output

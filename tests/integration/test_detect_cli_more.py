"""More of ``sysmon-detect`` against the real node: ``list`` shows every built-in rule, plain
``run`` runs only due rules, ``run`` exits 1 when a rule fails at run time while the others run,
``status`` shows last run, next run and last error, and the daemon (a subprocess) logs one line
(or JSON object) per run and exits 0 on SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from elasticsearch import Elasticsearch

from detectors.cli import main
from detectors.loader import format_duration
from detectors.state import StateStore, parse_time
from shipper.es import ClusterSettings
from tests.integration.test_detect_support import builtin_rules, cli_env, index_docs, now_iso, proc_event

RULE = """\
id: {id}
name: CLI test rule {id}
description: test
type: query
severity: low
risk_score: 10
interval: {interval}
threat:
  - tactic: {{id: TA0005, name: Defense Evasion}}
    techniques: [{{id: T1055, name: Process Injection}}]
filter:
  event_codes: [25]
"""
BROKEN_LUCENE = '  lucene: "process.name:(unclosed"\n'


def _rules_dir(tmp_path: Path, rules: dict[str, str]) -> Path:
    d = tmp_path / "rules"
    d.mkdir()
    for name, text in rules.items():
        (d / f"{name}.yml").write_text(text)
    return d


def _tamper(entity: str) -> dict[str, Any]:
    return proc_event("WS31", now_iso(), entity, None, "C:\\Windows\\System32\\dllhost.exe", code="25")


def _results(output: str) -> dict[str, dict[str, Any]]:
    """``rule`` → the JSON line of its run (the last line is the summary)."""
    out = {}
    for line in output.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            if "summary" not in d:
                out[d["rule"]] = d
    return out


def test_list_shows_every_builtin_rule() -> None:
    cli = CliRunner()
    r = cli.invoke(main, ["list"], env={"SYSMON_RULES_DIRS": ""})
    assert r.exit_code == 0, r.output
    lines = {ln.split()[0]: ln for ln in r.stdout.splitlines() if ln.strip()}
    rules = builtin_rules()
    assert len(rules) >= 12 and set(lines) == {x.id for x in rules}
    for rule in rules:
        cols = lines[rule.id].split()
        assert cols[1:5] == [rule.type, rule.severity, "every", format_duration(rule.interval)], cols
        assert cols[5].split(",") == list(dict.fromkeys(rule.technique_ids)), cols
    assert f"{len(rules)} rules, 0 errors" in r.stderr

    r = cli.invoke(main, ["list", "--json"], env={"SYSMON_RULES_DIRS": ""})
    assert r.exit_code == 0
    rows = {d["id"]: d for d in map(json.loads, r.stdout.splitlines())}
    assert set(rows) == {x.id for x in rules}
    for rule in rules:
        row = rows[rule.id]
        assert (row["type"], row["severity"], row["interval"]) == (
            rule.type,
            rule.severity,
            format_duration(rule.interval),
        )
        assert row["techniques"] == list(rule.technique_ids) and row["techniques"]


def test_plain_run_runs_only_due_rules(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path
) -> None:
    env = cli_env(es_settings, prefix)
    d = _rules_dir(
        tmp_path,
        {
            "hourly": RULE.format(id="cli-hourly", interval="1h"),
            "often": RULE.format(id="cli-often", interval="1m"),
        },
    )
    args = ["run", "--json", "--ingest-delay", "0", "--no-builtin", "--rules-dir", str(d)]
    cli = CliRunner()
    index_docs(es, prefix, [_tamper("{R-1}")])
    r = cli.invoke(main, args, env=env)
    assert r.exit_code == 0, r.output
    res = _results(r.output)
    assert {k: (v["status"], v["alerts"]) for k, v in res.items()} == {
        "cli-hourly": ("ok", 1),
        "cli-often": ("ok", 1),
    }
    store = StateStore(es, prefix)
    runs = {rid: store.get(rid).runs for rid in res}
    assert runs == {"cli-hourly": 1, "cli-often": 1}

    # at once again: nothing is due, nothing runs
    r = cli.invoke(main, args, env=env)
    assert r.exit_code == 0, r.output
    res = _results(r.output)
    assert {k: (v["status"], v["error"]) for k, v in res.items()} == {
        "cli-hourly": ("skipped", "not due"),
        "cli-often": ("skipped", "not due"),
    }
    assert {rid: store.get(rid).runs for rid in res} == runs

    # two minutes later (the state says so): only the 1-minute rule is due
    st = store.get("cli-often")
    assert st.last_run is not None
    store.put(replace(st, last_run=st.last_run - timedelta(minutes=2)))
    r = cli.invoke(main, args, env=env)
    assert r.exit_code == 0, r.output
    res = _results(r.output)
    assert (res["cli-often"]["status"], res["cli-hourly"]["status"]) == ("ok", "skipped")
    assert (store.get("cli-often").runs, store.get("cli-hourly").runs) == (2, 1)


def test_run_exits_1_on_a_run_time_failure_others_still_run_and_status_shows_it(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path
) -> None:
    env = cli_env(es_settings, prefix)
    d = _rules_dir(
        tmp_path,
        {
            "a_broken": RULE.format(id="cli-broken", interval="1h") + BROKEN_LUCENE,
            "b_good": RULE.format(id="cli-good", interval="1h"),
            "c_never": RULE.format(id="cli-never", interval="5m"),
        },
    )
    index_docs(es, prefix, [_tamper("{F-1}"), _tamper("{F-2}")])
    cli = CliRunner()
    before = datetime.now(UTC).replace(microsecond=0)
    r = cli.invoke(
        main,
        ["run", "--ingest-delay", "0", "--no-builtin", "--rules-dir", str(d),
         "--rule", "cli-broken", "--rule", "cli-good"],
        env=env,
    )  # fmt: skip
    assert r.exit_code == 1, r.output
    where = f"{d / 'a_broken.yml'}:13"
    broken = next(ln for ln in r.output.splitlines() if ln.startswith("rule cli-broken:"))
    assert (
        broken.startswith("rule cli-broken: failed") and f"error: {where}: Elasticsearch HTTP 400" in broken
    )
    good = next(ln for ln in r.output.splitlines() if ln.startswith("rule cli-good:"))
    assert good.startswith("rule cli-good: ok") and " hits=2 alerts=2 " in good
    assert r.output.index(broken) < r.output.index(good)  # it ran after the failure
    assert (
        "summary: rules=2 failed=1 locked=0 rule_errors=0 hits=2 alerts=2" in r.output
    )  # loaded fine: failed at run

    r = cli.invoke(main, ["status", "--no-builtin", "--rules-dir", str(d)], env=env)
    assert r.exit_code == 0, r.output
    lines = {ln.split()[0]: ln for ln in r.output.splitlines()}
    r = cli.invoke(main, ["status", "--json", "--no-builtin", "--rules-dir", str(d)], env=env)
    assert r.exit_code == 0, r.output
    rows = {x["rule"]: x for x in map(json.loads, r.output.splitlines())}
    assert set(rows) == set(lines) == {"cli-broken", "cli-good", "cli-never"}
    for rid in ("cli-broken", "cli-good"):
        row = rows[rid]
        last = parse_time(row["last_run"])
        assert last is not None and before <= last <= datetime.now(UTC)
        assert row["next_run"] == (last + timedelta(hours=1)).isoformat(timespec="seconds")
        assert f"last={row['last_run']}" in lines[rid] and f"next={row['next_run']}" in lines[rid]
    rid = "cli-broken"
    assert rows[rid]["status"] == "failed" and lines[rid].split()[1] == "failed"
    assert rows[rid]["last_error"].startswith(f"{where}: Elasticsearch HTTP 400")
    assert f"error: {where}: Elasticsearch HTTP 400" in lines[rid]
    assert rows["cli-broken"]["checkpoint"] is None  # a failed first run sets none
    assert (rows["cli-good"]["status"], rows["cli-good"]["alerts"], rows["cli-good"]["last_error"]) == (
        "ok",
        2,
        None,
    )
    assert rows["cli-good"]["checkpoint"] and "error:" not in lines["cli-good"]
    assert (rows["cli-never"]["status"], rows["cli-never"]["last_run"], rows["cli-never"]["next_run"]) == (
        "never",
        None,
        "now",
    )
    assert re.search(r"cli-never\s+never\s+last=-\s+next=now", lines["cli-never"])


def _read_lines(stream: Any, out: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):
        out.put(line)
    out.put("")  # EOF


@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
def test_daemon_logs_each_run_and_exits_0_on_sigterm(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path, as_json: bool
) -> None:
    d = _rules_dir(tmp_path, {"fast": RULE.format(id="cli-fast", interval="2s")})
    index_docs(es, prefix, [_tamper("{D-1}")])
    env = {**os.environ, **cli_env(es_settings, prefix)}
    cmd = [sys.executable, "-c", "from detectors.cli import main; main()", "daemon", "--ingest-delay", "0",
           "--no-builtin", "--rules-dir", str(d), *(["--json"] if as_json else [])]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None and proc.stderr is not None
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    got: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while len(got) < 2 and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if not line:
                break
            got.append(line.rstrip("\n"))
        assert len(got) >= 2, (got, proc.poll())
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    while True:
        line = lines.get(timeout=10)
        if not line:
            break
        got.append(line.rstrip("\n"))
    stderr = proc.stderr.read()
    assert rc == 0, stderr
    assert "daemon: 1 rules scheduled" in stderr and "daemon: stopped" in stderr
    # one line per run, as many as the state counted
    assert len(got) == StateStore(es, prefix).get("cli-fast").runs >= 2
    if as_json:
        runs = [json.loads(x) for x in got]
        for run in runs:
            assert run["rule"] == "cli-fast" and run["status"] == "ok"
            assert run["window"]["end"] and isinstance(run["duration"], float)
            assert {"hits", "alerts", "duplicates"} <= set(run)
        assert runs[0]["alerts"] == 1 and runs[0]["window"]["start"] is None
        assert [r["alerts"] for r in runs[1:]] == [0] * (len(runs) - 1)
        assert runs[1]["window"]["start"] is not None
    else:
        pat = re.compile(
            r"^rule cli-fast: ok window \[\S+, \S+\) hits=\d+ alerts=(\d+) updated=0 duplicates=\d+ "
            r"suppressed=0 duration=\d+\.\d\ds$"
        )
        matches = [pat.match(x) for x in got]
        assert all(matches), got
        assert [int(m.group(1)) for m in matches if m] == [1] + [0] * (len(got) - 1)
        assert got[0].startswith("rule cli-fast: ok window [-∞, ")

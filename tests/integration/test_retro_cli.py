"""Who runs the retro-hunt: ``intel load`` right after its load, else the next scheduled
``run`` (not a hand-picked ``run --rule``), or the daemon at start; on the real node."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from elasticsearch import Elasticsearch

from detectors.cli import main
from detectors.intel.indices import setup_intel
from detectors.intel.loader import feed_from_location, load_feed
from detectors.retro import RetroHunter, pending_hunts
from detectors.scheduler import Daemon
from shipper.es import ClusterSettings
from tests.integration.test_detect_support import (
    builtin_rules,
    cli_env,
    count_alerts,
    index_docs,
    make_engine,
    proc_event,
    ts_ago,
)

SHA_A, SHA_B, SHA_C = "a1" * 32, "b2" * 32, "c3" * 32


def _exe(entity: str, sha256: str, days: float = 12) -> dict[str, object]:
    """A process start ``days`` ago, shipped ten minutes ago (out of every later run's overlap)."""
    doc = proc_event(
        "WS40", ts_ago(days), entity, None, "C:\\x\\t.exe", extra={"process.hash.sha256": sha256}
    )
    doc["event"]["ingested"] = ts_ago(0, -600)
    return doc


def _feed(tmp_path: Path, name: str, *values: str) -> str:
    path = tmp_path / f"{name}.txt"
    path.write_text("".join(f"{v}\n" for v in values), encoding="utf-8")
    return str(path)


def _summary(output: str) -> dict[str, str]:
    line = next(x for x in output.splitlines() if x.startswith("summary: "))
    return dict(re.findall(r"(\w+)=(\S+)", line))


def test_intel_load_hunts_then_run_hunts_what_was_left(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path
) -> None:
    env = cli_env(es_settings, prefix)
    cli = CliRunner()
    assert cli.invoke(main, ["setup"], env=env).exit_code == 0
    index_docs(es, prefix, [_exe("{L-1}", SHA_A), _exe("{L-2}", SHA_B)], stamp=False)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    rule_run = ["run", "--rule", "intel-hash-executed", "--ingest-delay", "0", "--json"]
    r = cli.invoke(main, rule_run, env=env)  # the scheduled rule has seen the events: no intel yet
    assert r.exit_code == 0 and json.loads(r.stdout.splitlines()[0])["hits"] == 0, r.output

    r = cli.invoke(main, ["intel", "load", "--file", _feed(tmp_path, "first", SHA_A), *cache], env=env)
    assert r.exit_code == 0, r.output
    assert "retro-hunt feed=first generation=1 indicators=1 status=done" in r.output
    got = _summary(r.output)
    assert (got["added"], got["hunts"], got["hunts_failed"], got["hunt_alerts"]) == ("1", "1", "0", "1")
    assert count_alerts(es, prefix, "intel-hash-executed") == 1

    args = ["intel", "load", "--file", _feed(tmp_path, "second", SHA_B), "--no-hunt", "--retro-window", "30d"]
    r = cli.invoke(main, [*args, *cache], env=env)
    assert r.exit_code == 0, r.output
    assert "retro-hunt" not in r.output and "hunts=" not in r.output
    [p] = pending_hunts(es, prefix)
    assert (p.feed, p.window) == ("second", timedelta(days=30))
    listed = cli.invoke(main, ["intel", "list"], env=env).output.splitlines()
    assert "\thunts_pending=1\t" in next(x for x in listed if x.startswith("second\t"))
    assert "\thunts_pending=0\t" in next(x for x in listed if x.startswith("first\t"))

    # a hand-picked rule run leaves the queue alone; the next scheduled run hunts it first
    r = cli.invoke(main, rule_run, env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.splitlines()[0])["alerts"] == 0
    assert "retro_hunt" not in r.stdout and len(pending_hunts(es, prefix)) == 1
    r = cli.invoke(main, ["run", "--all", "--ingest-delay", "0", "--json"], env=env)
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    hunt = lines[0]["retro_hunt"]
    assert (hunt["feed"], hunt["status"], hunt["alerts"]) == ("second", "done", 1), hunt
    assert (lines[-1]["summary"]["hunts"], lines[-1]["summary"]["hunt_alerts"]) == (1, 1)
    assert pending_hunts(es, prefix) == []
    assert count_alerts(es, prefix, "intel-hash-executed") == 2

    r = cli.invoke(
        main, ["intel", "load", "--file", _feed(tmp_path, "bad", SHA_C), "--retro-window", "soon"], env=env
    )
    assert r.exit_code != 0 and "--retro-window" in r.output


def test_daemon_hunts_at_start(es: Elasticsearch, prefix: str, tmp_path: Path) -> None:
    rules = [r for r in builtin_rules() if r.id == "intel-hash-executed"]
    engine = make_engine(es, prefix, rules)
    index_docs(es, prefix, [_exe("{D-1}", SHA_C, days=3)], stamp=False)
    setup_intel(es, prefix)
    path = _feed(tmp_path, "daemon", SHA_C)
    assert load_feed(es, feed_from_location(path), prefix=prefix, cache_dir=tmp_path / "c").added == 1
    hunts: list[object] = []
    out = io.StringIO()
    daemon = Daemon(
        engine, rules, out=out, tick=0.01, hunter=lambda: hunts.extend(RetroHunter(es, prefix, rules).run())
    )
    daemon.run(max_loops=1)
    assert len(hunts) == 1 and pending_hunts(es, prefix) == []
    assert count_alerts(es, prefix, "intel-hash-executed") == 1
    assert "alerts=0 " in out.getvalue()  # the rule's own first run finds it already alerted


def test_run_goes_on_to_the_rules_when_the_retro_hunt_fails(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = cli_env(es_settings, prefix)
    cli = CliRunner()
    assert cli.invoke(main, ["setup"], env=env).exit_code == 0

    def broken(*_a: object, **_k: object) -> list[object]:
        raise ConnectionError("state index unreachable")

    monkeypatch.setattr("detectors.commands.hunt_now", broken)
    r = cli.invoke(main, ["run", "--all", "--ingest-delay", "0", "--json"], env=env)
    assert r.exit_code == 1, r.output  # the failed hunt is reported in the exit status
    assert "retro-hunt: failed: ConnectionError: state index unreachable" in r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    ran = [x for x in lines if "rule" in x]
    assert ran and all(x["status"] == "ok" for x in ran)  # every rule still ran
    assert lines[-1]["summary"]["hunts_failed"] == 1

"""``sysmon-detect`` detector commands against the real node: setup, validate, run (a file-hash
intel rule on hand-made events 15/29), status, alerts ack/close, and the daemon stopping on
SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from elasticsearch import Elasticsearch

from detectors.cli import main
from detectors.commands import EXIT_LOCKED
from detectors.intel.indices import setup_intel
from detectors.intel.loader import feed_from_location, load_feed
from detectors.state import StateStore
from shipper.es import ClusterSettings
from tests.integration.test_detect_support import (
    alerts,
    builtin_rules,
    cli_env,
    index_docs,
    now_iso,
    proc_event,
)

BAD = "ab" * 32


def test_cli_setup_validate_run_status_triage(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path
) -> None:
    env = cli_env(es_settings, prefix)
    cli = CliRunner()
    r = cli.invoke(main, ["setup"], env=env)
    assert r.exit_code == 0, r.output
    assert f"index template {prefix}-alerts: installed" in r.output
    assert f"index template {prefix}-hunt-stack: installed" in r.output
    setup_intel(es, prefix)
    feed = tmp_path / "hashes.txt"
    feed.write_text(f"{BAD}\n")
    assert (
        load_feed(
            es, feed_from_location(str(feed), name="hashes"), prefix=prefix, cache_dir=tmp_path / "c"
        ).status
        == "loaded"
    )
    es.indices.refresh(index=f"{prefix}-intel-*")
    ts = now_iso()
    docs = [
        proc_event("WS05", ts, "{F-1}", None, "C:\\x\\dl.exe", code="29",
                   extra={"file.path": "C:\\t\\evil.exe", "file.hash.sha256": BAD}),
        proc_event("WS05", ts, "{F-1}", None, "C:\\x\\dl.exe", code="15",
                   extra={"file.path": "C:\\t\\a.txt:Zone.Identifier", "file.hash.sha256": "cd" * 32}),
    ]  # fmt: skip
    index_docs(es, prefix, docs)

    r = cli.invoke(main, ["validate", "--cluster"], env=env)
    assert r.exit_code == 0, r.output
    assert f"validated {len(builtin_rules())} rules against the cluster: 0 errors" in r.output

    r = cli.invoke(main, ["run", "--rule", "intel-hash-file", "--ingest-delay", "0", "--json"], env=env)
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in r.stdout.splitlines()]  # JSON only on stdout
    assert lines[0]["alerts"] == 1
    summary = lines[-1]["summary"]
    assert (summary["rules"], summary["failed"], summary["locked"], summary["alerts"]) == (1, 0, 0, 1)
    # another scheduler holds the lease: the rule is locked and cron gets a distinct exit code
    assert StateStore(es, prefix).acquire("intel-hash-file", "other-host:1", 600.0)
    r = cli.invoke(main, ["run", "--rule", "intel-hash-file", "--ingest-delay", "0", "--json"], env=env)
    assert r.exit_code == EXIT_LOCKED == 75, r.output
    assert json.loads(r.stdout.splitlines()[0])["status"] == "locked"
    assert json.loads(r.stdout.splitlines()[-1])["summary"]["locked"] == 1
    StateStore(es, prefix).release("intel-hash-file", "other-host:1")
    got = alerts(es, prefix, "intel-hash-file")
    assert len(got) == 1 and got[0]["file"]["hash"]["sha256"] == BAD
    assert got[0]["threat"]["enrichments"][0]["matched"]["atomic"] == BAD

    r = cli.invoke(main, ["status"], env=env)
    assert r.exit_code == 0 and "intel-hash-file" in r.output and " ok " in r.output

    aid = got[0]["_id"]
    r = cli.invoke(main, ["alerts", "ack", aid], env=env)
    assert r.exit_code == 0 and "open → acknowledged" in r.output, r.output
    r = cli.invoke(main, ["alerts", "close", aid, "--reason", "test"], env=env)
    assert r.exit_code == 0 and "acknowledged → closed" in r.output
    r = cli.invoke(main, ["alerts", "close", "no-such-id"], env=env)
    assert r.exit_code == 1

    bad_dir = tmp_path / "rules"
    bad_dir.mkdir()
    (bad_dir / "broken.yml").write_text("id: x\nname: [\n")
    r = cli.invoke(main, ["run", "--all", "--ingest-delay", "0", "--rules-dir", str(bad_dir)], env=env)
    assert r.exit_code == 1 and f"{bad_dir / 'broken.yml'}:" in r.output
    assert "failed=0" in r.output  # every valid rule ran


def test_daemon_stops_cleanly_on_sigterm(es_settings: ClusterSettings, prefix: str) -> None:
    env = {**os.environ, **cli_env(es_settings, prefix)}
    rules = str(Path(__file__).resolve().parents[2] / "detectors" / "rules")
    cmd = [sys.executable, "-c", "from detectors.cli import main; main()", "daemon", "--json",
           "--ingest-delay", "0", "--no-builtin", "--rules-dir", rules]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert '"status":"ok"' in first, first
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0
    assert proc.stderr is not None and "daemon: stopped" in proc.stderr.read()

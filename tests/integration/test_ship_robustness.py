"""Crashes, outages, concurrent shippers, rejected documents and watch mode — exact counts."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from shipper.es import ClusterSettings
from tests.shipping import EVENTS, SHIP, Proxy, acked, count, generate_day, run, ship_args, wait_for
from tests.shipping import env_for as _env


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_day(tmp_path_factory.mktemp("day"))


@pytest.fixture
def ready(prefix: str, es_settings: ClusterSettings) -> str:
    run([*SHIP, "setup", "--index-prefix", prefix], es_settings.url)
    return prefix


def test_sigkill_halfway_then_rerun_gives_exact_counts(
    es: Elasticsearch, es_settings: ClusterSettings, ready: str, day: Path, tmp_path: Path
) -> None:
    host, port = es_settings.url.split("//")[1].split(":")
    proxy = Proxy((host, int(port.rstrip("/"))))
    proxy.up()
    # a slow link (20 ms per 64 KiB): the run takes seconds, so the kill lands mid-run however
    # fast the shipper maps
    proxy.delay = 0.02
    state = tmp_path / "state"
    args = [*ship_args(ready, state, str(day)), "--bulk-docs", "300", "--in-flight", "2"]
    url = f"http://127.0.0.1:{proxy.port}"
    proc = subprocess.Popen(args, env=_env(url), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: acked(state) > 0 or proc.poll() is not None)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proxy.down()
    assert proc.returncode == -signal.SIGKILL
    resume_at = acked(state)
    assert 0 < count(es, ready) < EVENTS
    second = json.loads(run(args, es_settings.url).stdout)
    assert second["resumed_sources"] == 1
    # the rerun starts after the acknowledged part; whatever was in flight comes back as 409
    assert second["documents"] == EVENTS - resume_at
    assert second["shipped"] + second["duplicates"] == EVENTS - resume_at
    assert count(es, ready) == EVENTS


def test_node_unavailable_halfway_retries_and_completes(
    es: Elasticsearch, es_settings: ClusterSettings, ready: str, day: Path, tmp_path: Path
) -> None:
    host, port = es_settings.url.split("//")[1].split(":")
    proxy = Proxy((host, int(port.rstrip("/"))))
    proxy.up()
    # down for 4 s once ~2 MB of the run's requests are through: mid-run however fast it goes
    proxy.trip(after_bytes=2_000_000, outage=4.0)
    state = tmp_path / "state"
    url = f"http://127.0.0.1:{proxy.port}"
    args = [*ship_args(ready, state, str(day)), "--bulk-docs", "300", "--max-retries", "12"]
    proc = subprocess.Popen(args, env=_env(url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
        proxy.down()
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert proxy.outages == 1
    assert summary["retries"] > 0
    assert summary["shipped"] + summary["duplicates"] == EVENTS
    assert count(es, ready) == EVENTS


def test_two_shippers_on_the_same_file_at_once(
    es: Elasticsearch, es_settings: ClusterSettings, ready: str, day: Path, tmp_path: Path
) -> None:
    procs = [
        subprocess.Popen(
            [*ship_args(ready, tmp_path / f"state{i}", str(day)), "--bulk-docs", "500"],
            env=_env(es_settings.url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    summaries = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        summaries.append(json.loads(out))
    assert sum(s["shipped"] for s in summaries) == EVENTS
    assert sum(s["shipped"] + s["duplicates"] for s in summaries) == 2 * EVENTS
    assert count(es, ready) == EVENTS


def test_rejected_documents_go_to_the_dead_letter_file(
    es: Elasticsearch, es_settings: ClusterSettings, ready: str, day: Path, tmp_path: Path
) -> None:
    """An index created by hand with a conflicting type for dns.question.name rejects every DNS
    event: they land in the dead-letter file with the reason; everything else is shipped."""
    first = json.loads(day.open().readline())
    month = first["@timestamp"][:7].replace("-", ".")
    es.indices.create(
        index=f"{ready}-events-{month}",
        mappings={
            "properties": {"dns": {"properties": {"question": {"properties": {"name": {"type": "long"}}}}}}
        },
    )
    dead = tmp_path / "dead.ndjson"
    proc = run(
        [*ship_args(ready, tmp_path / "state", str(day)), "--dead-letter", str(dead)],
        es_settings.url,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    summary = json.loads(proc.stdout)
    lines = [json.loads(line) for line in dead.read_text().splitlines()]
    assert stat.S_IMODE(dead.stat().st_mode) == 0o600  # whole events: for the shipper's user only
    dns_events = int(summary["pipeline"]["sysmon_by_id"]["22"])
    assert dns_events > 0
    assert summary["dead_lettered"] == len(lines) == dns_events
    assert all(line["error"]["type"] == "document_parsing_exception" for line in lines)
    assert all("dns.question.name" in line["error"]["reason"] for line in lines)
    assert all(line["document"]["event"]["code"] == "22" for line in lines)
    # where it was going, under which _id, as sent (event.ingested stamped)
    assert {line["index"] for line in lines} == {f"{ready}-events-{month}"}
    assert len({line["_id"] for line in lines}) == len(lines)
    assert all(line["document"]["event"]["ingested"].endswith("Z") for line in lines)
    assert all(line["document"]["@timestamp"].startswith(first["@timestamp"][:7]) for line in lines)
    assert summary["shipped"] == EVENTS - dns_events
    assert count(es, ready) == EVENTS - dns_events
    assert "rejected by the cluster" in proc.stderr


@pytest.fixture
def watcher(ready: str, es_settings: ClusterSettings, tmp_path: Path) -> Iterator[dict[str, Any]]:
    folder = tmp_path / "watched"
    folder.mkdir()
    state = tmp_path / "state"
    args = [
        *SHIP,
        "watch",
        str(folder),
        "--index-prefix",
        ready,
        "--state-dir",
        str(state),
        "--json",
        "--poll-interval",
        "0.2",
        "--flush-interval",
        "0.2",
    ]
    proc = subprocess.Popen(
        args, env=_env(es_settings.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    info: dict[str, Any] = {"proc": proc, "folder": folder, "state": state}
    yield info
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_watch_follows_growing_and_rotated_files_and_flushes_on_sigterm(
    es: Elasticsearch, ready: str, day: Path, watcher: dict[str, Any]
) -> None:
    lines = day.read_bytes().splitlines(keepends=True)[:3000]
    folder: Path = watcher["folder"]
    log = folder / "sysmon.ndjson"
    with open(log, "wb") as fh:
        fh.writelines(lines[:1000])
        fh.write(lines[1000][:50])  # a line still being written
        fh.flush()
        wait_for(lambda: count(es, ready) == 1000, timeout=60)
        fh.write(lines[1000][50:])
        fh.writelines(lines[1001:2000])
    wait_for(lambda: count(es, ready) == 2000, timeout=60)
    # rotation: the old file moves away, a new one (new inode) takes its name
    os.rename(log, folder / "sysmon.ndjson.1")
    with open(log, "wb") as fh:
        fh.writelines(lines[2000:3000])
    wait_for(lambda: count(es, ready) == 3000, timeout=60)
    proc = watcher["proc"]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["interrupted"] is True
    assert summary["dead_lettered"] == 0
    assert summary["duplicates"] == 0
    assert summary["errors"] == 0  # the half-written line was never shipped as an error
    assert count(es, ready) == 3000
    # SIGTERM saved the live file's checkpoint with every record acknowledged. The rotated copy
    # (sysmon.ndjson.1) is followed under its new name, not read again; its checkpoint is the
    # one copied at the rename, which may be behind — but never past its records.
    per_path = {}
    for f in (watcher["state"] / "checkpoints").glob("*.json"):
        if not f.name.startswith("."):
            cp = json.loads(f.read_text())
            per_path[Path(cp["path"]).name] = cp["acked"]
    assert per_path["sysmon.ndjson"] == 1000
    assert per_path.get("sysmon.ndjson.1", 0) <= 2000

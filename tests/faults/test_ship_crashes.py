"""The shipper under crashes and a misbehaving node: SIGKILL loops (one process and two workers),
a node that goes away and comes back, a node that freezes mid-request, two shippers at once.
Every probe ends at exactly the right count: nothing lost, nothing duplicated."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from shipper.es import ClusterSettings
from tests.shipping import EVENTS, Proxy, acked, count, env_for, run, ship_args, wait_for

SEED = 20261204


def _node_address(settings: ClusterSettings) -> tuple[str, int]:
    host, port = settings.url.split("//")[1].split(":")
    return host, int(port.rstrip("/"))


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_loop_at_random_moments_ends_exact(
    es: Elasticsearch, es_settings: ClusterSettings, ready: str, day: Path, tmp_path: Path, workers: int
) -> None:
    rng = random.Random(SEED + workers)
    state = tmp_path / "state"
    args = [*ship_args(ready, state, str(day)), "--bulk-docs", "200", "--in-flight", "2"]
    args += ["--workers", str(workers)]
    kills = 0
    for round_ in range(5):
        before = acked(state)
        if before >= EVENTS:
            break
        proc = subprocess.Popen(
            args, env=env_for(es_settings.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        # kill after a random amount of new progress, or at once (before any acknowledgement)
        target = before + rng.choice([0, rng.randint(1, 4000)])
        deadline = time.monotonic() + 240
        while acked(state) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is None:
            time.sleep(rng.random() * 0.3)
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
        assert acked(state) >= before, f"seed {SEED + workers}, round {round_}: checkpoint went back"
        assert count(es, ready) >= acked(state), f"seed {SEED + workers}: checkpoint ahead of the cluster"
    assert kills >= 1, f"seed {SEED + workers}: no round was killed"
    final = json.loads(run(args, es_settings.url).stdout)
    assert final["errors"] == 0 and final["dead_lettered"] == 0
    assert count(es, ready) == EVENTS, f"seed {SEED + workers}, {kills} kills"
    assert acked(state) == EVENTS


def test_node_outage_of_several_seconds_retries_and_completes(
    es: Elasticsearch, es_settings: ClusterSettings, ready: str, day: Path, tmp_path: Path
) -> None:
    proxy = Proxy(_node_address(es_settings))
    proxy.up()
    proxy.trip(after_bytes=2_000_000, outage=3.0)
    state = tmp_path / "state"
    args = [*ship_args(ready, state, str(day)), "--bulk-docs", "300", "--max-retries", "12"]
    proc = subprocess.Popen(
        args,
        env=env_for(f"http://127.0.0.1:{proxy.port}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: proxy.outages == 1 or proc.poll() is not None)
        proxy.trip(after_bytes=2_000_000, outage=3.0)  # a second outage once it is back
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
        proxy.down()
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert proxy.outages == 2
    assert summary["retries"] > 0
    assert summary["shipped"] + summary["duplicates"] == EVENTS
    assert count(es, ready) == EVENTS


def test_frozen_node_times_out_retries_and_completes(
    es: Elasticsearch, es_settings: ClusterSettings, ready: str, day: Path, tmp_path: Path
) -> None:
    """The node stops answering with connections open, longer than the request timeout; the
    shipper times out, retries and ends exact once it thaws."""
    proxy = Proxy(_node_address(es_settings))
    proxy.up()
    proxy.trip(after_bytes=2_000_000, outage=6.0, freeze=True)  # three request timeouts
    state = tmp_path / "state"
    config = tmp_path / "shipper.yml"
    config.write_text("cluster:\n  request_timeout: 2\n")
    args = [*ship_args(ready, state, str(day)), "--bulk-docs", "300", "--max-retries", "12"]
    args += ["--config", str(config)]
    proc = subprocess.Popen(
        args,
        env=env_for(f"http://127.0.0.1:{proxy.port}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        proxy.thawed.set()
        if proc.poll() is None:
            proc.kill()
        proxy.down()
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert proxy.outages == 1
    assert summary["retries"] > 0
    assert summary["shipped"] + summary["duplicates"] == EVENTS
    assert count(es, ready) == EVENTS


def test_two_shippers_sharing_one_state_dir_end_exact(
    es: Elasticsearch, es_settings: ClusterSettings, ready: str, day: Path, tmp_path: Path
) -> None:
    """Two shippers started at once on the same file and the same state directory (a cron job
    overlapping a manual run): the cluster ends with each event once."""
    state = tmp_path / "state"
    args = [*ship_args(ready, state, str(day)), "--bulk-docs", "500"]
    procs = [
        subprocess.Popen(
            args, env=env_for(es_settings.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    assert count(es, ready) == EVENTS
    again = json.loads(run(args, es_settings.url).stdout)
    assert again["shipped"] == 0
    assert count(es, ready) == EVENTS

"""``--workers 2`` and a SIGKILL of the shipper: its worker processes exit too (none is left
idle), at random moments over several rounds, and a rerun then ships exact counts."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

from elasticsearch import Elasticsearch

from shipper.es import ClusterSettings
from shipper.pipeline import iter_documents
from tests.shared_data import sysmon_data
from tests.shipping import count, env_for, run, ship_args

SEED = 8


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _alive(pids: set[int]) -> set[int]:
    left = set()
    for p in pids:
        try:
            with open(f"/proc/{p}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z":  # a zombie has exited; only its reaping is left
            left.add(p)
    return left


def test_workers_exit_when_the_shipper_is_killed(
    es: Elasticsearch, es_settings: ClusterSettings, ready: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    samples = str(sysmon_data() / "evtx-attack-samples")
    state = tmp_path / "state"
    args = [*ship_args(ready, state, samples), "--workers", "2", "--bulk-docs", "50", "--in-flight", "1"]
    kills = 0
    for round_ in range(3):
        proc = subprocess.Popen(
            args, env=env_for(es_settings.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        workers: set[int] = set()
        deadline = time.monotonic() + 60
        while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
            workers = _descendants(proc.pid)
            time.sleep(0.01)
        if proc.poll() is not None:
            break  # it finished before its workers were seen: nothing left to kill
        time.sleep(rng.random() * 0.5)
        workers |= _descendants(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        end = time.monotonic() + 20  # a bound on the wait, not a measurement
        while _alive(workers) and time.monotonic() < end:
            time.sleep(0.1)
        assert not _alive(workers), (
            f"seed {SEED}, round {round_}: workers {sorted(_alive(workers))} outlived the shipper"
        )
    assert kills >= 1, f"seed {SEED}: the shipper was never killed with its workers running"
    summary = json.loads(run(args, es_settings.url).stdout)
    assert summary["errors"] == 0
    es.indices.refresh(index=f"{ready}-events*")
    again = json.loads(run(args, es_settings.url).stdout)
    assert again["shipped"] == 0
    files = sorted(str(f) for f in Path(samples).rglob("*.evtx"))
    distinct = {item.doc_id for item in iter_documents(files)}
    assert count(es, ready) == len(distinct)

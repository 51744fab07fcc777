"""A detector run killed with SIGKILL leaves its lease behind: the next run on the same host takes
it over at once (the holder's process is gone), while a lease held by a live run, or by a run on
another host, still excludes. The alert set after the kill is exactly a clean run's."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

from elasticsearch import Elasticsearch

from detectors.engine import Engine, EngineOptions
from detectors.state import StateStore, default_owner, holder_gone, process_start_time
from tests.integration.test_detect_support import alerts, index_docs, make_engine, proc_event, ts_ago

HOST = "WS-KILL.corp.example"


def _tamper(entity: str) -> dict[str, object]:
    return proc_event(HOST, ts_ago(0, -5), entity, None, "C:\\Windows\\System32\\dllhost.exe", code="25",
                      extra={"message": "Image is replaced"})  # fmt: skip


def _dead_owner() -> str:
    """The owner string of a process on this host that has exited."""
    code = "from detectors.state import default_owner; print(default_owner())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_holder_gone_tells_dead_from_live_and_foreign() -> None:
    assert holder_gone(_dead_owner())
    assert not holder_gone(default_owner())  # this very process
    assert not holder_gone(f"elsewhere.example:{1}:-:abc")
    assert not holder_gone("other")


def test_a_killed_runs_lease_is_taken_over_at_once(es: Elasticsearch, prefix: str) -> None:
    engine = make_engine(es, prefix)
    rule = next(r for r in engine.rules if r.id == "process-tampering")
    index_docs(es, prefix, [_tamper(f"{{K-{i}}}") for i in range(50)])
    store = StateStore(es, prefix)
    # a real run, killed while it holds the lease (a sleeping child stands for a hung detector)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    owner = f"{socket.gethostname()}:{child.pid}:{process_start_time(child.pid)}:kill"
    assert store.acquire(rule.id, owner, 900)
    locked = Engine(es, prefix, [rule], EngineOptions(ingest_delay=0.0)).run_rule(rule)
    assert locked.status == "locked"  # alive: it still excludes
    child.send_signal(signal.SIGKILL)
    child.wait()
    time.sleep(0.1)
    res = Engine(es, prefix, [rule], EngineOptions(ingest_delay=0.0)).run_rule(rule)
    assert res.status == "ok" and res.alerts == 50, res
    assert len(alerts(es, prefix, rule.id)) == 50
    assert Engine(es, prefix, [rule], EngineOptions(ingest_delay=0.0)).run_rule(rule).alerts == 0


def test_a_lease_from_another_host_still_excludes(es: Elasticsearch, prefix: str) -> None:
    engine = make_engine(es, prefix)
    rule = next(r for r in engine.rules if r.id == "process-tampering")
    store = StateStore(es, prefix)
    assert store.acquire(rule.id, "collector-2.example:4242:-:x", 900)
    assert Engine(es, prefix, [rule], EngineOptions(ingest_delay=0.0)).run_rule(rule).status == "locked"

"""A detector run killed with SIGKILL leaves its lease behind: the next run on the same host takes
it over at once (the holder's process is gone), while a lease held by a live run, or by a run on
another host, still excludes. The alert set after the kill is exactly a clean run's."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from elasticsearch import Elasticsearch

import detectors.engine as engine_module
from detectors.builders import RunContext
from detectors.engine import Engine, EngineOptions
from detectors.model import Rule
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


def test_a_lease_from_another_host_that_stops_being_renewed_expires_after_its_short_ttl(
    es: Elasticsearch, prefix: str
) -> None:
    engine = make_engine(es, prefix)
    rule = next(r for r in engine.rules if r.id == "process-tampering")
    index_docs(es, prefix, [_tamper(f"{{F-{i}}}") for i in range(5)])
    store = StateStore(es, prefix)
    # a run on another host took the lease with the short TTL and then died: nobody renews it
    assert store.acquire(rule.id, "collector-2.example:4242:-:x", 1.5)
    ours = Engine(es, prefix, [rule], EngineOptions(ingest_delay=0.0))
    assert ours.run_rule(rule).status == "locked"
    time.sleep(1.7)
    res = ours.run_rule(rule)
    assert res.status == "ok" and res.alerts == 5, res


def test_a_live_run_renews_its_lease_so_a_long_run_keeps_excluding(
    es: Elasticsearch, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(es, prefix)
    rule = next(r for r in engine.rules if r.id == "process-tampering")
    index_docs(es, prefix, [_tamper(f"{{L-{i}}}") for i in range(3)])
    real = engine_module.builder_for
    started = threading.Event()

    def slow_builder(r: Rule) -> Callable[[Rule, RunContext], Any]:
        def run(rule_: Rule, ctx: RunContext) -> Any:
            started.set()
            time.sleep(4.0)  # four TTLs: without renewal the lease would lapse three times over
            return real(r)(rule_, ctx)

        return run

    monkeypatch.setattr(engine_module, "builder_for", slow_builder)
    long_run = Engine(es, prefix, [rule], EngineOptions(ingest_delay=0.0, lease_ttl=1.0))
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(long_run.run_rule(rule)))
    worker.start()
    assert started.wait(10)
    other = StateStore(es, prefix)
    verdicts = []
    for _ in range(6):
        time.sleep(0.5)
        verdicts.append(other.acquire(rule.id, "collector-2.example:77:-:y", 1.0))
    worker.join(30)
    assert verdicts == [False] * 6
    assert results and results[0].status == "ok" and results[0].alerts == 3, results
    # released at the end: the other host takes it at once
    assert other.acquire(rule.id, "collector-2.example:77:-:y", 1.0)

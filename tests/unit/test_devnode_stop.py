"""devtools.es stop/status with a state file whose pid is stale: a pid is reused once the node is
gone, and ``stop`` must never signal the process group of whoever has it now."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from devtools import es as devnode


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYSMON_ES_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:  # whatever a failing test left behind: only our own groups
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)


def _spawn(procs: list[subprocess.Popen[bytes]], *args: str) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(list(args), start_new_session=True)  # its own group, like the node
    procs.append(p)
    return p


def _write_state(name: str, pid: int) -> Path:
    rd = devnode.run_dir(name)
    rd.mkdir(parents=True)
    info = devnode.NodeInfo(name=name, url="http://127.0.0.1:1", pid=pid, run_dir=str(rd), security=False)
    state = rd / "state.json"
    state.write_text(json.dumps(asdict(info)))
    return state


def test_stop_leaves_a_stranger_with_the_reused_pid_alone(procs: list[subprocess.Popen[bytes]]) -> None:
    # The worst case: the pid now leads a process group of its own, as the node's launcher did.
    stranger = _spawn(procs, "sleep", "60")
    state = _write_state("gone", stranger.pid)
    assert devnode.status("gone") is None
    assert devnode.stop("gone") is False
    time.sleep(0.2)
    assert stranger.poll() is None, "stop() signalled a process it did not start"
    assert _group_alive(stranger.pid)
    assert not state.exists()  # the stale state is cleared


def test_cli_status_and_stop_on_a_stale_pid(
    procs: list[subprocess.Popen[bytes]], capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = _spawn(procs, "sleep", "60")
    _write_state("gone", stranger.pid)
    assert devnode.main(["status", "--name", "gone"]) == 1
    assert capsys.readouterr().out.strip() == "not running"
    assert devnode.main(["url", "--name", "gone"]) == 1
    assert devnode.main(["stop", "--name", "gone"]) == 0
    assert capsys.readouterr().out.strip() == "not running"
    assert stranger.poll() is None


def test_stop_with_a_dead_pid(procs: list[subprocess.Popen[bytes]]) -> None:
    dead = _spawn(procs, "true")
    dead.wait(timeout=10)
    state = _write_state("dead", dead.pid)
    assert devnode.stop("dead") is False
    assert not state.exists()


def test_stop_ends_the_whole_group_of_the_node_it_started(procs: list[subprocess.Popen[bytes]]) -> None:
    # A stand-in for the node: a group leader naming the run directory on its command line (as
    # the launcher does) with a child that does not (as a forked server might not).
    rd = devnode.run_dir("mine")
    leader = _spawn(procs, "sh", "-c", "sleep 60 & wait", str(rd / "es.pid"))
    _write_state("mine", leader.pid)
    deadline = time.monotonic() + 10
    while len(devnode._group_cmdlines(leader.pid) or []) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(devnode._group_cmdlines(leader.pid) or []) == 2  # sh and its sleep
    st = devnode.status("mine")
    assert st is not None and st.pid == leader.pid
    assert devnode.stop("mine") is True
    assert leader.poll() is not None
    assert not _group_alive(leader.pid), "a process of the node's group survived stop()"
    assert devnode.status("mine") is None


def test_a_sibling_run_directory_is_not_mistaken_for_ours(procs: list[subprocess.Popen[bytes]]) -> None:
    # "runs/dev" must not match a process of "runs/dev2"
    other = _spawn(procs, "sh", "-c", "sleep 60; true", str(devnode.run_dir("dev2") / "es.pid"))
    _write_state("dev", other.pid)
    assert devnode.stop("dev") is False
    assert other.poll() is None


def test_group_cmdlines_sees_this_process() -> None:
    lines = devnode._group_cmdlines(os.getpgid(0))
    assert lines is not None
    assert any(sys.executable.encode() in c or b"pytest" in c for c in lines)

"""``python -m devtools.es start|url|status|stop`` end to end: a node of its own (unique name, free
port) answers with an Elasticsearch 9 version at the printed URL, and ``stop`` leaves no process
of it behind. Needs no ``ES_URL`` cluster; it starts and stops its own node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools import es as devnode

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devtools.es", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _live_processes(pgid: int, marker: str) -> list[str]:
    """Processes (zombies aside) in group ``pgid`` or naming ``marker`` on their command line."""
    found: list[str] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        if fields[0] in ("Z", "X"):
            continue
        if int(fields[2]) == pgid or marker in cmdline:
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


@pytest.fixture
def node_name() -> Iterator[str]:
    name = f"pytest-cli-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    yield name
    # whatever happened, never leave the node running nor its data behind
    _cli("stop", "--name", name, "--remove", timeout=120)


def test_start_url_status_stop(node_name: str) -> None:
    port = devnode.free_port()
    started = _cli("start", "--name", node_name, "--port", str(port), "--heap", "512m", timeout=420)
    assert started.returncode == 0, started.stderr[-3000:]
    url = f"http://127.0.0.1:{port}"
    assert started.stdout.strip().splitlines()[-1] == url
    assert f"Elasticsearch {devnode.ES_VERSION} running at {url}" in started.stdout

    printed = _cli("url", "--name", node_name)
    assert printed.returncode == 0 and printed.stdout.strip() == url

    with urllib.request.urlopen(f"{url}/_nodes/_local?filter_path=nodes.*.version", timeout=30) as resp:
        assert resp.status == 200
        nodes = json.loads(resp.read())["nodes"]
    versions = [n["version"] for n in nodes.values()]
    assert len(versions) == 1 and versions[0].split(".")[0] == "9", versions
    assert versions[0] == devnode.ES_VERSION

    state = json.loads((devnode.run_dir(node_name) / "state.json").read_text())
    pid = int(state["pid"])
    assert os.getpgid(pid) == pid  # the node leads its own process group
    status = _cli("status", "--name", node_name)
    assert status.returncode == 0
    assert status.stdout.strip() == f"running at {url} (pid {pid})"
    run_marker = str(devnode.run_dir(node_name)) + "/"
    assert len(_live_processes(pid, run_marker)) >= 2  # the launcher and the server

    stopped = _cli("stop", "--name", node_name, timeout=120)
    assert stopped.returncode == 0 and stopped.stdout.strip() == "stopped", stopped.stderr
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert _live_processes(pid, run_marker) == []
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/_nodes/_local", timeout=5)

    after = _cli("status", "--name", node_name)
    assert after.returncode == 1 and after.stdout.strip() == "not running"
    again = _cli("stop", "--name", node_name)
    assert again.returncode == 0 and again.stdout.strip() == "not running"

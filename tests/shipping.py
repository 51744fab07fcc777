"""What the shipping tests share: running the shipper as a user would, counting what the cluster
holds and what the checkpoints acknowledge, generating a day of events, and a TCP proxy on
127.0.0.1 that can take the node away."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch

SHIP = [sys.executable, "-c", "from shipper.cli import main; main()"]
EVENTS = 20_000


def env_for(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ES_")}
    env["ES_URL"] = url
    return env


def ship_args(prefix: str, state: Path, *inputs: str) -> list[str]:
    return [*SHIP, "ship", *inputs, "--index-prefix", prefix, "--state-dir", str(state), "--json"]


def run(args: list[str], url: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, env=env_for(url), capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def count(es: Elasticsearch, prefix: str) -> int:
    for _ in range(3):
        es.options(ignore_status=404).indices.refresh(index=f"{prefix}-events*")
        try:
            resp = es.options(ignore_status=404).count(index=f"{prefix}-events")
        except ApiError as exc:
            if exc.status_code != 503:
                raise
            # a new monthly index whose shard has not started yet (a busy machine): wait for it
            es.options(ignore_status=[404, 408]).cluster.health(
                index=f"{prefix}-events*", wait_for_status="yellow", timeout="30s"
            )
            continue
        return int(resp.get("count", 0))
    raise AssertionError(f"{prefix}-events: shards did not start")


def acked(state: Path) -> int:
    """Acknowledged records in the committed checkpoints (not the shipper's half-written
    ``.tmp-*.json`` files, which a kill may leave unrenamed)."""
    total = 0
    for f in (state / "checkpoints").glob("*.json"):
        if f.name.startswith("."):
            continue
        try:
            total += json.loads(f.read_text())["acked"]
        except (ValueError, KeyError, OSError):
            pass
    return total


def wait_for(cond: Any, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


_GENERATE = [sys.executable, "-m", "samples", "generate"]


def generate_day(out: Path, events: int = EVENTS, seed: int = 11) -> Path:
    """A generated day of ``events`` Sysmon events as winlogbeat JSON lines."""
    args = ["--out", str(out), "--events", str(events), "--seed", str(seed), "--forms", "winlogbeat"]
    subprocess.run([*_GENERATE, *args], check=True, capture_output=True)
    return out / "winlogbeat.ndjson"


def _free_port_below_ephemeral() -> int:
    """A free port under Linux's ephemeral range, so that no client socket (the shipper's own
    connection attempts included) is given it while the proxy is down."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        probe = socket.socket()
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            probe.close()
        return port
    raise RuntimeError("no free port in 20000-32000")


class Proxy:
    """A TCP proxy on 127.0.0.1 that can be taken down (listener closed, connections cut) and up,
    or frozen: connections stay open and nothing is relayed, as in a long GC pause."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = _free_port_below_ephemeral()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self.forwarded = 0
        self.thawed = threading.Event()
        self.thawed.set()
        self.delay = 0.0  # seconds each chunk waits before it is relayed (a slow link)
        self._trip: tuple[int, float, bool] | None = None  # (at forwarded, outage, freeze)
        self.outages = 0

    def up(self) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        end = time.monotonic() + 10
        while True:
            try:
                srv.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)
        srv.listen(64)
        self._server = srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            try:
                self._server.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            self._server.close()
            self._server = None
        with self._lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self._conns.clear()

    def trip(self, after_bytes: int, outage: float, freeze: bool = False) -> None:
        """Go down (or freeze) once ``after_bytes`` more have been relayed, and come back
        ``outage`` seconds later: an outage that lands mid-run however fast the client is."""
        self._trip = (self.forwarded + after_bytes, outage, freeze)

    def _outage(self, seconds: float, freeze: bool) -> None:
        if not freeze:
            self.down()
        time.sleep(seconds)
        if freeze:
            self.thawed.set()
        else:
            self.up()

    def _accept(self, srv: socket.socket) -> None:
        while True:
            try:
                client, _ = srv.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                self.thawed.wait()
                if self.delay:
                    time.sleep(self.delay)
                b.sendall(data)
                with self._lock:
                    self.forwarded += len(data)
                    trip = self._trip
                    if trip is not None and self.forwarded >= trip[0]:
                        self._trip = None
                        self.outages += 1
                        if trip[2]:
                            self.thawed.clear()  # at once: nothing more passes
                    else:
                        trip = None
                if trip is not None:
                    threading.Thread(target=self._outage, args=trip[1:], daemon=True).start()
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

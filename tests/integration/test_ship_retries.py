"""Retries against a misbehaving cluster: a loopback HTTP proxy in front of the real node answers
``_bulk`` requests with 429, 503 and 502, and 200 responses with per-item 429s (items it did not
forward); ``sysmon-ship ship`` through it retries and ends with exact counts. With the retries
exhausted (the proxy always 429) the run fails and says so; a rerun against the node completes,
exactly once."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from elasticsearch import Elasticsearch, helpers

from samples.__main__ import main as samples_main
from shipper.es import ClusterSettings

SHIP = [sys.executable, "-c", "from shipper.cli import main; main()"]
EVENTS = 600
MAX_CONNECTIONS = 8
_HOP = {"host", "content-length", "connection", "accept-encoding", "keep-alive", "transfer-encoding"}


@dataclass
class Plan:
    """What the proxy does with the n-th ``_bulk`` request (1-based): a status to answer with
    (nothing forwarded), or forward it — optionally holding back some items and answering 429
    for them in the 200 response."""

    statuses: list[int] = field(default_factory=list)  # answers for the first len() requests
    always: int | None = None  # after the first ``forward_first`` forwarded ones: always this
    forward_first: int | None = None
    partial_requests: int = 0  # the first k forwarded requests: every 3rd item answered 429
    seen: int = 0
    forwarded: int = 0
    held_back: int = 0
    answered: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self) -> tuple[int | None, bool]:
        """(status to answer with or None to forward, hold back items?)"""
        with self.lock:
            self.seen += 1
            if self.seen <= len(self.statuses):
                self.answered.append(self.statuses[self.seen - 1])
                return self.statuses[self.seen - 1], False
            if self.always is not None and (
                self.forward_first is None or self.forwarded >= self.forward_first
            ):
                self.answered.append(self.always)
                return self.always, False
            self.forwarded += 1
            return None, self.forwarded <= self.partial_requests


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, plan: Plan) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        parts = urlsplit(upstream)
        assert parts.hostname in ("127.0.0.1", "localhost"), "the proxy only fronts a loopback node"
        self.upstream = (parts.hostname, parts.port or 9200)
        self.plan = plan
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.slots.acquire()  # at most MAX_CONNECTIONS handler threads
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *_args: Any) -> None:
        pass

    def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            keep = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP}
            return resp.status, keep, data
        finally:
            conn.close()

    def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if "_bulk" not in self.path.split("?")[0]:
            self._reply(*self._forward(body))
            return
        status, hold = self.server.plan.decide()
        if status is not None:
            error = {"error": {"type": "es_rejected_execution_exception", "reason": f"proxy says {status}"}}
            self._reply(
                status,
                {"Content-Type": "application/json", "X-Elastic-Product": "Elasticsearch"},
                json.dumps(error | {"status": status}).encode(),
            )
            return
        if not hold:
            self._reply(*self._forward(body))
            return
        # hold back every 3rd item: forward the others, answer 429 for the held ones
        lines = body.split(b"\n")
        pairs = [(lines[i], lines[i + 1]) for i in range(0, len(lines) - 1, 2) if lines[i]]
        held = [i % 3 == 1 for i in range(len(pairs))]
        sent = b"".join(a + b"\n" + d + b"\n" for (a, d), h in zip(pairs, held, strict=True) if not h)
        code, headers, data = self._forward(sent) if sent else (200, {}, b'{"errors":false,"items":[]}')
        assert code == 200, data
        got = iter(json.loads(data)["items"])
        items = [
            {
                "create": {
                    "status": 429,
                    "error": {"type": "es_rejected_execution_exception", "reason": "held"},
                }
            }
            if h
            else next(got)
            for h in held
        ]
        with self.server.plan.lock:
            self.server.plan.held_back += sum(held)
        out = {"errors": True, "items": items}
        headers = {"Content-Type": "application/json", "X-Elastic-Product": "Elasticsearch"}
        self._reply(200, headers, json.dumps(out).encode())

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _handle


@pytest.fixture
def proxy(es_settings: ClusterSettings) -> Iterator[Callable[[Plan], str]]:
    servers: list[_Server] = []

    def start(plan: Plan) -> str:
        server = _Server(es_settings.url, plan)
        threading.Thread(target=server.serve_forever, name="retry-proxy", daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("day")
    result = CliRunner().invoke(
        samples_main,
        ["generate", "--out", str(out), "--events", str(EVENTS), "--seed", "3", "--forms", "winlogbeat"],
    )
    assert result.exit_code == 0, result.output
    return out / "winlogbeat.ndjson"


def _cli(args: list[str], url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "SYSMON_"))}
    env["ES_URL"] = url
    return subprocess.run([*SHIP, *args], env=env, capture_output=True, text=True, check=False, timeout=300)


def _config(tmp_path: Path, max_retries: int) -> Path:
    cfg = tmp_path / "shipper.yml"
    cfg.write_text(
        "bulk:\n  max_docs: 50\n  in_flight: 2\n"
        f"  max_retries: {max_retries}\n  backoff_initial: 0.01\n  backoff_max: 0.05\n",
        encoding="utf-8",
    )
    return cfg


def _ship(
    url: str, day: Path, prefix: str, tmp_path: Path, max_retries: int
) -> subprocess.CompletedProcess[str]:
    args = ["ship", str(day), "--config", str(_config(tmp_path, max_retries)), "--index-prefix", prefix]
    args += ["--state-dir", str(tmp_path / "state"), "--json", "--no-progress"]
    return _cli(args, url)


def _ids(es: Elasticsearch, prefix: str) -> list[str]:
    es.indices.refresh(index=f"{prefix}-events-*")
    return [h["_id"] for h in helpers.scan(es, index=f"{prefix}-events-*", _source=False, size=1000)]


def test_ship_retries_429_503_502_and_item_429s_with_exact_counts(
    es: Elasticsearch,
    es_settings: ClusterSettings,
    prefix: str,
    proxy: Callable[[Plan], str],
    day: Path,
    tmp_path: Path,
) -> None:
    assert _cli(["setup", "--index-prefix", prefix], es_settings.url).returncode == 0
    plan = Plan(statuses=[429, 429, 429, 503, 502], partial_requests=3)
    proc = _ship(proxy(plan), day, prefix, tmp_path, max_retries=8)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert plan.answered == [429, 429, 429, 503, 502]
    assert plan.held_back > 0
    # every failure was retried: 5 whole requests, and one item retry per partial response
    assert summary["retries"] >= 5 + 3
    assert summary["shipped"] == EVENTS
    assert summary["duplicates"] == summary["dead_lettered"] == 0
    ids = _ids(es, prefix)
    assert len(ids) == len(set(ids)) == EVENTS
    assert es.count(index=f"{prefix}-events")["count"] == EVENTS


def test_exhausted_retries_fail_and_a_rerun_completes_exactly_once(
    es: Elasticsearch,
    es_settings: ClusterSettings,
    prefix: str,
    proxy: Callable[[Plan], str],
    day: Path,
    tmp_path: Path,
) -> None:
    assert _cli(["setup", "--index-prefix", prefix], es_settings.url).returncode == 0
    # a few requests get through, then the cluster is overloaded for good
    plan = Plan(always=429, forward_first=3)
    proc = _ship(proxy(plan), day, prefix, tmp_path, max_retries=2)
    assert proc.returncode != 0
    assert "bulk request failed after 3 attempts (HTTP 429)" in proc.stderr
    assert "shipped=" in proc.stderr  # the summary of what did get in
    assert plan.forwarded == 3
    first = len(_ids(es, prefix))
    assert 0 < first < EVENTS

    again = _ship(es_settings.url, day, prefix, tmp_path, max_retries=2)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["dead_lettered"] == 0
    # the rerun resumes from the checkpoint; whatever it sends again is a duplicate, not a copy
    assert summary["shipped"] == EVENTS - first
    ids = _ids(es, prefix)
    assert len(ids) == len(set(ids)) == EVENTS
    assert es.count(index=f"{prefix}-events")["count"] == EVENTS

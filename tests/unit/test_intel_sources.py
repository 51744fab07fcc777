"""Fetching feeds from a local http.server: conditional requests, cache, retries, failures."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from detectors.intel.config import FeedConfig, Secret
from detectors.intel.model import Indicator, ParseIssue
from detectors.intel.sources import FeedCache, fetch, fetch_all, is_due, read_feed

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "intel"
SECRET = "Auth-0123456789abcdef-never-print-me"
FEED_BODY = (FIXTURES / "feodo_ipblocklist.csv").read_bytes()


@dataclass
class ServerState:
    mode: str = "ok"  # ok | fail | notfound | flaky | redirect | lastmod
    body: bytes = FEED_BODY
    etag: str = '"v1"'
    last_modified: str = "Thu, 02 May 2024 10:05:13 GMT"
    failures_left: int = 0
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Server:
    def __init__(self) -> None:
        self.state = ServerState()
        state = self.state
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                with state.lock:
                    state.requests.append((self.path, dict(self.headers.items())))
                    mode = state.mode
                    if mode == "flaky" and state.failures_left > 0:
                        state.failures_left -= 1
                        mode = "unavailable"
                if self.path.startswith("/redirect"):
                    port = outer.port
                    self.send_response(302)
                    self.send_header("Location", f"http://localhost:{port}/feed.csv")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "fail":
                    self._plain(500, b"boom")
                elif mode == "unavailable":
                    self._plain(503, b"try later")
                elif mode == "notfound":
                    self._plain(404, b"no such feed")
                elif mode == "lastmod":
                    if self.headers.get("If-Modified-Since") == state.last_modified:
                        self._empty(304)
                    else:
                        self._body(extra={"Last-Modified": state.last_modified})
                elif self.headers.get("If-None-Match") == state.etag:
                    self._empty(304)
                else:
                    self._body(extra={"ETag": state.etag})

            def _plain(self, code: int, text: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def _empty(self, code: int) -> None:
                self.send_response(code)
                self.end_headers()

            def _body(self, extra: dict[str, str]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(state.body)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(state.body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str = "/feed.csv") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def paths(self) -> list[str]:
        return [p for p, _ in self.state.requests]


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join()


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def remote(url: str, **kw: object) -> FeedConfig:
    args: dict[str, object] = {
        "name": "feodo",
        "location": url,
        "headers": (("Auth-Key", Secret(SECRET)),),
        "timeout": 10.0,
        "retries": 2,
    }
    args.update(kw)
    return FeedConfig(**args)  # type: ignore[arg-type]


def test_200_then_304_then_500_keeps_the_previous_body(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    feed = remote(server.url())
    sleeps = Sleeps()

    first = fetch(feed, tmp_path, sleep=sleeps, backoff=0.5)
    assert first.status == "fresh" and first.http_status == 200 and first.attempts == 1
    assert first.path == tmp_path / "feodo" / "body"
    assert first.path.read_bytes() == FEED_BODY
    meta = json.loads((tmp_path / "feodo" / "meta.json").read_text())
    assert meta["etag"] == '"v1"' and meta["size"] == len(FEED_BODY)
    first_request = server.state.requests[0][1]
    assert first_request["Auth-Key"] == SECRET
    assert "If-None-Match" not in first_request

    second = fetch(feed, tmp_path, sleep=sleeps, backoff=0.5)
    assert second.status == "not_modified" and second.http_status == 304
    assert second.path == first.path and second.fetched_at == first.fetched_at
    assert server.state.requests[1][1]["If-None-Match"] == '"v1"'

    server.state.mode = "fail"
    third = fetch(feed, tmp_path, sleep=sleeps, backoff=0.5)
    assert third.status == "failed" and third.http_status == 500
    assert third.attempts == 3 and sleeps.calls == [0.5, 1.0]
    assert third.error is not None and "HTTP 500" in third.error and server.url() in third.error
    assert third.path == first.path and third.path.read_bytes() == FEED_BODY
    assert third.usable

    inds = [i for i in read_feed(feed, third) if isinstance(i, Indicator)]
    assert [i.value for i in inds] == ["192.0.2.10", "198.51.100.7", "2001:db8::1"]
    assert all(i.provider == "feodo" for i in inds)

    assert "keeping the cached version" in caplog.text
    for text in (caplog.text, repr(first), repr(second), repr(third), repr(feed), str(feed)):
        assert SECRET not in text
    assert not list((tmp_path / "feodo").glob("*.tmp"))


def test_last_modified_revalidation(server: Server, tmp_path: Path) -> None:
    server.state.mode = "lastmod"
    feed = remote(server.url())
    assert fetch(feed, tmp_path).status == "fresh"
    again = fetch(feed, tmp_path)
    assert again.status == "not_modified"
    assert server.state.requests[1][1]["If-Modified-Since"] == server.state.last_modified


def test_retry_after_5xx_then_success(server: Server, tmp_path: Path) -> None:
    server.state.mode = "flaky"
    server.state.failures_left = 2
    sleeps = Sleeps()
    result = fetch(remote(server.url()), tmp_path, sleep=sleeps, backoff=0.25)
    assert result.status == "fresh" and result.attempts == 3
    assert sleeps.calls == [0.25, 0.5]


def test_4xx_fails_without_retry_and_without_cache(server: Server, tmp_path: Path) -> None:
    server.state.mode = "notfound"
    sleeps = Sleeps()
    result = fetch(remote(server.url()), tmp_path, sleep=sleeps)
    assert result.status == "failed" and result.http_status == 404 and result.attempts == 1
    assert result.path is None and not result.usable and sleeps.calls == []
    assert list(read_feed(remote(server.url()), result)) == []


def test_connection_refused_is_retried_then_reported(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps = Sleeps()
    result = fetch(remote(f"http://127.0.0.1:{port}/x", retries=1), tmp_path, sleep=sleeps, backoff=0)
    assert result.status == "failed" and result.attempts == 2 and len(sleeps.calls) == 1
    assert result.error is not None and result.error.startswith("connection failed")


def test_redirect_to_another_host_drops_the_feed_headers(server: Server, tmp_path: Path) -> None:
    result = fetch(remote(server.url("/redirect")), tmp_path)
    assert result.status == "fresh"
    (first_path, first_headers), (second_path, second_headers) = server.state.requests
    assert first_path == "/redirect" and first_headers["Auth-Key"] == SECRET
    assert second_path == "/feed.csv" and "Auth-Key" not in second_headers


def test_changed_location_does_not_revalidate_the_old_body(server: Server, tmp_path: Path) -> None:
    fetch(remote(server.url()), tmp_path)
    fetch(remote(server.url("/feed.csv?v=2")), tmp_path)
    assert "If-None-Match" not in server.state.requests[1][1]


def test_fetch_all_one_failure_does_not_block_the_others(server: Server, tmp_path: Path) -> None:
    server.state.mode = "notfound"
    local = FeedConfig(name="drop", location=str(FIXTURES / "spamhaus_drop.txt"))
    missing = FeedConfig(name="gone", location=str(tmp_path / "nope.txt"))
    disabled = FeedConfig(name="off", location=str(tmp_path / "nope.txt"), enabled=False)
    results = fetch_all([remote(server.url()), missing, disabled, local], tmp_path / "cache", backoff=0)
    assert [(r.feed, r.status) for r in results] == [
        ("feodo", "failed"),
        ("gone", "failed"),
        ("drop", "local"),
    ]
    assert results[2].path == FIXTURES / "spamhaus_drop.txt"
    items = list(read_feed(local, results[2]))
    assert sum(isinstance(i, Indicator) for i in items) == 4
    assert sum(isinstance(i, ParseIssue) for i in items) == 1


def test_fetch_all_survives_unexpected_errors(tmp_path: Path) -> None:
    def broken_opener(feed: FeedConfig) -> object:
        raise RuntimeError("opener exploded")

    local = FeedConfig(name="drop", location=str(FIXTURES / "spamhaus_drop.txt"))
    results = fetch_all(
        [remote("https://feeds.invalid/x"), local],
        tmp_path,
        opener=broken_opener,
    )
    assert [(r.feed, r.status) for r in results] == [("feodo", "failed"), ("drop", "local")]
    assert results[0].error == "RuntimeError: opener exploded"


def test_read_feed_keeps_only_configured_types(tmp_path: Path) -> None:
    feed = FeedConfig(name="u", location=str(FIXTURES / "urlhaus_online.csv"), types=("ip",), confidence=55)
    result = fetch(feed, tmp_path)
    inds = [i for i in read_feed(feed, result) if isinstance(i, Indicator)]
    assert [i.value for i in inds] == ["198.51.100.23", "2001:db8::5"]
    assert all(i.derived and i.confidence == 55 for i in inds)


def test_is_due(server: Server, tmp_path: Path) -> None:
    feed = remote(server.url(), refresh=timedelta(hours=1))
    assert is_due(feed, tmp_path)
    fetch(feed, tmp_path)
    assert not is_due(feed, tmp_path)
    later = datetime.now(tz=UTC) + timedelta(hours=2)
    assert is_due(feed, tmp_path, now=later)


def test_cache_ignores_a_body_that_does_not_match_its_meta(server: Server, tmp_path: Path) -> None:
    feed = remote(server.url())
    fetch(feed, tmp_path)
    (tmp_path / "feodo" / "body").write_bytes(b"truncated")
    assert FeedCache(tmp_path).read_meta("feodo") is None
    assert fetch(feed, tmp_path).status == "fresh"
    assert "If-None-Match" not in server.state.requests[1][1]

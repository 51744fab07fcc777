"""Feed fetches against a loopback server slower than the feed's timeout: the fetch gives up
within the bound (timeout x attempts), says it timed out, and keeps the cached previous version."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from detectors.intel.config import FeedConfig
from detectors.intel.model import Indicator
from detectors.intel.sources import FeedCache, fetch, read_feed

OLD_BODY = b"192.0.2.1\r\n198.51.100.0/24\r\n"
NEW_BODY = b"203.0.113.5\n" * 2000
TIMEOUT = 0.5
STALL = 5.0  # how long the server stalls: far longer than TIMEOUT, bounded for the teardown


class SlowServer:
    """``mode``: ok (body with an ETag), headers (stall before the status line), body (send the
    headers and half the body, then stall), drip (a byte every 50 ms: never idle for a timeout,
    never done)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests = 0
        self.release = threading.Event()  # set at teardown: stalled handlers end at once
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests += 1
                mode = outer.mode
                if mode == "headers":
                    outer.release.wait(STALL)
                    return
                body = OLD_BODY if mode == "ok" else NEW_BODY
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", '"v1"' if mode == "ok" else '"v2"')
                self.end_headers()
                if mode == "body":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    outer.release.wait(STALL)
                    return
                if mode == "drip":  # always some data within the timeout, never the end
                    for i in range(len(body)):
                        if outer.release.wait(0.05):
                            return
                        try:
                            self.wfile.write(body[i : i + 1])
                            self.wfile.flush()
                        except OSError:
                            return
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/feed.txt"


@pytest.fixture
def server() -> Iterator[SlowServer]:
    srv = SlowServer()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join(timeout=10)


def _feed(url: str, retries: int = 0) -> FeedConfig:
    return FeedConfig(name="slow", location=url, timeout=TIMEOUT, retries=retries)


def _no_sleep(seconds: float) -> None:
    pass


def _prime(server: SlowServer, cache: Path) -> str:
    """A first, fast fetch puts the old version in the cache; returns its fetched_at."""
    first = fetch(_feed(server.url), cache)
    assert first.status == "fresh" and first.path is not None
    assert first.path.read_bytes() == OLD_BODY and first.fetched_at
    return first.fetched_at


def _assert_old_version_kept(cache: Path, result_path: Path | None) -> None:
    c = FeedCache(cache)
    assert result_path == c.body_path("slow")
    assert result_path.read_bytes() == OLD_BODY
    meta = c.read_meta("slow")
    assert meta is not None and meta.etag == '"v1"' and meta.size == len(OLD_BODY)
    assert not list(c.dir("slow").glob(".*.tmp")), "a temporary body was left behind"


@pytest.mark.parametrize("stall", ["headers", "body"])
def test_a_stalled_server_fails_within_the_timeout_and_keeps_the_cache(
    server: SlowServer, tmp_path: Path, stall: str
) -> None:
    fetched_at = _prime(server, tmp_path)
    server.mode = stall
    t0 = time.monotonic()
    result = fetch(_feed(server.url), tmp_path, sleep=_no_sleep)
    elapsed = time.monotonic() - t0
    assert TIMEOUT * 0.8 <= elapsed < TIMEOUT + 2.0, f"took {elapsed:.2f}s with a {TIMEOUT}s timeout"
    assert elapsed < STALL - 1  # it did not wait for the server
    assert result.status == "failed" and result.attempts == 1 and result.http_status is None
    assert result.error is not None
    assert result.error.startswith(f"timed out after {TIMEOUT:g}s") and result.error.endswith(
        f"from {server.url}"
    )
    assert result.fetched_at == fetched_at  # the body it points at is the old download
    _assert_old_version_kept(tmp_path, result.path)
    # what a load parses after the failure is the previous version
    items = list(read_feed(_feed(server.url), result))
    assert sorted(i.value for i in items if isinstance(i, Indicator)) == ["192.0.2.1", "198.51.100.0/24"]


def test_retries_are_bounded_too(server: SlowServer, tmp_path: Path) -> None:
    _prime(server, tmp_path)
    server.mode = "headers"
    server.requests = 0
    sleeps: list[float] = []
    t0 = time.monotonic()
    result = fetch(_feed(server.url, retries=2), tmp_path, sleep=sleeps.append, backoff=0.1)
    elapsed = time.monotonic() - t0
    assert result.status == "failed" and result.attempts == 3
    assert server.requests == 3
    assert sleeps == [0.1, 0.2]  # exponential backoff between the attempts
    assert elapsed < 3 * TIMEOUT + 2.0, f"took {elapsed:.2f}s for 3 attempts of {TIMEOUT}s"
    assert result.error is not None and result.error.startswith("timed out after 0.5s")
    _assert_old_version_kept(tmp_path, result.path)


def test_a_timeout_without_a_cached_version(server: SlowServer, tmp_path: Path) -> None:
    server.mode = "headers"
    result = fetch(_feed(server.url), tmp_path, sleep=_no_sleep)
    assert result.status == "failed" and result.path is None and not result.usable
    assert result.error is not None and result.error.startswith("timed out after 0.5s")
    assert list(read_feed(_feed(server.url), result)) == []
    assert not FeedCache(tmp_path).has_body("slow")


def test_a_slow_drip_meets_the_download_deadline(server: SlowServer, tmp_path: Path) -> None:
    """Data keeps arriving faster than the timeout, so only the whole-download deadline can end
    it: the fetch fails at the deadline, says so, does not retry, and keeps the cache."""
    fetched_at = _prime(server, tmp_path)
    server.mode = "drip"
    server.requests = 0
    feed = FeedConfig(name="slow", location=server.url, timeout=TIMEOUT, deadline=1.0, retries=2)
    t0 = time.monotonic()
    result = fetch(feed, tmp_path, sleep=_no_sleep)
    elapsed = time.monotonic() - t0
    assert 1.0 <= elapsed < 3.0, f"took {elapsed:.2f}s with a 1s deadline"
    assert result.status == "failed" and result.attempts == 1 and server.requests == 1
    assert result.error is not None and result.error.startswith("download took longer than the 1s deadline")
    assert result.fetched_at == fetched_at
    _assert_old_version_kept(tmp_path, result.path)

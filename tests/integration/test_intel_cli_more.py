"""``sysmon-detect intel load --url`` against a loopback HTTP server, on the real node: a forced
``--format`` beats content detection, ``--type`` restricts what is kept, ``intel list`` shows
counts by type, the last refresh and a 500's last error, and ``intel check`` exits 0 / 1."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from elasticsearch import Elasticsearch

from detectors.cli import main
from detectors.intel.formats import detect_format
from detectors.intel.indices import indicators_index
from shipper.es import ClusterSettings

# Feodo Tracker rows without their banner and header: content detection cannot tell them from a
# plain list (and a plain list rejects every line); --format feodo_csv reads them.
FEODO_ROWS = (
    "2024-01-01 00:00:00,192.0.2.50,443,online,2024-01-02,Dridex\r\n"
    "2024-01-03 10:00:00,192.0.2.51,8080,offline,,Emotet\r\n"
)
SHA256 = "ab" * 32
MIXED = f"192.0.2.9\n198.51.100.0/24\nEvil.Example.NET\nhttp://bad.example.org/x.exe\n{SHA256}\n"
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z"


@dataclass
class Routes:
    """path → (status, body); every request is recorded."""

    routes: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def feed_server() -> Iterator[tuple[str, Routes]]:
    """A threaded loopback server, as in test_intel_refresh.py, answering from ``Routes``."""
    state = Routes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with state.lock:
                state.requests.append(self.path)
                status, body = state.routes.get(self.path, (404, b"no such feed"))
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def env(es_settings: ClusterSettings, prefix: str, tmp_path: Path) -> dict[str, str]:
    return {
        "ES_URL": es_settings.url,
        "SYSMON_INDEX_PREFIX": prefix,
        "SYSMON_INTEL_CACHE": str(tmp_path / "cache"),
    }


def _run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, ["intel", *args], env=env, catch_exceptions=False)


def _listing(output: str) -> dict[str, dict[str, str]]:
    """``intel list`` lines by feed: the tab-separated key=value fields, the counts (last
    field) as ``counts``, and a following ``  last error:`` line as ``last_error``."""
    feeds: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in output.splitlines():
        if line.startswith("  last error: "):
            assert current is not None, output
            current["last_error"] = line.removeprefix("  last error: ")
            continue
        name, *fields = line.split("\t")
        current = {k: v for k, _, v in (f.partition("=") for f in fields[:-1])}
        current["counts"] = fields[-1]
        feeds[name] = current
    return feeds


def _indicator(es: Elasticsearch, prefix: str, feed: str, value: str) -> dict[str, Any]:
    es.indices.refresh(index=indicators_index(prefix))
    hits = es.search(
        index=indicators_index(prefix),
        query={"bool": {"filter": [{"term": {"intel.feed": feed}}, {"term": {"intel.value": value}}]}},
    )["hits"]["hits"]
    assert len(hits) == 1, hits
    doc: dict[str, Any] = hits[0]["_source"]
    return doc


def test_forced_format_overrides_content_detection(
    es: Elasticsearch, prefix: str, env: dict[str, str], feed_server: tuple[str, Routes]
) -> None:
    url, served = feed_server
    served.routes["/feed.csv"] = (200, FEODO_ROWS.encode())
    assert detect_format(FEODO_ROWS) == "plain"  # what auto would pick

    auto = _run(env, "load", "--url", f"{url}/feed.csv", "--name", "guessed")
    assert auto.exit_code == 1, auto.output  # nothing parsed: refused, not loaded as empty
    assert "guessed: FAILED: refused: the feed yielded no indicators (2 invalid records)" in auto.output
    assert "indicators=0 issues=2" in auto.output

    forced = _run(env, "load", "--url", f"{url}/feed.csv", "--format", "feodo_csv", "--name", "feodo")
    assert forced.exit_code == 0, forced.output
    assert "feodo: loaded generation 1: ip 2 in" in forced.output
    assert (
        forced.output.strip()
        .splitlines()[-1]
        .startswith("summary: feeds=1 loaded=1 not_modified=0 skipped=0 failed=0 indicators=2 issues=0")
    )
    assert served.requests == ["/feed.csv", "/feed.csv"]
    # the Feodo columns were read as Feodo columns
    ind = _indicator(es, prefix, "feodo", "192.0.2.50")["threat"]["indicator"]
    assert ind["ip"] == "192.0.2.50" and ind["first_seen"].startswith("2024-01-01T00:00:00")

    unknown = _run(env, "load", "--url", f"{url}/feed.csv", "--format", "nope")
    assert unknown.exit_code == 2 and "unknown format 'nope'" in unknown.output

    listed = _listing(_run(env, "list").output)
    assert listed["feodo"]["counts"] == "ip 2" and listed["guessed"]["counts"] == "empty"


def test_type_restricts_what_a_feed_keeps(
    es: Elasticsearch, prefix: str, env: dict[str, str], feed_server: tuple[str, Routes]
) -> None:
    url, served = feed_server
    served.routes["/mixed.txt"] = (200, MIXED.encode())
    res = _run(env, "load", "--url", f"{url}/mixed.txt", "--type", "ip", "--type", "domain")
    assert res.exit_code == 0, res.output
    # the name comes from the URL's file name; the URL's host counts as a domain, the URL,
    # the CIDR and the hash are dropped
    assert "mixed: loaded generation 1: domain 2, ip 1 in" in res.output
    assert _listing(_run(env, "list").output)["mixed"]["counts"] == "domain 2, ip 1"
    for value in ("192.0.2.9", "evil.example.net", "bad.example.org"):
        assert _run(env, "check", value).exit_code == 0, value
    for value in (SHA256, "198.51.100.7", "http://bad.example.org/x.exe"):
        out = _run(env, "check", value)
        assert out.exit_code == 1 and "not listed" in out.output, value

    # without --type, the same feed keeps everything (so the restriction did the dropping)
    everything = _run(env, "load", "--url", f"{url}/mixed.txt", "--name", "all")
    assert everything.exit_code == 0, everything.output
    assert "all: loaded generation 1: cidr 1, domain 2, ip 1, sha256 1, url 1 in" in everything.output


def test_list_shows_counts_last_refresh_and_the_last_error_of_a_500(
    es: Elasticsearch, prefix: str, env: dict[str, str], feed_server: tuple[str, Routes]
) -> None:
    url, served = feed_server
    served.routes["/web.txt"] = (200, b"192.0.2.10\r\nevil.example.net\r\n")
    served.routes["/down.txt"] = (500, b"boom")
    assert _run(env, "load", "--url", f"{url}/web.txt", "--name", "web").exit_code == 0
    before = _listing(_run(env, "list").output)["web"]
    assert before["status"] == "loaded" and re.fullmatch(ISO, before["last_refresh"])
    assert "last_error" not in before

    served.routes["/web.txt"] = (500, b"boom")
    failed = _run(env, "load", "--url", f"{url}/web.txt", "--name", "web")
    assert failed.exit_code == 1
    assert f"web: FAILED: HTTP 500 Internal Server Error from {url}/web.txt" in failed.output
    assert "failed=1" in failed.output.strip().splitlines()[-1]
    assert served.requests.count("/web.txt") == 1 + 4  # first load, then 1 try + 3 retries

    never = _run(env, "load", "--url", f"{url}/down.txt")
    assert never.exit_code == 1 and "down: FAILED: HTTP 500" in never.output

    listed = _listing(_run(env, "list").output)
    assert set(listed) == {"web", "down"}
    web = listed["web"]
    assert web["status"] == "failed" and web["generation"] == "1"
    assert web["counts"] == "domain 1, ip 1"  # the previous version stays listed
    assert web["last_refresh"] == before["last_refresh"]  # the failure is no refresh
    assert re.fullmatch(ISO, web["last_attempt"]) and web["last_attempt"] > web["last_refresh"]
    assert web["last_error"] == f"HTTP 500 Internal Server Error from {url}/web.txt"
    down = listed["down"]
    assert down["status"] == "failed" and down["last_refresh"] == "-" and down["counts"] == "empty"
    assert down["last_error"] == f"HTTP 500 Internal Server Error from {url}/down.txt"
    # and detectors still see the previous version
    assert _run(env, "check", "192.0.2.10").exit_code == 0


def test_check_exit_status_of_the_installed_script(
    es: Elasticsearch, env: dict[str, str], feed_server: tuple[str, Routes]
) -> None:
    url, served = feed_server
    served.routes["/drop.txt"] = (200, b"; Spamhaus DROP\n198.51.100.0/24 ; SBL000001\n")
    loaded = _run(env, "load", "--url", f"{url}/drop.txt", "--name", "drop")
    assert loaded.exit_code == 0 and "drop: loaded generation 1: cidr 1" in loaded.output
    script = Path(sys.executable).with_name("sysmon-detect")
    assert script.exists(), script

    def check(value: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), "intel", "check", value],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    inside = check("198.51.100.200")
    assert inside.returncode == 0, inside.stderr
    assert "198.51.100.200: intel feed=drop cidr=198.51.100.0/24" in inside.stdout
    outside = check("198.51.101.1")
    assert outside.returncode == 1 and outside.stdout.strip() == "198.51.101.1: not listed"

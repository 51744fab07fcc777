"""Refreshing feeds on the real node: atomic swaps under concurrent queries, http sources with
ETag / 304 / 500, cron-style refresh of a configuration, and the ``intel`` CLI."""

from __future__ import annotations

import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from elasticsearch import Elasticsearch, helpers

from detectors.cli import main
from detectors.intel.config import loads_feeds
from detectors.intel.indices import indicators_index, lookup_index, setup_intel
from detectors.intel.loader import (
    feed_from_location,
    load_feed,
    load_items,
    read_state,
    refresh_feeds,
)
from detectors.intel.lookup import find_indicators, lookup_clause
from detectors.intel.model import Indicator
from shipper.es import ClusterSettings

SENTINEL = "203.0.113.77"


def _ip_events(es: Elasticsearch, prefix: str, ips: list[str]) -> str:
    index = f"{prefix}-events-test"
    es.indices.create(
        index=index,
        settings={"number_of_replicas": 0},
        mappings={"dynamic": False, "properties": {"destination": {"properties": {"ip": {"type": "ip"}}}}},
    )
    helpers.bulk(
        es, ({"_index": index, "_id": ip, "destination": {"ip": ip}} for ip in ips), refresh="wait_for"
    )
    return index


def _version(tag: int) -> list[Indicator]:
    """A feed version: the sentinel plus 300 addresses that differ between versions."""
    items = [Indicator(type="ip", value=SENTINEL, line=1)]
    items += [
        Indicator(type="ip", value=f"10.{tag}.{i // 250}.{i % 250 + 1}", line=i + 2) for i in range(300)
    ]
    return items


def test_queries_during_refreshes_never_miss_the_sentinel(es: Elasticsearch, prefix: str) -> None:
    setup_intel(es, prefix)
    index = _ip_events(es, prefix, [SENTINEL, "10.1.0.1", "10.2.0.1"])
    load_items(es, _version(1), name="swap", prefix=prefix, chunk_size=40)
    refreshes = 10
    done = threading.Event()
    errors: list[BaseException] = []
    generations: list[int | None] = []

    def writer() -> None:
        try:
            for i in range(refreshes):
                res = load_items(
                    es, _version(2 if i % 2 == 0 else 1), name="swap", prefix=prefix, chunk_size=40
                )
                generations.append(res.generation)
                assert res.status == "loaded", res.error
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    queries = misses = 0
    try:
        while queries < 2_000 and (not done.is_set() or queries < 20):
            clause = lookup_clause(es, "destination.ip", prefix=prefix)
            hits = es.count(
                index=index, query={"bool": {"filter": [clause, {"term": {"destination.ip": SENTINEL}}]}}
            )
            queries += 1
            if hits["count"] != 1:
                misses += 1
            # exactly one version is visible at a time: never both halves, never neither
            both = es.count(
                index=index,
                query={"bool": {"filter": [clause], "must_not": [{"term": {"destination.ip": SENTINEL}}]}},
            )
            assert both["count"] == 1
    finally:
        thread.join()
    assert not errors, errors
    assert misses == 0, f"sentinel missing in {misses} of {queries} queries"
    assert generations == list(range(2, 2 + refreshes))
    # the final version is version 1 (refresh 10 is odd): version 2's addresses are gone
    assert find_indicators(es, "destination.ip", ["10.2.0.1"], prefix=prefix) == {}
    assert "10.1.0.1" in find_indicators(es, "destination.ip", ["10.1.0.1"], prefix=prefix)


class _Feed:
    """What the local feed server answers: a body with an ETag, 304 on a matching
    If-None-Match, or an error status."""

    def __init__(self) -> None:
        self.body = b""
        self.etag = '"v1"'
        self.fail: int | None = None
        self.requests: list[tuple[str, str | None]] = []


@pytest.fixture
def feed_server() -> Iterator[tuple[str, _Feed]]:
    state = _Feed()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append((self.path, self.headers.get("If-None-Match")))
            if state.fail is not None:
                self.send_response(state.fail)
                self.end_headers()
                return
            if self.headers.get("If-None-Match") == state.etag:
                self.send_response(304)
                self.send_header("ETag", state.etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(state.body)))
            self.send_header("ETag", state.etag)
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_http_feed_etag_304_and_500(
    es: Elasticsearch, prefix: str, tmp_path: Path, feed_server: tuple[str, _Feed]
) -> None:
    url, served = feed_server
    setup_intel(es, prefix)
    index = _ip_events(es, prefix, ["192.0.2.10", "192.0.2.11"])
    served.body = b"# web feed\r\n192.0.2.10\r\nevil.example.net\r\n"
    feed = feed_from_location(f"{url}/feed.txt", name="web", retries=0, timeout=10)

    first = load_feed(es, feed, prefix=prefix, cache_dir=tmp_path)
    assert first.status == "loaded" and first.generation == 1 and first.counts == {"ip": 1, "domain": 1}
    state = read_state(es, "web", prefix=prefix)
    assert (
        state is not None
        and state.doc["source"]["etag"] == '"v1"'
        and state.doc["source"]["http_status"] == 200
    )

    second = load_feed(es, feed, prefix=prefix, cache_dir=tmp_path)
    assert second.status == "not_modified" and second.generation == 1
    assert served.requests[-1] == ("/feed.txt", '"v1"')
    state = read_state(es, "web", prefix=prefix)
    assert state is not None
    assert state.doc["status"] == "not_modified" and state.doc["generation"] == 1
    assert state.doc["source"]["http_status"] == 304
    ids = es.search(index=indicators_index(prefix), query={"term": {"intel.feed": "web"}}, size=10)
    assert {h["_source"]["intel"]["generation"] for h in ids["hits"]["hits"]} == {1}  # not re-indexed

    served.fail = 500
    third = load_feed(es, feed, prefix=prefix, cache_dir=tmp_path)
    assert third.status == "failed" and third.error is not None and "500" in third.error
    state = read_state(es, "web", prefix=prefix)
    assert state is not None
    assert state.doc["status"] == "failed" and "HTTP 500" in state.doc["last_error"]
    assert state.doc["generation"] == 1 and state.doc["last_refresh"] == state.doc["last_refresh"]
    # the previous version is still what detectors see
    clause = lookup_clause(es, "destination.ip", prefix=prefix)
    hits = es.search(index=index, query=clause)["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["192.0.2.10"]

    # the feed changes: a new body with a new ETag replaces the list, and clears the error
    served.fail = None
    served.body = b"192.0.2.11\n"
    served.etag = '"v2"'
    fourth = load_feed(es, feed, prefix=prefix, cache_dir=tmp_path)
    assert fourth.status == "loaded" and fourth.generation == 2
    state = read_state(es, "web", prefix=prefix)
    assert state is not None and state.doc["last_error"] is None
    hits = es.search(index=index, query=lookup_clause(es, "destination.ip", prefix=prefix))["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["192.0.2.11"]


def test_refresh_goes_on_after_a_failing_feed_and_respects_intervals(
    es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    setup_intel(es, prefix)
    (tmp_path / "ok.txt").write_text("192.0.2.1\n", encoding="utf-8")
    feeds = loads_feeds(
        """
feeds:
  - {name: missing, location: nowhere.txt, refresh: 1h}
  - {name: ok, location: ok.txt, refresh: 1h}
  - {name: disabled, location: ok.txt, enabled: false}
""",
        base_dir=tmp_path,
    )
    results = refresh_feeds(es, feeds, prefix=prefix, cache_dir=tmp_path / "cache")
    assert [(r.feed, r.status) for r in results] == [("missing", "failed"), ("ok", "loaded")]
    missing = read_state(es, "missing", prefix=prefix)
    assert missing is not None and "no such file" in missing.doc["last_error"]
    assert "generation_id" not in missing.doc  # a failed feed has no list to look up
    again = refresh_feeds(es, feeds, prefix=prefix, cache_dir=tmp_path / "cache")
    assert [r.status for r in again] == ["skipped", "skipped"]
    forced = refresh_feeds(es, feeds, prefix=prefix, cache_dir=tmp_path / "cache", force=True)
    assert [r.status for r in forced] == ["failed", "loaded"]


def test_cli_load_list_check_remove_refresh(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path
) -> None:
    env = {
        "ES_URL": es_settings.url,
        "SYSMON_INDEX_PREFIX": prefix,
        "SYSMON_INTEL_CACHE": str(tmp_path / "c"),
    }
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(main, ["intel", *args], env=env, catch_exceptions=False)

    assert run("setup").exit_code == 0
    bad = tmp_path / "bad-ips.txt"
    bad.write_text("198.51.100.0/24\n203.0.113.9\nnot an ip at all\n", encoding="utf-8")
    allow = tmp_path / "allow.txt"
    allow.write_text("198.51.100.10\n", encoding="utf-8")
    loaded = run("load", "--file", str(bad))
    assert loaded.exit_code == 0, loaded.output
    assert loaded.output.strip().splitlines()[-1].startswith("summary: feeds=1 loaded=1")
    assert "issues=1" in loaded.output
    assert run("load", "--file", str(allow), "--kind", "allow", "--name", "mine").exit_code == 0

    listed = run("list")
    assert listed.exit_code == 0
    assert "bad-ips\tkind=intel" in listed.output and "mine\tkind=allow" in listed.output

    inside = run("check", "198.51.100.10")
    assert inside.exit_code == 0
    assert "intel feed=bad-ips cidr=198.51.100.0/24" in inside.output and "allow feed=mine" in inside.output
    assert run("check", "203.0.113.9").exit_code == 0
    assert run("check", "203.0.113.10").exit_code == 1

    removed = run("remove", "bad-ips")
    assert removed.exit_code == 0 and "removed bad-ips" in removed.output
    assert run("check", "203.0.113.9").exit_code == 1
    assert run("remove", "bad-ips").exit_code == 1
    assert es.count(index=indicators_index(prefix), query={"term": {"intel.feed": "bad-ips"}})["count"] == 0

    config = tmp_path / "feeds.yml"
    config.write_text(
        f"feeds:\n  - {{name: gone, location: {tmp_path / 'nope.txt'}}}\n"
        f"  - {{name: back, location: {bad}}}\n",
        encoding="utf-8",
    )
    refreshed = run("refresh", "--config", str(config))
    assert refreshed.exit_code == 1
    assert "gone: FAILED" in refreshed.output
    assert refreshed.output.strip().splitlines()[-1].startswith("summary: feeds=2 loaded=1")
    assert run("check", "203.0.113.9").exit_code == 0
    assert run("load", "back", "--config", str(config)).exit_code == 0
    usage = run("load")
    assert usage.exit_code == 2


def test_a_feed_that_breaks_mid_load_keeps_its_previous_generation(
    es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    setup_intel(es, prefix)
    index = _ip_events(es, prefix, ["192.0.2.10"])
    path = tmp_path / "feed.txt"
    path.write_text("192.0.2.10\n", encoding="utf-8")
    feed = feed_from_location(str(path), name="brittle")
    assert load_feed(es, feed, prefix=prefix, cache_dir=tmp_path).status == "loaded"
    with zipfile.ZipFile(path, "w") as zf:  # a zip of two feed files cannot be read
        zf.writestr("a.txt", "192.0.2.99\n")
        zf.writestr("b.txt", "192.0.2.98\n")
    broken = load_feed(es, feed, prefix=prefix, cache_dir=tmp_path)
    assert broken.status == "failed" and broken.error is not None and "zip" in broken.error
    state = read_state(es, "brittle", prefix=prefix)
    assert state is not None and state.doc["generation"] == 1 and "zip" in state.doc["last_error"]
    assert es.count(index=index, query=lookup_clause(es, "destination.ip", prefix=prefix))["count"] == 1
    es.indices.refresh(index=lookup_index(prefix))
    assert es.count(index=lookup_index(prefix), query={"term": {"generation": 2}})["count"] == 0


def test_a_rejected_indicator_document_is_an_issue_not_a_failed_load(es: Elasticsearch, prefix: str) -> None:
    """Elasticsearch refusing one indicator document (here a port beyond a long)
    makes an issue; the lookup chunks, the added-indicator chunks queued for the retro-hunt
    included, are whole, so the load succeeds and matches."""
    setup_intel(es, prefix)
    load_items(es, [Indicator(type="ip", value="198.51.100.1", line=1)], name="odd", prefix=prefix)
    items = [
        Indicator(type="ip", value="198.51.100.1", line=1),
        Indicator(type="ip", value="198.51.100.2", line=2, ports=(2**63,)),
    ]
    res = load_items(es, items, name="odd", prefix=prefix)
    assert res.status == "loaded", res.error
    assert res.issue_count == 1 and "rejected" in res.issues[0].message
    state = read_state(es, "odd", prefix=prefix)
    assert state is not None and state.doc.get("retro_pending")  # the added IP is queued

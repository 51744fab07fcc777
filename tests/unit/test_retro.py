"""The retro-hunt's pure parts: the queue entry, the alert annotation, which rules hunt which
feed, and the feed setting ``retro_window``."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detectors.intel.config import loads_feeds
from detectors.intel.lookup import lookup_clause
from detectors.loader import BUILTIN_DIR, load_rules
from detectors.model import Exceptions, IntelClause
from detectors.retro import Pending, hunt_rules, marker
from detectors.retro.hunt import rule_wants

ENTRY = {
    "generation": 4,
    "generation_id": "4-abcd",
    "listed_at": "2026-12-01T10:00:00.000Z",
    "chunks": {"sha256": ["f:4-abcd:added:sha256:0"], "ip": ["f:4-abcd:added:ip:0", "f:4-abcd:added:ip:1"]},
    "counts": {"sha256": 3, "ip": 70_000},
    "window_seconds": 7 * 86400,
}


def test_pending_entry_round_trip() -> None:
    p = Pending.from_doc("f", ENTRY)
    assert p.id == "hunt:f:4-abcd" and p.total == 70_003 and len(p.chunk_ids) == 3
    assert p.listed_at == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert p.since == datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert Pending.from_doc("f", {**ENTRY, "window_seconds": None}).since is None


def _alert(matched: list[str], indicator: dict[str, Any]) -> dict[str, Any]:
    return {"alert": {"intel": {"matched_values": matched}}, "threat": {"indicator": indicator}}


def test_marker_says_how_long_the_event_predates_the_listing() -> None:
    p = Pending.from_doc("f", ENTRY)
    mark = marker(p)
    shared = {"type": "file"}
    doc = _alert(["ab" * 32], shared)
    assert mark(doc, {"@timestamp": "2026-11-20T08:30:00.000Z"})
    retro = doc["alert"]["retro"]
    assert retro["predates_listing"] is True
    assert retro["predates_by_seconds"] == int(timedelta(days=11, hours=1, minutes=30).total_seconds())
    assert retro["predates_by"] == "11d1h30m"
    assert (retro["feed"], retro["generation"], retro["hunt"]) == ("f", 4, "hunt:f:4-abcd")
    assert doc["threat"]["indicator"] == {"type": "file", "first_seen": "2026-12-01T10:00:00.000Z"}
    assert shared == {"type": "file"}  # the enrichment's indicator (shared by a page) is untouched
    # the feed's own first_seen is kept; an event after the listing does not predate it
    doc = _alert(["x"], {"first_seen": "2024-01-01T00:00:00Z"})
    assert mark(doc, {"@timestamp": "2026-12-02T00:00:00.000Z"})
    assert doc["threat"]["indicator"]["first_seen"] == "2024-01-01T00:00:00Z"
    assert doc["alert"]["retro"]["predates_listing"] is False
    assert doc["alert"]["retro"]["predates_by_seconds"] is None


def test_marker_drops_a_match_no_current_listing_backs() -> None:
    assert not marker(Pending.from_doc("f", ENTRY))(_alert([], {}), {"@timestamp": "2026-11-20T08:30:00Z"})


def test_which_rules_hunt_which_feeds() -> None:
    rules = hunt_rules(load_rules([BUILTIN_DIR], strict=True).rules)
    assert {r.type for r in rules} == {"intel_match"}
    by_id = {r.id: r for r in rules}
    p = Pending.from_doc("f", {**ENTRY, "chunks": {"sha256": ["c"]}})
    assert rule_wants(by_id["intel-hash-executed"], p)
    assert not rule_wants(by_id["intel-ip-connection"], p)  # no IP was added
    ips = Pending.from_doc("f", {**ENTRY, "chunks": {"cidr": ["c"]}})
    assert rule_wants(by_id["intel-ip-connection"], ips) and rule_wants(by_id["intel-dns-answer-ip"], ips)
    # entries removed from an allowlist matter only to rules with allowlist exceptions
    removed = Pending.from_doc("lab", {**ENTRY, "role": "removed", "chunks": {"image_path": ["c"]}})
    assert removed.role == "removed" and not any(rule_wants(r, removed) for r in rules)
    custom = replace(
        by_id["intel-hash-executed"],
        exceptions=Exceptions(allowlists=(IntelClause(("process.executable",)),)),
    )
    assert rule_wants(custom, removed)
    only_other = replace(
        custom, exceptions=Exceptions(allowlists=(IntelClause(("process.executable",), ("x",)),))
    )
    assert not rule_wants(only_other, removed)


def test_lookup_clause_over_given_chunks_needs_no_cluster() -> None:
    chunks = {"f": {"ip": ["f:1:added:ip:0"], "sha256": ["f:1:added:sha256:0"]}, "g": {"ip": ["g:x"]}}
    clause = lookup_clause(None, "destination.ip", prefix="p", chunks=chunks, feeds=["f"])  # type: ignore[arg-type]
    assert clause == {
        "bool": {
            "should": [
                {
                    "terms": {
                        "destination.ip": {
                            "index": "p-intel-lookup",
                            "id": "f:1:added:ip:0",
                            "path": "values",
                        }
                    }
                }
            ],
            "minimum_should_match": 1,
        }
    }
    assert lookup_clause(None, "dns.question.name", chunks=chunks) == {"match_none": {}}  # type: ignore[arg-type]


def test_feed_retro_window_setting() -> None:
    feeds = loads_feeds(
        "feeds:\n  - name: a\n    location: /x\n    retro_window: 30d\n  - name: b\n    location: /y\n"
    )
    assert feeds[0].retro_window == timedelta(days=30) and feeds[1].retro_window is None
    assert feeds[0].masked()["retro_window"] == "30d"
    with pytest.raises(Exception, match=r"<string> \(line 4\): retro_window"):
        loads_feeds("feeds:\n  - name: a\n    location: /x\n    retro_window: soon\n")

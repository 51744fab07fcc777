"""Suppression-group figures without a cluster: the key, the bucket, the clauses that select a
group's events, and when an aggregation's figures are exact."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from detectors.builders.groups import (
    GroupRef,
    bucket_start,
    figures_from_response,
    group_key,
    group_query,
    part_clause,
    part_terms,
    tally,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
FIELDS = ("host.name", "user.name")


def test_group_key_missing_multi_and_dotted() -> None:
    assert group_key({"host": {"name": "H"}}, FIELDS) == ["H", ""]
    assert group_key({"host": {"name": "H"}, "user": {"name": ["a", "b"]}}, FIELDS) == ["H", "a|b"]
    assert group_key({"host.name": "H", "user": {"name": [None, 5]}}, FIELDS) == ["H", "5"]
    assert group_key({"user": {"name": []}}, FIELDS) == ["", ""]


def test_bucket_start() -> None:
    assert bucket_start("2026-11-27T10:59:59.999Z", 3600, NOW) == int(
        datetime(2026, 11, 27, 10, tzinfo=UTC).timestamp()
    )
    assert bucket_start("2026-11-27T11:00:00.000Z", 3600, NOW) == int(NOW.timestamp()) - 3600
    assert bucket_start(None, 3600, NOW) == int(NOW.timestamp())


def test_part_terms_and_clauses() -> None:
    assert part_terms("a") == ["a"]
    assert part_terms("a|b|c") == ["a", "a|b", "a|b|c", "b", "b|c", "c"]
    assert part_clause("f", "x") == {"term": {"f": "x"}}
    assert part_clause("f", "a|b") == {"terms": {"f": ["a", "a|b", "b"]}}
    missing = part_clause("f", "")
    assert missing["bool"]["minimum_should_match"] == 1
    assert {"bool": {"must_not": [{"exists": {"field": "f"}}]}} in missing["bool"]["should"]
    assert {"term": {"f": ""}} in missing["bool"]["should"]


def test_group_query_keeps_rule_filter_and_exceptions() -> None:
    base = {"bool": {"filter": [{"terms": {"event.code": ["10"]}}], "must_not": [{"terms": {"x": ["y"]}}]}}
    g = GroupRef("id", "ix", ("H", ""), 7200)
    q = group_query(base, FIELDS, g, 3600)
    flt = q["bool"]["filter"]
    assert flt[0] == {"terms": {"event.code": ["10"]}}
    assert flt[1] == {"range": {"@timestamp": {"gte": 7_200_000, "lt": 10_800_000, "format": "epoch_millis"}}}
    assert flt[2] == {"term": {"host.name": "H"}}
    assert q["bool"]["must_not"] == base["bool"]["must_not"]
    assert base["bool"]["filter"] == [{"terms": {"event.code": ["10"]}}]  # not mutated
    assert not any("event.ingested" in str(c) for c in flt)


def _resp(total: int, n: list[int], e: list[int]) -> dict[str, Any]:
    aggs: dict[str, Any] = {
        "first": {"value": 1_764_237_600_000.0},
        "last": {"value": 1_764_237_660_500.0},
    }
    for i, (a, b) in enumerate(zip(n, e, strict=True)):
        aggs[f"n{i}"] = {"value": a}
        aggs[f"e{i}"] = {"doc_count": b}
    return {"hits": {"total": {"value": total, "relation": "eq"}}, "aggregations": aggs}


def test_figures_from_response_exact_or_not() -> None:
    assert figures_from_response(_resp(3, [3, 0], [3, 0]), ("H", "")) == {
        "count": 3,
        "first_seen": "2025-11-27T10:00:00.000Z",
        "last_seen": "2025-11-27T10:01:00.500Z",
    }
    # an event with two values of a group field: its key is not ours
    assert figures_from_response(_resp(3, [4, 0], [3, 0]), ("H", "")) is None
    # an event holding "" among other values (matches the missing clause's term)
    assert figures_from_response(_resp(3, [3, 2], [3, 1]), ("H", "")) is None
    # a key component with "|" is always counted from the sources
    assert figures_from_response(_resp(3, [3, 6], [3, 3]), ("H", "a|b")) is None
    assert figures_from_response(_resp(0, [0, 0], [0, 0]), ("H", "x"))["count"] == 0  # type: ignore[index]


def test_tally_counts_only_the_exact_key() -> None:
    srcs = [
        {"@timestamp": "2026-11-27T10:05:00Z", "host": {"name": "H"}, "user": {"name": ["a", "b"]}},
        {"@timestamp": "2026-11-27T10:01:00.250Z", "host": {"name": "H"}, "user": {"name": ["a", "b"]}},
        {"@timestamp": "2026-11-27T10:00:00Z", "host": {"name": "H"}, "user": {"name": ["b", "a"]}},
        {"@timestamp": "2026-11-27T10:00:00Z", "host": {"name": "H"}, "user": {"name": "a|b"}},
        {"@timestamp": "2026-11-27T10:00:00Z", "host": {"name": "H"}, "user": {"name": "a"}},
    ]
    assert tally(srcs, FIELDS, ("H", "a|b")) == {
        "count": 3,
        "first_seen": "2026-11-27T10:00:00.000Z",
        "last_seen": "2026-11-27T10:05:00.000Z",
    }
    assert tally(srcs, FIELDS, ("H", "a")) == {
        "count": 1,
        "first_seen": "2026-11-27T10:00:00.000Z",
        "last_seen": "2026-11-27T10:00:00.000Z",
    }
    assert tally(srcs, FIELDS, ("H", "z"))["count"] == 0

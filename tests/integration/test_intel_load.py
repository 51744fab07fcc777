"""Intel feeds into Elasticsearch on the real node: fixture loads, the lookup clause against
ECS-shaped events, allowlists, chunked lists of more than 65,536 entries, enrichment lookups."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch, helpers

from detectors.intel.indices import feeds_index, indicators_index, lookup_index, setup_intel
from detectors.intel.loader import feed_from_location, load_feed, read_state
from detectors.intel.lookup import find_indicators, is_listed, lookup_clause
from detectors.intel.model import Indicator
from detectors.intel.parsing import parse_path
from detectors.retro import pending_hunts

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "intel"
FIXTURE_FILES = [*sorted(p for p in FIXTURES.iterdir() if p.is_file()), FIXTURES / "misp_feed"]

SHA_BAD = "a" * 64
MD5_BAD = "b" * 32
SHA1_BAD = "c" * 40

INTEL = f"""# test intel list
203.0.113.7
198.51.100.0/24
evil.example.com
badcorp.example
{SHA_BAD.upper()}
{MD5_BAD}
{SHA1_BAD}
http://198.18.0.9/payload.bin
"""
ALLOW = """# allowlist
198.51.100.10
C:\\Windows\\System32\\svchost.exe
trusted.exe
"""

EVENT_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "tag": {"type": "keyword"},
        "destination": {"properties": {"ip": {"type": "ip"}}},
        "dns": {
            "properties": {
                "question": {
                    "properties": {"name": {"type": "keyword"}, "registered_domain": {"type": "keyword"}}
                }
            }
        },
        "related": {"properties": {"hash": {"type": "keyword"}, "ip": {"type": "ip"}}},
        "process": {
            "properties": {
                "executable": {
                    "type": "keyword",
                    "fields": {"caseless": {"type": "keyword", "normalizer": "caseless"}},
                },
                "name": {
                    "type": "keyword",
                    "fields": {"caseless": {"type": "keyword", "normalizer": "caseless"}},
                },
                "hash": {
                    "properties": {
                        "md5": {"type": "keyword"},
                        "sha1": {"type": "keyword"},
                        "sha256": {"type": "keyword"},
                    }
                },
            }
        },
        "file": {"properties": {"hash": {"properties": {"sha256": {"type": "keyword"}}}}},
    },
}

EVENTS: list[dict[str, Any]] = [
    {"tag": "ip", "destination": {"ip": "203.0.113.7"}},
    {"tag": "cidr", "destination": {"ip": "198.51.100.20"}},
    {"tag": "cidr-allowed", "destination": {"ip": "198.51.100.10"}},
    {"tag": "clean-ip", "destination": {"ip": "8.8.8.8"}},
    {"tag": "derived-ip", "destination": {"ip": "198.18.0.9"}},
    {
        "tag": "dns-exact",
        "dns": {"question": {"name": "evil.example.com", "registered_domain": "example.com"}},
    },
    {
        "tag": "dns-reg",
        "dns": {"question": {"name": "www.badcorp.example", "registered_domain": "badcorp.example"}},
    },
    {
        "tag": "dns-clean",
        "dns": {"question": {"name": "www.example.org", "registered_domain": "example.org"}},
    },
    {
        "tag": "proc-sha256",
        "process": {"executable": "C:\\Temp\\x.exe", "name": "x.exe", "hash": {"sha256": SHA_BAD}},
        "related": {"hash": [SHA_BAD]},
    },
    {"tag": "file-sha256", "file": {"hash": {"sha256": SHA_BAD}}},
    {"tag": "proc-md5", "process": {"hash": {"md5": MD5_BAD}}, "related": {"hash": [MD5_BAD]}},
    {"tag": "proc-sha1", "process": {"hash": {"sha1": SHA1_BAD}}},
    {
        "tag": "proc-sha256-allowed-path",
        "process": {
            "executable": "C:\\WINDOWS\\system32\\SVCHOST.EXE",
            "name": "svchost.exe",
            "hash": {"sha256": SHA_BAD},
        },
    },
    {
        "tag": "proc-sha256-allowed-name",
        "process": {
            "executable": "D:\\apps\\Trusted.EXE",
            "name": "Trusted.EXE",
            "hash": {"sha256": SHA_BAD},
        },
    },
]


def _events(es: Elasticsearch, prefix: str) -> str:
    index = f"{prefix}-events-test"
    es.indices.create(
        index=index,
        settings={
            "number_of_replicas": 0,
            "analysis": {"normalizer": {"caseless": {"type": "custom", "filter": ["lowercase"]}}},
        },
        mappings=EVENT_MAPPING,
    )
    helpers.bulk(es, ({"_index": index, "_id": e["tag"], **e} for e in EVENTS), refresh="wait_for")
    return index


def _tags(es: Elasticsearch, index: str, query: dict[str, Any]) -> set[str]:
    resp = es.search(index=index, query=query, size=100, source_includes=["tag"])
    return {h["_source"]["tag"] for h in resp["hits"]["hits"]}


def _load_text(es: Elasticsearch, prefix: str, tmp_path: Path, name: str, text: str, **kw: Any) -> Any:
    path = tmp_path / f"{name}.txt"
    path.write_text(text, encoding="utf-8")
    res = load_feed(
        es, feed_from_location(str(path), name=name, **kw), prefix=prefix, cache_dir=tmp_path / "c"
    )
    assert res.status == "loaded", res.error
    return res


def _expected_counts(path: Path) -> Counter[str]:
    seen: set[tuple[str, str]] = set()
    for item in parse_path(path, source_name=path.name):
        if isinstance(item, Indicator):
            seen.add(item.key)
    return Counter(t for t, _ in seen)


def test_every_fixture_format_loads_with_its_counts(es: Elasticsearch, prefix: str, tmp_path: Path) -> None:
    setup_intel(es, prefix)
    for path in FIXTURE_FILES:
        name = path.name.replace(".", "_")
        res = load_feed(es, feed_from_location(str(path), name=name), prefix=prefix, cache_dir=tmp_path)
        expected = _expected_counts(path)
        assert res.status == "loaded", (path, res.error)
        assert res.counts == dict(expected), path
        assert sum(expected.values()) > 0
        # the indicator documents, by type
        aggs = es.search(
            index=indicators_index(prefix),
            size=0,
            query={"term": {"intel.feed": name}},
            aggs={"t": {"terms": {"field": "intel.type", "size": 20}}},
        )["aggregations"]["t"]["buckets"]
        assert {b["key"]: b["doc_count"] for b in aggs} == dict(expected), path
        # the lookup chunks hold the same values
        state = read_state(es, name, prefix=prefix)
        assert state is not None and state.doc["counts"] == dict(expected)
        for t, ids in state.doc["chunks"].items():
            values = [
                v for cid in ids for v in es.get(index=lookup_index(prefix), id=cid)["_source"]["values"]
            ]
            assert len(values) == len(set(values)) == expected[t]
    # a few anchors written from the fixtures themselves
    drop = read_state(es, "spamhaus_drop_txt", prefix=prefix)
    assert drop is not None and drop.doc["counts"] == {"cidr": 3, "ip": 1}
    assert drop.doc["issues"] == 1  # 203.0.113.0/33
    assert es.count(index=feeds_index(prefix))["count"] == len(FIXTURE_FILES)


def test_lookup_clause_matches_events_and_allowlists_exclude(
    es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    setup_intel(es, prefix)
    events = _events(es, prefix)
    _load_text(es, prefix, tmp_path, "bad", INTEL)
    _load_text(es, prefix, tmp_path, "good", ALLOW, kind="allow")

    def q(field: str, **kw: Any) -> set[str]:
        return _tags(es, events, lookup_clause(es, field, prefix=prefix, **kw))

    assert q("destination.ip") == {"ip", "cidr", "cidr-allowed", "derived-ip"}
    assert q("dns.question.name") == {"dns-exact"}
    assert q("dns.question.registered_domain") == {"dns-reg"}
    sha_hits = {"proc-sha256", "proc-sha256-allowed-path", "proc-sha256-allowed-name"}
    assert q("process.hash.sha256") == sha_hits
    assert q("file.hash.sha256") == {"file-sha256"}
    assert q("process.hash.md5") == {"proc-md5"}
    assert q("process.hash.sha1") == {"proc-sha1"}
    assert q("related.hash") == {"proc-sha256", "proc-md5"}
    assert q("destination.ip", feeds=["good"]) == set()  # an allowlist is not intel
    assert lookup_clause(es, "destination.ip", prefix=prefix, feeds=["nope"]) == {"match_none": {}}
    assert q("destination.ip", kind="allow") == {"cidr-allowed"}
    assert q("process.executable", kind="allow") == {"proc-sha256-allowed-path"}
    assert q("process.name", kind="allow") == {"proc-sha256-allowed-name"}

    # intel minus allowlists, as a detector combines them
    def detect(field: str, allow_fields: list[str]) -> set[str]:
        query = {
            "bool": {
                "filter": [lookup_clause(es, field, prefix=prefix)],
                "must_not": [lookup_clause(es, f, prefix=prefix, kind="allow") for f in allow_fields],
            }
        }
        return _tags(es, events, query)

    assert detect("destination.ip", ["destination.ip"]) == {"ip", "cidr", "derived-ip"}
    assert detect("process.hash.sha256", ["process.executable", "process.name"]) == {"proc-sha256"}

    # enrichment
    found = find_indicators(es, "destination.ip", ["203.0.113.7", "198.51.100.20", "8.8.8.8"], prefix=prefix)
    assert set(found) == {"203.0.113.7", "198.51.100.20"}
    cidr_doc = found["198.51.100.20"][0]
    assert cidr_doc["intel"]["cidr"] == "198.51.100.0/24" and cidr_doc["intel"]["feed"] == "bad"
    assert found["203.0.113.7"][0]["threat"]["indicator"]["ip"] == "203.0.113.7"
    hashes = find_indicators(es, "related.hash", [SHA_BAD.upper(), MD5_BAD], prefix=prefix)
    assert hashes[SHA_BAD.upper()][0]["threat"]["indicator"]["file"]["hash"]["sha256"] == SHA_BAD
    assert MD5_BAD in hashes
    derived = find_indicators(es, "destination.ip", ["198.18.0.9"], prefix=prefix)["198.18.0.9"][0]
    assert derived["intel"]["derived"] is True
    allowed = find_indicators(
        es, "process.executable", ["C:\\WINDOWS\\system32\\SVCHOST.EXE"], kind="allow", prefix=prefix
    )
    assert allowed["C:\\WINDOWS\\system32\\SVCHOST.EXE"][0]["intel"]["kind"] == "allow"

    # is_listed: both kinds, CIDR containment, case of hashes
    listed = {(d["intel"]["feed"], d["intel"]["type"]) for d in is_listed(es, "198.51.100.10", prefix=prefix)}
    assert listed == {("bad", "cidr"), ("good", "ip")}
    assert [d["intel"]["type"] for d in is_listed(es, SHA_BAD.upper(), prefix=prefix)] == ["sha256"]
    assert is_listed(es, "8.8.8.8", prefix=prefix) == []


def test_lists_longer_than_max_terms_count_are_chunked(
    es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    setup_intel(es, prefix)
    n = 70_000
    values = [f"{i:064x}" for i in range(1, n + 1)]
    path = tmp_path / "big.txt"
    path.write_text("\n".join(values) + "\n", encoding="utf-8")
    res = load_feed(es, feed_from_location(str(path), name="big"), prefix=prefix, cache_dir=tmp_path)
    assert res.status == "loaded" and res.counts == {"sha256": n}
    state = read_state(es, "big", prefix=prefix)
    assert state is not None
    chunks = state.doc["chunks"]["sha256"]
    assert len(chunks) == 2 and state.doc["chunk_counts"]["sha256"] == [50_000, 20_000]
    last_chunk = es.get(index=lookup_index(prefix), id=chunks[-1])["_source"]["values"]
    assert values[-1] in last_chunk and values[0] not in last_chunk
    index = f"{prefix}-events-test"
    es.indices.create(
        index=index,
        mappings=EVENT_MAPPING,
        settings={
            "number_of_replicas": 0,
            "analysis": {"normalizer": {"caseless": {"type": "custom", "filter": ["lowercase"]}}},
        },
    )
    docs = [
        {"_index": index, "_id": "last", "tag": "last", "process": {"hash": {"sha256": values[-1]}}},
        {"_index": index, "_id": "first", "tag": "first", "process": {"hash": {"sha256": values[0]}}},
        {"_index": index, "_id": "none", "tag": "none", "process": {"hash": {"sha256": "f" * 64}}},
    ]
    helpers.bulk(es, docs, refresh="wait_for")
    clause = lookup_clause(es, "process.hash.sha256", prefix=prefix)
    assert len(clause["bool"]["should"]) == 2
    assert _tags(es, index, clause) == {"last", "first"}
    assert es.count(index=indicators_index(prefix), query={"term": {"intel.feed": "big"}})["count"] == n


@pytest.mark.parametrize("chunk_size", [3])
def test_removed_indicators_disappear_and_old_generations_are_deleted(
    es: Elasticsearch, prefix: str, tmp_path: Path, chunk_size: int
) -> None:
    setup_intel(es, prefix)
    events = _events(es, prefix)
    v1 = "203.0.113.7\n198.51.100.0/24\n192.0.2.1\n192.0.2.2\n"
    v2 = "203.0.113.7\n192.0.2.3\n"
    path = tmp_path / "rot.txt"
    feed = feed_from_location(str(path), name="rot")

    def load(text: str) -> Any:
        path.write_text(text, encoding="utf-8")
        res = load_feed(es, feed, prefix=prefix, cache_dir=tmp_path, chunk_size=chunk_size, grace=0)
        assert res.status == "loaded", res.error
        return res

    load(v1)
    assert _tags(es, events, lookup_clause(es, "destination.ip", prefix=prefix)) >= {"ip", "cidr"}
    load(v2)
    assert _tags(es, events, lookup_clause(es, "destination.ip", prefix=prefix)) == {"ip"}
    assert find_indicators(es, "destination.ip", ["198.51.100.20"], prefix=prefix) == {}
    assert es.count(index=indicators_index(prefix), query={"term": {"intel.feed": "rot"}})["count"] == 2
    for _ in range(3):
        load(v1)
        load(v2)
    # only the current generation's chunks and the previous one's remain (grace 0)
    state = read_state(es, "rot", prefix=prefix)
    assert state is not None and state.doc["generation"] == 8
    assert [g["generation"] for g in state.doc["retired"]] == [7]
    lists = {"term": {"feed": "rot"}}
    added = {"term": {"role": "added"}}  # the retro-hunt's chunks: they live until hunted
    gens = es.search(
        index=lookup_index(prefix),
        size=0,
        query={"bool": {"filter": [lists], "must_not": [added]}},
        aggs={"g": {"terms": {"field": "generation"}}},
    )["aggregations"]["g"]["buckets"]
    assert sorted(b["key"] for b in gens) == [7, 8]
    pending = pending_hunts(es, prefix)
    assert len(pending) == 8  # every load added something: v1 and v2 differ both ways
    queued = sorted(c for p in pending for c in p.chunk_ids)
    hits = es.search(index=lookup_index(prefix), query={"bool": {"filter": [lists, added]}}, size=100)
    assert sorted(h["_id"] for h in hits["hits"]["hits"]) == queued

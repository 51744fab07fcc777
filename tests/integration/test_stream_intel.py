"""Intel in memory on the real node: for every field type the in-memory answer equals what
Elasticsearch answers with ``lookup_clause`` on an index with the real event mapping (feeds and
types filters, allowlists, unnormalised values); refreshes are picked up by ``poll``; a failed
load keeps the old snapshot and says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch, helpers

from detectors.intel.indices import feeds_index, lookup_index, setup_intel
from detectors.intel.loader import feed_from_location, load_feed, load_items, read_state
from detectors.intel.lookup import FIELD_TYPES, lookup_clause
from detectors.intel.model import INDICATOR_TYPES, Indicator
from detectors.stream.intel import IntelCache, IntelMemory
from shipper.sysmon.fields import EMITTED_FIELDS
from shipper.templates import mappings_dir

SHA = "a1" * 32
MD5 = "b2" * 16
SHA1 = "c3" * 20
BAD = f"""203.0.113.7
198.51.100.0/24
2001:db8:bad::/48
2001:db8::7
evil.example.com
badcorp.example
{SHA.upper()}
{MD5}
{SHA1}
C:\\Users\\Public\\Evil.exe
dropper.exe
http://198.18.0.9/payload.bin
"""
OTHER = """192.0.2.0/25
other.example.net
C:\\Temp\\Second.exe
install.exe
"""
ALLOW = f"""198.51.100.10
2001:db8:bad::10
C:\\Windows\\System32\\svchost.exe
trusted.exe
{MD5}
"""
LONG = "c:\\long\\" + "a" * 8200 + ".exe"
# values written as they are, bypassing the parsers' normalisation
RAW = [
    Indicator(type="image_name", value="MiXeD.exe", line=1),
    Indicator(type="sha256", value="D4" * 32, line=2),
    Indicator(type="ip", value="::ffff:192.0.2.200", line=3),
    Indicator(type="cidr", value="100.64.0.1/10", line=4),  # host bits set
    Indicator(type="domain", value="Upper.Example.ORG", line=5),
    Indicator(type="image_path", value=LONG, line=6),  # longer than ignore_above: never indexed
]

IPS = ["203.0.113.7", "203.0.113.8", "198.51.100.1", "198.51.100.10", "::ffff:198.51.100.99"]
IPS += ["2001:db8:bad:1::5", "2001:db8:bad::10", "2001:db8::7", "2001:db8::8", "192.0.2.100", "192.0.2.200"]
IPS += ["::ffff:192.0.2.200", "100.64.1.2", "100.128.0.1", "198.18.0.9", "10.0.0.1"]
TEXT = ["evil.example.com", "EVIL.example.com", "sub.evil.example.com", "badcorp.example"]
TEXT += ["other.example.net", "upper.example.org", "Upper.Example.ORG", "example.com", "203.0.113.7"]
TEXT += ["198.51.100.0/24", "http://198.18.0.9/payload.bin"]
HASHES = [SHA, SHA.upper(), MD5, MD5.upper(), SHA1, "d4" * 32, "D4" * 32, "e5" * 32, "f6" * 16]
IMAGES = [r"C:\Users\Public\Evil.exe", r"c:\users\public\evil.exe", r"C:\Temp\SECOND.EXE", "Evil.exe"]
IMAGES += ["dropper.exe", "DROPPER.EXE", "trusted.exe", r"C:\Windows\System32\SVCHOST.EXE", "mixed.exe"]
IMAGES += ["MiXeD.exe", "MIXED.EXE", "İnstall.exe", "svchost.exe", LONG]


def _load(es: Elasticsearch, prefix: str, tmp: Path, name: str, text: str, kind: str = "intel") -> None:
    path = tmp / f"{name}.txt"
    path.write_text(text, encoding="utf-8")
    feed = feed_from_location(str(path), name=name, kind=kind)  # type: ignore[arg-type]
    res = load_feed(es, feed, prefix=prefix, cache_dir=tmp / "cache", force=True)
    assert res.status == "loaded", res.error


def _nested(field: str, value: str) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    parts = field.split(".")
    node = doc
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return doc


def _probes() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for field, types in FIELD_TYPES.items():
        if EMITTED_FIELDS.get(field) == "ip":
            out[field] = IPS
        elif set(types) & {"image_path", "image_name"}:
            out[field] = IMAGES + TEXT[:2]
        elif set(types) & {"md5", "sha1", "sha256"}:
            out[field] = HASHES + TEXT[:1]
        else:
            out[field] = TEXT + HASHES[:2] + IMAGES[:2]
    return out


def _events(es: Elasticsearch, prefix: str, probes: dict[str, list[str]]) -> str:
    body = json.loads((mappings_dir() / "events-mappings.json").read_text(encoding="utf-8"))["template"]
    index = f"{prefix}-events-stream"
    es.indices.create(index=index, settings=body["settings"], mappings=body["mappings"])
    actions = (
        {"_index": index, "_id": f"{field}|{i}", **_nested(field, v)}
        for field, values in probes.items()
        for i, v in enumerate(values)
    )
    ok, errors = helpers.bulk(es, actions, refresh="wait_for", raise_on_error=False)
    assert not errors and ok == sum(len(v) for v in probes.values())
    return index


def _es_hits(es: Elasticsearch, index: str, clause: dict[str, Any], field: str, n: int) -> set[int]:
    ids = [f"{field}|{i}" for i in range(n)]
    resp = es.search(
        index=index, size=n, query={"bool": {"filter": [{"ids": {"values": ids}}, clause]}}, source=False
    )
    return {int(h["_id"].rsplit("|", 1)[1]) for h in resp["hits"]["hits"]}


def _combinations(field: str) -> list[tuple[tuple[str, ...] | None, tuple[str, ...] | None]]:
    out: list[tuple[tuple[str, ...] | None, tuple[str, ...] | None]] = [
        (None, None),
        (("bad",), None),
        (("other", "raw", "good"), None),
        ((), None),
    ]
    singles = ("ip", "cidr") if EMITTED_FIELDS.get(field) == "ip" else sorted(INDICATOR_TYPES)
    out += [(None, (t,)) for t in singles]
    return out


@pytest.fixture
def loaded(es: Elasticsearch, prefix: str, tmp_path: Path) -> str:
    setup_intel(es, prefix)
    _load(es, prefix, tmp_path, "bad", BAD)
    _load(es, prefix, tmp_path, "other", OTHER)
    _load(es, prefix, tmp_path, "good", ALLOW, kind="allow")
    assert load_items(es, RAW, name="raw", prefix=prefix).status == "loaded"
    return prefix


def test_memory_answers_as_the_terms_lookups(es: Elasticsearch, loaded: str) -> None:
    prefix = loaded
    probes = _probes()
    index = _events(es, prefix, probes)
    cache = IntelCache(es, prefix)
    assert cache.poll() and cache.error is None
    memory = cache.current()
    assert isinstance(memory, IntelMemory)
    assert set(memory.generations) == {"bad", "other", "good", "raw"}
    positives = 0
    for field, values in probes.items():
        for kind in ("intel", "allow"):
            for feeds, types in _combinations(field):
                clause = lookup_clause(es, field, kind=kind, feeds=feeds, prefix=prefix, types=types)
                want = _es_hits(es, index, clause, field, len(values))
                got = {i for i, v in enumerate(values) if memory.has(kind, field, v, feeds, types)}
                assert got == want, (field, kind, feeds, types, sorted(values[i] for i in got ^ want))
                positives += len(want)
    assert positives > 200  # the probes do hit: this compares matches, not empty sets


def test_answers_that_need_no_cluster_comparison(es: Elasticsearch, loaded: str) -> None:
    cache = IntelCache(es, loaded)
    cache.poll(force=True)
    memory = cache.current()
    assert memory is not None
    assert memory.has("intel", "destination.ip", "198.51.100.200", None, None)  # inside the CIDR
    assert memory.has("allow", "destination.ip", "198.51.100.10", None, None)
    assert not memory.has("intel", "destination.ip", "not an address", None, None)
    assert memory.has("intel", "dns.question.registered_domain", "badcorp.example", None, None)
    assert memory.has("intel", "process.hash.sha256", SHA, None, None)  # upper-case in the feed
    assert not memory.has("intel", "process.hash.sha256", SHA, ("other",), None)
    assert not memory.has("intel", "process.hash.sha256", SHA, None, ())
    with pytest.raises(ValueError, match="no indicator types known"):
        memory.has("intel", "host.name", "x", None, None)
    assert memory.count == sum(f.count for f in memory.feeds.values()) > 15


def test_poll_picks_up_refreshes_and_removals(es: Elasticsearch, loaded: str, tmp_path: Path) -> None:
    prefix = loaded
    cache = IntelCache(es, prefix, poll_seconds=3600)
    assert cache.current() is None
    assert cache.poll()
    old = cache.current()
    assert old is not None and old.has("intel", "destination.ip", "203.0.113.7", None, None)
    assert not cache.poll()  # within poll_seconds: nothing read
    assert not cache.poll(force=True)  # nothing changed
    assert cache.current() is old

    _load(es, prefix, tmp_path, "bad", BAD.replace("203.0.113.7\n", "203.0.113.99\n"))
    assert cache.poll(force=True)
    new = cache.current()
    assert new is not None and new is not old
    assert new.generations["bad"] != old.generations["bad"]
    assert new.feeds["other"] is old.feeds["other"]  # an unchanged feed is carried over
    assert not new.has("intel", "destination.ip", "203.0.113.7", None, None)
    assert new.has("intel", "destination.ip", "203.0.113.99", None, None)
    # a reader holding the old snapshot keeps its consistent view
    assert old.has("intel", "destination.ip", "203.0.113.7", None, None)
    assert not old.has("intel", "destination.ip", "203.0.113.99", None, None)

    es.delete(index=feeds_index(prefix), id="other", refresh=True)  # a feed removed
    assert cache.poll(force=True)
    gone = cache.current()
    assert gone is not None and "other" not in gone.generations
    assert not gone.has("intel", "process.executable", r"C:\Temp\Second.exe", None, None)


def test_a_failed_load_keeps_the_old_snapshot(es: Elasticsearch, loaded: str, tmp_path: Path) -> None:
    prefix = loaded
    cache = IntelCache(es, prefix)
    assert cache.poll(force=True)
    old = cache.current()
    _load(es, prefix, tmp_path, "other", OTHER + "new.example.net\n")
    state = read_state(es, "other", prefix=prefix)
    assert state is not None
    missing = state.doc["chunks"]["domain"][0]
    es.delete(index=lookup_index(prefix), id=missing, refresh=True)

    assert not cache.poll(force=True)
    assert cache.current() is old
    assert cache.error is not None and "feed other" in cache.error and missing in cache.error
    # the first load failing leaves no snapshot at all
    fresh = IntelCache(es, prefix)
    assert not fresh.poll(force=True)
    assert fresh.current() is None and fresh.error is not None

    _load(es, prefix, tmp_path, "other", OTHER)  # repaired by the next good generation
    assert cache.poll(force=True)
    assert cache.error is None
    current = cache.current()
    assert current is not None and current.has("intel", "dns.question.name", "other.example.net", None, None)


def test_an_unreachable_cluster_degrades_without_raising() -> None:
    es = Elasticsearch("http://127.0.0.1:9", request_timeout=2, max_retries=0)
    cache = IntelCache(es, "sysmon")
    assert not cache.poll(force=True)
    assert cache.current() is None
    assert cache.error is not None and "sysmon-intel-*" in cache.error

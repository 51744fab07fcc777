"""The parts of the intel Elasticsearch side that need no cluster: the field → type table, value
matching for enrichment, ids, templates, one-off feed configurations and result summaries."""

from __future__ import annotations

import ipaddress
import json

import pytest

from detectors.intel.indices import (
    DEFAULT_CHUNK_SIZE,
    MAX_TERMS_COUNT,
    TEMPLATES,
    chunk_id,
    indicator_id,
    template,
)
from detectors.intel.loader import LoadResult, feed_from_location
from detectors.intel.lookup import CASELESS_TYPES, FIELD_TYPES, _matches
from detectors.intel.model import INDICATOR_TYPES, Indicator
from shipper.templates import mappings_dir


def test_field_types_cover_the_detector_fields() -> None:
    for field in ("destination.ip", "source.ip", "dns.resolved_ip", "related.ip"):
        assert FIELD_TYPES[field] == ("ip", "cidr")
    for field in ("dns.question.name", "dns.question.registered_domain", "destination.domain"):
        assert FIELD_TYPES[field] == ("domain",)
    for target in ("process", "file", "process.parent"):
        for algo in ("md5", "sha1", "sha256"):
            assert FIELD_TYPES[f"{target}.hash.{algo}"] == (algo,)
    assert set(FIELD_TYPES["related.hash"]) == {"md5", "sha1", "sha256"}
    assert FIELD_TYPES["process.executable"] == FIELD_TYPES["file.path"] == ("image_path",)
    assert FIELD_TYPES["process.name"] == ("image_name",)
    assert set(CASELESS_TYPES) == {"image_path", "image_name"}
    assert all(set(types) <= INDICATOR_TYPES for types in FIELD_TYPES.values())


def test_caseless_types_have_a_caseless_field_in_the_event_mapping() -> None:
    """An image path or name is looked up on the event field's ``.caseless`` sub-field: every field
    that takes those types must have one (``process.name`` had none, so it never matched)."""
    mapping = json.loads((mappings_dir() / "events-mappings.json").read_text())
    root = mapping["template"]["mappings"]
    for field, types in FIELD_TYPES.items():
        if not set(types) & CASELESS_TYPES:
            continue
        node = root
        for part in field.split("."):
            node = node["properties"][part]
        assert "caseless" in node.get("fields", {}), field


def _doc(kind: str, value: str) -> dict[str, object]:
    ind = Indicator(type=kind, value=value, line=1)  # type: ignore[arg-type]
    return ind.ecs()


@pytest.mark.parametrize(
    ("kind", "listed", "event", "hit"),
    [
        ("cidr", "198.51.100.0/24", "198.51.100.20", True),
        ("cidr", "198.51.100.0/24", "198.51.101.1", False),
        ("cidr", "2001:db8::/32", "2001:db8::1", True),
        ("ip", "2001:db8::1", "2001:0db8:0::1", True),
        ("ip", "192.0.2.1", "192.0.2.10", False),
        ("sha256", "a" * 64, "A" * 64, True),
        ("domain", "evil.example", "evil.example", True),
        ("domain", "evil.example", "www.evil.example", False),
        ("image_path", "c:\\windows\\system32\\svchost.exe", "C:\\Windows\\System32\\svchost.exe", True),
    ],
)
def test_enrichment_matching(kind: str, listed: str, event: str, hit: bool) -> None:
    try:
        addr = ipaddress.ip_address(event)
    except ValueError:
        addr = None
    assert _matches(_doc(kind, listed), event, event.lower(), addr) is hit


def test_ids_are_deterministic_and_distinct() -> None:
    a = indicator_id("feed", "ip", "192.0.2.1")
    assert a == indicator_id("feed", "ip", "192.0.2.1")
    assert a != indicator_id("other", "ip", "192.0.2.1") != indicator_id("feed", "domain", "192.0.2.1")
    assert a.startswith("feed:")
    assert chunk_id("feed", "3-ab12cd34", "sha256", 2) == "feed:3-ab12cd34:sha256:2"


def test_templates_are_valid_json_with_the_prefix_filled_in() -> None:
    assert DEFAULT_CHUNK_SIZE < MAX_TERMS_COUNT
    for name in TEMPLATES:
        raw = (mappings_dir() / f"{name}.json").read_text(encoding="utf-8")
        json.loads(raw)
        body = template(name, "acme")
        assert body["index_patterns"] == [f"acme-{name}"]
        assert body["template"]["mappings"]["dynamic"] is False
    ind = template("intel-indicators", "x")["template"]["mappings"]["properties"]
    assert ind["intel"]["properties"]["cidr"]["type"] == "ip_range"
    assert ind["threat"]["properties"]["indicator"]["properties"]["ip"]["type"] == "ip"
    lookup = template("intel-lookup", "x")["template"]["mappings"]["properties"]
    assert lookup["values"]["index"] is False


def test_feed_from_location_names_and_kinds() -> None:
    feed = feed_from_location("/data/feodo_ipblocklist.csv")
    assert feed.name == "feodo_ipblocklist" and feed.kind == "intel" and feed.format == "auto"
    assert feed_from_location("https://host/path/list.txt?x=1").name == "list"
    allow = feed_from_location("/x/y.txt", name="mine", kind="allow", types=("image_path",))
    assert allow.name == "mine" and allow.kind == "allow" and allow.keeps("image_path")
    assert not allow.keeps("ip")


def test_load_result_summary_is_one_parsable_line() -> None:
    res = LoadResult(feed="f", kind="intel", status="loaded", generation=3, counts={"ip": 2, "cidr": 1})
    line = res.summary()
    assert "\n" not in line
    fields = dict(part.split("=", 1) for part in line.split(" ") if "=" in part)
    assert fields["indicators"] == "3" and fields["generation"] == "3" and fields["types"] == "cidr=1,ip=2"
    assert res.ok and not LoadResult(feed="f", kind="intel", status="failed").ok

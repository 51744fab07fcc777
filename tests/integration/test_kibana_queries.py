"""What the shipped Kibana saved objects run, run against a real node with the sample day.

Kibana cannot run here, so each saved search's KQL is translated to the ``query_string`` it
amounts to and each Lens layer to its aggregation (``tests/kibana_queries.py``: a strict translator of
the subset the objects use), with the time filter Kibana adds, on ``<prefix>-events*`` /
``<prefix>-alerts*`` / ``<prefix>-intel-indicators``. The data: the generated sample day shipped
with the real pipeline and sink, the sample intel loaded and every built-in rule run once."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from detectors.alerts import set_status
from detectors.kibana.objects import SavedObjects, load_objects, with_prefix
from detectors.query import get_path
from shipper.pipeline import iter_documents
from shipper.raw import RawEvent
from shipper.sysmon.ecs import to_ecs_and_id
from tests.integration.test_detect_support import (
    alerts,
    builtin_rules,
    generate_day,
    index_docs,
    load_sample_intel,
    make_engine,
    ship,
    truth,
)
from tests.kibana_queries import lens_layers, lens_request, lens_rows, search_request


@dataclass(frozen=True)
class Day:
    prefix: str
    objects: SavedObjects
    truth: dict[str, Any]
    docs: list[dict[str, Any]]  # every shipped event document
    events_range: tuple[str, str]
    alerts_range: tuple[str, str]
    alerts: list[dict[str, Any]]


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cleanup(es: Elasticsearch, p: str) -> None:
    names = list(es.options(ignore_status=404).indices.get(index=f"{p}-*", expand_wildcards="all"))
    for i in range(0, len(names), 50):
        es.options(ignore_status=404).indices.delete(index=",".join(names[i : i + 50]))
    for t in (
        es.options(ignore_status=404).indices.get_index_template(name=f"{p}-*").get("index_templates", [])
    ):
        es.indices.delete_index_template(name=t["name"])
    comps = es.options(ignore_status=404).cluster.get_component_template(name=f"{p}-*")
    for t in comps.get("component_templates", []):
        es.cluster.delete_component_template(name=t["name"])


def _config_change(es: Elasticsearch, prefix: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    """A Sysmon configuration change (event 16, which the sample day lacks) on the first host,
    next in its record ids: the log-integrity search has an alert to show."""
    host = docs[0]["winlog"]["computer_name"]
    last = max(
        (d for d in docs if d["winlog"]["computer_name"] == host), key=lambda d: d["winlog"]["record_id"]
    )
    t = datetime.fromisoformat(last["@timestamp"].replace("Z", "+00:00")) + timedelta(seconds=1)
    raw = RawEvent(
        provider="Microsoft-Windows-Sysmon",
        event_id=16,
        event_data={
            "UtcTime": t.strftime("%Y-%m-%d %H:%M:%S.000"),
            "Configuration": "C:\\Windows\\sysmon.xml",
            "ConfigurationFileHash": "SHA256=" + "0" * 64,
        },
        record_id=int(last["winlog"]["record_id"]) + 1,
        computer=host,
        channel=last["winlog"]["channel"],
        time_created=_iso(t),
    )
    doc, _ = to_ecs_and_id(raw)
    index_docs(es, prefix, [doc])
    return doc


@pytest.fixture(scope="module")
def day(es: Elasticsearch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Day]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    out = generate_day(tmp_path_factory.mktemp("kday"))
    started = datetime.now(UTC)
    try:
        engine = make_engine(es, prefix)  # alert + event templates
        path = str(out / "winlogbeat.ndjson")
        ship(es, prefix, [path])
        docs = [item.doc for item in iter_documents([path])]
        docs.append(_config_change(es, prefix, docs))
        load_sample_intel(es, prefix, out / "intel", tmp_path_factory.mktemp("kcache"))
        results = engine.run(only_due=False)
        assert [r for r in results if r.status != "ok"] == []
        t = truth(out)
        start = datetime.fromisoformat(t["generator"]["start"])
        yield Day(
            prefix=prefix,
            objects=with_prefix(load_objects(), prefix),
            truth=t,
            docs=docs,
            events_range=(_iso(start), _iso(start + timedelta(days=2))),
            alerts_range=(_iso(started - timedelta(hours=1)), _iso(datetime.now(UTC) + timedelta(hours=1))),
            alerts=alerts(es, prefix),
        )
    finally:
        _cleanup(es, prefix)


def _obj(day: Day, kind: str, name: str) -> dict[str, Any]:
    return day.objects.by_key()[(kind, f"{day.prefix}-{name}")]


def _range(day: Day, obj: dict[str, Any]) -> tuple[str, str]:
    return day.alerts_range if "alerts" in str(obj["id"]) else day.events_range


def _search(es: Elasticsearch, day: Day, name: str, extra: list[dict[str, Any]] | None = None,
            size: int = 500) -> tuple[int, list[dict[str, Any]]]:  # fmt: skip
    obj = _obj(day, "search", name)
    req = search_request(day.objects, obj, time_range=_range(day, obj))
    query = {"bool": {"filter": [req.query, *(extra or [])]}}
    resp = es.search(index=req.index, query=query, sort=req.sort, size=size, track_total_hits=True)
    return int(resp["hits"]["total"]["value"]), [
        h["_source"] | {"_id": h["_id"]} for h in resp["hits"]["hits"]
    ]


def _lens(es: Elasticsearch, day: Day, name: str) -> list[dict[str, Any]]:
    obj = _obj(day, "lens", name)
    [layer] = lens_layers(obj)
    req = lens_request(day.objects, obj, layer, time_range=_range(day, obj))
    resp = es.search(index=req.index, query=req.query, aggs=req.aggs, size=0, track_total_hits=True)
    return lens_rows(req, resp.body)


def _code(day: Day, code: str) -> list[dict[str, Any]]:
    return [d for d in day.docs if d["event"]["code"] == code]


# ------------------------------------------------------------------------------ every query
#: Its objects read saved stacks and retro-hunt / log-integrity alerts this day lacks: they run
#: in tests/integration/test_hunt_saved.py.
HUNT_FILE = "sysmon-hunt.ndjson"


def test_every_saved_search_and_lens_layer_runs_and_finds_data(es: Elasticsearch, day: Day) -> None:
    ran = 0
    objects = [o for name, objs in day.objects.files.items() if name != HUNT_FILE for o in objs]
    for obj in objects:
        if obj["type"] == "search":
            tr = _range(day, obj)
            req = search_request(day.objects, obj, time_range=tr if "intel" not in str(obj["id"]) else None)
            resp = es.search(index=req.index, query=req.query, sort=req.sort, size=1, track_total_hits=True)
            assert resp["hits"]["total"]["value"] > 0, obj["id"]
            ran += 1
        elif obj["type"] == "lens":
            for layer in lens_layers(obj):
                lreq = lens_request(day.objects, obj, layer, time_range=_range(day, obj))
                lresp = es.search(index=lreq.index, query=lreq.query, aggs=lreq.aggs, size=0)
                rows = lens_rows(lreq, lresp.body)
                assert sum(r[lreq.metrics[0]] for r in rows) > 0, obj["id"]
                ran += 1
    assert ran == sum(o["type"] in ("search", "lens") for o in objects) > 0


# -------------------------------------------------------------------------- saved searches
def test_process_creations_show_the_dropper_on_patient_zero(es: Elasticsearch, day: Day) -> None:
    total, hits = _search(es, day, "search-process-creations")
    assert total == len(_code(day, "1"))
    stamps = [h["@timestamp"] for h in hits]
    assert stamps == sorted(stamps, reverse=True)  # newest first, as Discover shows them
    spread = day.truth["categories"]["spread"]
    pz, sha = spread["patient_zero"], spread["sha256"]
    _, found = _search(es, day, "search-process-creations", [{"term": {"host.name": pz}}])
    dropper = [h for h in found if get_path(h, "process.hash.sha256") == sha]
    expected = {
        int(e["record_id"])
        for e in day.truth["categories"]["bad_hash_executed"]["events"]
        if e["host"] == pz and e["event_id"] == 1
    }
    assert expected and {int(h["winlog"]["record_id"]) for h in dropper} == expected
    columns = _obj(day, "search", "search-process-creations")["attributes"]["columns"]
    for h in dropper:
        assert h["process"]["executable"].lower().endswith("\\invoice_update.exe")
        assert all(get_path(h, c) for c in columns), [c for c in columns if not get_path(h, c)]
        assert h["process"]["parent"]["executable"].lower().endswith("powershell.exe")


def test_network_connections_include_the_intel_ip_connections(es: Elasticsearch, day: Day) -> None:
    total, _ = _search(es, day, "search-network-connections")
    assert total == len(_code(day, "3"))
    bad = day.truth["scenario"]["bad_ips"]
    _, hits = _search(es, day, "search-network-connections", [{"terms": {"destination.ip": bad}}])
    got = {(h["host"]["name"], int(h["winlog"]["record_id"])) for h in hits}
    want = {(e["host"], int(e["record_id"])) for e in day.truth["categories"]["intel_ip"]["events"]}
    assert want and got == want


def test_dns_queries_include_the_bad_domains(es: Elasticsearch, day: Day) -> None:
    total, _ = _search(es, day, "search-dns-queries")
    assert total == len(_code(day, "22"))
    reg = day.truth["scenario"]["bad_registered_domain"]
    _, hits = _search(es, day, "search-dns-queries", [{"term": {"dns.question.registered_domain": reg}}])
    got = {(h["host"]["name"], int(h["winlog"]["record_id"])) for h in hits}
    want = {(e["host"], int(e["record_id"])) for e in day.truth["categories"]["intel_domain"]["events"]}
    assert want and want <= got


def test_open_alerts_table(es: Elasticsearch, day: Day) -> None:
    total, hits = _search(es, day, "search-open-alerts", size=1000)
    assert total == len(day.alerts) > 0  # every alert starts open
    rules = {h["rule"]["id"] for h in hits}
    assert {"intel-ip-connection", "intel-dns-domain", "intel-hash-executed", "bad-hash-spread"} <= rules
    scores = [h["event"]["risk_score"] for h in hits]
    assert scores == sorted(scores, reverse=True)  # riskiest first
    for h in hits:
        assert h["rule"]["name"] and h["host"]["name"] and h["alert"]["status"] == "open"
        if h["rule"]["id"].startswith("intel-"):
            assert h["alert"]["intel"]["matched_values"], h["_id"]  # the "matched indicator" column
    [spread] = [h for h in hits if h["rule"]["id"] == "bad-hash-spread"]
    assert spread["alert"]["spread"]["patient_zero"] == day.truth["categories"]["spread"]["patient_zero"]
    assert spread["process"]["executable"].lower().endswith("\\invoice_update.exe")


def test_closed_alert_leaves_the_open_alerts_table(es: Elasticsearch, day: Day) -> None:
    before, hits = _search(es, day, "search-open-alerts", size=1000)
    victim = next(h for h in hits if h["rule"]["id"] == "intel-ip-connection")
    set_status(es, day.prefix, victim["_id"], "closed", reason="test")
    try:
        es.indices.refresh(index=f"{day.prefix}-alerts-*")
        after, hits = _search(es, day, "search-open-alerts", size=1000)
        assert after == before - 1 and victim["_id"] not in {h["_id"] for h in hits}
    finally:
        set_status(es, day.prefix, victim["_id"], "open")
        es.indices.refresh(index=f"{day.prefix}-alerts-*")


def test_intel_indicators_search(es: Elasticsearch, day: Day) -> None:
    obj = _obj(day, "search", "search-intel-indicators")
    req = search_request(day.objects, obj)
    resp = es.search(index=req.index, query=req.query, sort=req.sort, size=1000, track_total_hits=True)
    hits = [h["_source"] for h in resp["hits"]["hits"]]
    assert hits and all(h["intel"]["kind"] == "intel" for h in hits)
    allow = es.count(index=req.index, query={"term": {"intel.kind": "allow"}})["count"]
    total = es.count(index=req.index)["count"]
    assert resp["hits"]["total"]["value"] == total - allow > 0
    values = {h["intel"]["value"] for h in hits}
    assert day.truth["scenario"]["dropper_sha256"] in values
    assert day.truth["scenario"]["bad_ips"][0] in values


# --------------------------------------------------------------------------------- Lens
def test_events_over_time_by_action(es: Elasticsearch, day: Day) -> None:
    rows = _lens(es, day, "lens-events-over-time")
    per_action = Counter[str]()
    for r in rows:
        per_action[r["action"]] += r["count"]
    want = Counter(d["event"]["action"] for d in day.docs)
    top = dict(want.most_common(10))
    assert dict(per_action) == top  # the 10 most frequent actions, every event of each counted
    assert {"Process creation", "Network connection", "DNS query"} <= set(per_action)
    times = sorted({r["time"] for r in rows})
    assert day.events_range[0] <= times[0] and times[-1] <= day.events_range[1]


def test_top_hosts(es: Elasticsearch, day: Day) -> None:
    rows = _lens(es, day, "lens-top-hosts")
    assert {r["host"]: r["count"] for r in rows} == Counter(d["host"]["name"] for d in day.docs)
    assert set(day.truth["generator"]["hosts"]) == {r["host"] for r in rows}
    counts = [r["count"] for r in rows]
    assert counts == sorted(counts, reverse=True)


def test_top_images_by_sha256_include_the_dropper(es: Elasticsearch, day: Day) -> None:
    rows = _lens(es, day, "lens-top-images-sha256")
    by_sha = {r["sha256"]: r["count"] for r in rows}
    sha = day.truth["scenario"]["dropper_sha256"]
    n = sum(1 for e in day.truth["categories"]["bad_hash_executed"]["events"] if e["event_id"] == 1)
    assert by_sha[sha] == n > 0


def test_stats_count_by_image_and_hashes(es: Elasticsearch, day: Day) -> None:
    rows = _lens(es, day, "lens-image-hashes-table")
    got = {(r["image"], r["sha256"]): r["count"] for r in rows}
    want = Counter(
        (d["process"]["executable"], d["process"]["hash"]["sha256"])
        for d in _code(day, "1")
        if (d.get("process") or {}).get("hash", {}).get("sha256")
    )
    assert got == dict(want)  # the whole table, like `stats count by Image, Hashes`
    sha = day.truth["scenario"]["dropper_sha256"]
    assert any(img.lower().endswith("\\invoice_update.exe") and s == sha for img, s in got)


def test_alerts_over_time_by_rule_and_by_severity(es: Elasticsearch, day: Day) -> None:
    names = {r.id: r.name for r in builtin_rules()}
    rows = _lens(es, day, "lens-alerts-over-time")
    per_rule = Counter[str]()
    for r in rows:
        per_rule[r["rule"]] += r["count"]
    assert dict(per_rule) == Counter(names[a["rule"]["id"]] for a in day.alerts)
    sev = {r["severity"]: r["count"] for r in _lens(es, day, "lens-alerts-by-severity")}
    assert sev == Counter(a["alert"]["severity"] for a in day.alerts)


def test_open_alerts_by_rule_and_host(es: Elasticsearch, day: Day) -> None:
    names = {r.id: r.name for r in builtin_rules()}
    rows = {(r["rule"], r["host"]): r["count"] for r in _lens(es, day, "lens-open-alerts-by-rule-host")}
    assert rows == Counter((names[a["rule"]["id"]], a["host"]["name"]) for a in day.alerts)
    pz = day.truth["categories"]["spread"]["patient_zero"]
    assert rows[(names["intel-hash-executed"], pz)] >= 1
    assert rows[(names["bad-hash-spread"], pz)] == 1


def test_log_integrity_search_shows_the_integrity_alerts(es: Elasticsearch, day: Day) -> None:
    _, hits = _search(es, day, "search-log-integrity-alerts")
    # the constructed configuration change; the record-gap rule does not judge a fresh day (grace)
    assert [(h["rule"]["id"], h["event"]["code"]) for h in hits] == [("sysmon-state-change", "16")]
    assert hits[0]["host"]["name"] == day.docs[0]["host"]["name"]

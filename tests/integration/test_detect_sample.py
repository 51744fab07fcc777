"""Every built-in rule on the generated sample day: it fires on exactly the events truth.json
names and on nothing in the background; reruns and concurrent runs never duplicate; the spread
alert names patient zero even when that host's events are shipped last."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from detectors.engine import Engine, EngineOptions
from detectors.validate import check_queries
from tests.integration.test_detect_support import (
    alerts,
    builtin_rules,
    count_alerts,
    generate_day,
    load_sample_intel,
    make_engine,
    ship,
    truth,
)

CATEGORY_RULES = {
    "intel_ip": "intel-ip-connection",
    "intel_ip_dns_answer": "intel-dns-answer-ip",
    "intel_domain": "intel-dns-domain",
    "bad_hash_executed": "intel-hash-executed",
    "bad_dll_loaded": "intel-hash-module-loaded",
    "unsigned_driver_first_load": "unsigned-driver-first-load",
    "lsass_access": "lsass-credential-access",
    "create_remote_thread": "create-remote-thread",
    "raw_disk_read": "raw-disk-read",
    "office_spawns_shell": "office-spawns-shell",
    "process_tampering": "process-tampering",
    "new_binary_not_allowlisted": "new-binary-not-allowlisted",
}
NO_SAMPLE_EVENTS = {"intel-hash-file"}  # events 15/29: the sample day has none


def _cleanup(es: Elasticsearch, p: str) -> None:
    names = list(es.options(ignore_status=404).indices.get(index=f"{p}-*", expand_wildcards="all"))
    for i in range(0, len(names), 50):
        es.options(ignore_status=404).indices.delete(index=",".join(names[i : i + 50]))
    for t in (
        es.options(ignore_status=404).indices.get_index_template(name=f"{p}-*").get("index_templates", [])
    ):
        es.indices.delete_index_template(name=t["name"])
    for t in (
        es.options(ignore_status=404)
        .cluster.get_component_template(name=f"{p}-*")
        .get("component_templates", [])
    ):
        es.cluster.delete_component_template(name=t["name"])


@pytest.fixture(scope="module")
def day(es: Elasticsearch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, list[Any]]]:
    """The sample day shipped with the real pipeline, intel loaded, every rule run once."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    out = generate_day(tmp_path_factory.mktemp("day"))
    try:
        engine = make_engine(es, prefix)
        ship(es, prefix, [str(out / "winlogbeat.ndjson")])
        load_sample_intel(es, prefix, out / "intel", tmp_path_factory.mktemp("cache"))
        results = engine.run(only_due=False)
        yield prefix, out, results
    finally:
        _cleanup(es, prefix)


def _key(ref: dict[str, Any]) -> tuple[str, int]:
    return ref["host"], int(ref["record_id"])


def _alert_key(a: dict[str, Any]) -> tuple[str, int]:
    return a["host"]["name"], int(a["winlog"]["record_id"])


def test_every_rule_ran_ok(day: tuple[str, Path, list[Any]]) -> None:
    _, _, results = day
    assert {r.rule_id for r in results} == {r.id for r in builtin_rules()}
    assert [r for r in results if r.status != "ok"] == []


@pytest.mark.parametrize("category", sorted(CATEGORY_RULES))
def test_rule_fires_on_exactly_the_truth(
    es: Elasticsearch, day: tuple[str, Path, list[Any]], category: str
) -> None:
    prefix, out, _ = day
    expected = {_key(r) for r in truth(out)["categories"][category]["events"]}
    got = [_alert_key(a) for a in alerts(es, prefix, CATEGORY_RULES[category])]
    assert len(got) == len(set(got)), "duplicate alerts"
    assert set(got) == expected


def test_rules_without_sample_events_stay_silent(es: Elasticsearch, day: tuple[str, Path, list[Any]]) -> None:
    prefix, _, _ = day
    for rid in NO_SAMPLE_EVENTS:
        assert count_alerts(es, prefix, rid) == 0


def test_intel_alert_carries_indicator_and_enrichments(
    es: Elasticsearch, day: tuple[str, Path, list[Any]]
) -> None:
    prefix, _, _ = day
    for a in alerts(es, prefix, "intel-ip-connection"):
        assert a["event"]["kind"] == "alert"
        assert a["alert"]["status"] == "open"
        assert a["threat"]["enrichments"], a
        e = a["threat"]["enrichments"][0]
        assert e["matched"]["field"] == "destination.ip"
        assert e["matched"]["atomic"] == a["destination"]["ip"]
        assert e["feed"]["name"] == "bad-ips"
        assert a["threat"]["indicator"]["type"].startswith("ipv4")
        assert "T1071" in a["threat"]["technique"]["id"]
        assert a["alert"]["source"]["id"] and a["alert"]["source"]["index"].startswith(f"{prefix}-events-")
    dns = alerts(es, prefix, "intel-dns-domain")
    both = {"dns.question.name", "dns.question.registered_domain"}
    assert all(both <= set(a["alert"]["intel"]["matched_fields"]) for a in dns)


def test_spread_alert_names_patient_zero_and_hosts_in_order(
    es: Elasticsearch, day: tuple[str, Path, list[Any]]
) -> None:
    prefix, out, _ = day
    t = truth(out)["categories"]["spread"]
    got = alerts(es, prefix, "bad-hash-spread")
    assert len(got) == 1
    s = got[0]["alert"]["spread"]
    assert s["patient_zero"] == t["patient_zero"]
    assert [h["name"] for h in s["hosts"]] == [h["host"] for h in t["hosts"]]
    assert [h["first_seen"] for h in s["hosts"]] == [h["first_seen"] for h in t["hosts"]]
    assert got[0]["host"]["name"] == t["patient_zero"]
    # the ancestry on patient zero shows how the dropper arrived: powershell ← cmd ← Word ← Outlook
    chain = [c.get("executable", "").rsplit("\\", 1)[-1].lower() for c in got[0]["ancestry"]["chain"]]
    assert chain[:5] == ["invoice_update.exe", "powershell.exe", "cmd.exe", "winword.exe", "outlook.exe"]


def test_rerun_and_concurrent_runs_never_duplicate(
    es: Elasticsearch, day: tuple[str, Path, list[Any]]
) -> None:
    prefix, _, _ = day
    before = count_alerts(es, prefix)
    rules = builtin_rules()
    # a fresh state (no checkpoint) re-examines everything; two engines at once
    es.options(ignore_status=404).indices.delete(index=f"{prefix}-state")
    engines = [Engine(es, prefix, rules, EngineOptions(ingest_delay=0.0), owner=f"w{i}") for i in range(2)]
    results: list[list[Any]] = [[], []]

    def go(i: int) -> None:
        results[i] = engines[i].run(only_due=False)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(r.status in ("ok", "locked") for rs in results for r in rs)
    # and once more with an overlap reaching back over everything
    again = Engine(es, prefix, rules, EngineOptions(ingest_delay=0.0, overlap=10 * 86400.0)).run(
        only_due=False
    )
    assert all(r.status == "ok" for r in again)
    assert sum(r.alerts for r in again) == 0
    assert count_alerts(es, prefix) == before


def test_whole_rule_set_validates_against_the_cluster(
    es: Elasticsearch, day: tuple[str, Path, list[Any]]
) -> None:
    prefix, _, _ = day
    assert check_queries(es, builtin_rules(), prefix) == []


def test_patient_zero_right_when_first_host_shipped_last(es: Elasticsearch, tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    out = generate_day(tmp_path / "d")
    t = truth(out)["categories"]["spread"]
    pz = t["patient_zero"]
    rules = [r for r in builtin_rules() if r.id == "bad-hash-spread"]
    try:
        engine = make_engine(es, prefix, rules)
        load_sample_intel(es, prefix, out / "intel", tmp_path / "c")
        ship(es, prefix, [str(out / "winlogbeat.ndjson")], skip_hosts=[pz])
        engine.run(only_due=False)
        first = alerts(es, prefix, "bad-hash-spread")
        assert len(first) == 1 and first[0]["alert"]["spread"]["patient_zero"] != pz
        ship(es, prefix, [str(out / "winlogbeat.ndjson")], only_hosts=[pz])
        res = engine.run(only_due=False)
        assert res[0].status == "ok" and res[0].updated == 1, res
        got = alerts(es, prefix, "bad-hash-spread")
        assert len(got) == 1 and got[0]["_id"] == first[0]["_id"]
        s = got[0]["alert"]["spread"]
        assert s["patient_zero"] == pz
        assert [h["name"] for h in s["hosts"]] == [h["host"] for h in t["hosts"]]
        assert got[0]["host"]["name"] == pz
    finally:
        _cleanup(es, prefix)

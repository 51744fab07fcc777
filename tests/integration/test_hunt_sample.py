"""``sysmon-detect hunt`` on the generated sample day (shipped with the real pipeline, its intel
and allowlists loaded): stacking finds exactly the non-allowlisted binaries truth.json names,
``hunt hash`` finds truth's patient zero and every host's first sighting, ``hunt process`` shows
the dropper's chain and activity; CSV and JSON outputs parse."""

from __future__ import annotations

import csv
import io
import itertools
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from click.testing import CliRunner
from elasticsearch import Elasticsearch

from detectors.cli import main
from detectors.hunt.process import ProcessRequest, process_rows
from detectors.hunt.scope import Scope
from detectors.hunt.sightings import HashRequest, first_sightings, sighting_rows, spread_defaults
from detectors.hunt.stack import StackRequest, StackTotals, stack
from detectors.setup import setup_alerts
from shipper.es import ClusterSettings
from tests.integration.test_detect_sample import _cleanup
from tests.integration.test_detect_support import cli_env, generate_day, load_sample_intel, ship, truth


@pytest.fixture(scope="module")
def day(es: Elasticsearch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    out = generate_day(tmp_path_factory.mktemp("day"))
    try:
        setup_alerts(es, prefix)
        ship(es, prefix, [str(out / "winlogbeat.ndjson")])
        load_sample_intel(es, prefix, out / "intel", tmp_path_factory.mktemp("cache"))
        yield prefix, truth(out)
    finally:
        _cleanup(es, prefix)


def _event(es: Elasticsearch, prefix: str, ref: dict[str, Any]) -> dict[str, Any]:
    """The shipped document truth.json names by host and record id."""
    q = {
        "bool": {
            "filter": [{"term": {"host.name": ref["host"]}}, {"term": {"winlog.record_id": ref["record_id"]}}]
        }
    }
    hits = es.search(index=f"{prefix}-events-*", query=q, size=2)["hits"]["hits"]
    assert len(hits) == 1, ref
    src: dict[str, Any] = hits[0]["_source"]
    return src


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_stack_unknown_is_exactly_the_non_allowlisted_executions(
    es: Elasticsearch, day: tuple[str, dict[str, Any]]
) -> None:
    prefix, t = day
    refs = [r for r in t["categories"]["new_binary_not_allowlisted"]["events"] if r["event_id"] == 1]
    expected: dict[tuple[str, str], set[str]] = {}
    for ref in refs:
        src = _event(es, prefix, ref)
        expected.setdefault((src["process"]["executable"], src["process"]["hash"]["sha256"]), set()).add(
            ref["host"]
        )
    totals = StackTotals()
    rows = list(stack(es, prefix, StackRequest(unknown_only=True), totals))
    assert {r.values: r.hosts for r in rows} == {k: len(v) for k, v in expected.items()}
    dropper = t["scenario"]["dropper_sha256"]
    assert all(r.values[1] == dropper and r.intel == ("bad-hashes",) and not r.known for r in rows)
    # every other execution is allowlisted; the totals cover every event 1
    n_exec = es.count(index=f"{prefix}-events-*", query={"term": {"event.code": "1"}})["count"]
    assert totals.events == n_exec
    assert totals.buckets - totals.known == len(rows)


def test_stack_rare_puts_the_attack_binary_first(es: Elasticsearch, day: tuple[str, dict[str, Any]]) -> None:
    prefix, t = day
    rows = list(stack(es, prefix, StackRequest(order="rare", limit=3), StackTotals()))
    counts = [r.count for r in rows]
    assert counts == sorted(counts)
    everything = list(stack(es, prefix, StackRequest(order="rare"), StackTotals()))
    assert min(r.count for r in everything) == counts[0]
    assert t["scenario"]["dropper_sha256"] in {r.values[1] for r in rows}


def test_stack_loaded_modules_and_drivers(es: Elasticsearch, day: tuple[str, dict[str, Any]]) -> None:
    prefix, t = day
    refs = [r for r in t["categories"]["new_binary_not_allowlisted"]["events"] if r["event_id"] in (6, 7)]
    expected = {_event(es, prefix, r)["file"]["hash"]["sha256"] for r in refs}
    req = StackRequest(fields=("file.hash.sha256",), scope=Scope(event_codes=("6", "7")), unknown_only=True)
    rows = list(stack(es, prefix, req, StackTotals()))
    assert {r.values[0] for r in rows} == expected
    bad_dll = t["scenario"]["malicious_dll_sha256"]
    assert [r.intel for r in rows if r.values[0] == bad_dll] == [("bad-hashes",)]


def test_hash_patient_zero_and_first_sightings_equal_truth(
    es: Elasticsearch, day: tuple[str, dict[str, Any]]
) -> None:
    prefix, t = day
    spread_truth = t["categories"]["spread"]
    window, min_hosts = spread_defaults()
    req = HashRequest(spread_truth["sha256"].upper(), window=window, min_hosts=min_hosts)
    spread = first_sightings(es, prefix, req)
    assert spread.patient_zero is not None
    assert spread.patient_zero["name"] == spread_truth["patient_zero"]
    assert [(h["name"], _t(h["first_seen"])) for h in spread.hosts] == [
        (h["host"], _t(h["first_seen"])) for h in spread_truth["hosts"]
    ]
    rows = list(sighting_rows(es, prefix, req, spread))
    times = [_t(r["time"]) for r in rows]
    assert times == sorted(times)
    assert [r["host"] for r in rows if r["patient_zero"]] == [spread_truth["patient_zero"]]
    firsts = [(r["host"], r["entity_id"]) for r in rows if r["first_on_host"]]
    assert firsts == [(h["host"], h["process_guid"].upper()) for h in spread_truth["hosts"]]


def test_process_timeline_of_the_dropper(es: Elasticsearch, day: tuple[str, dict[str, Any]]) -> None:
    prefix, t = day
    pz = t["categories"]["spread"]["hosts"][0]
    guid = pz["process_guid"]
    rows = list(process_rows(es, prefix, ProcessRequest(guid.lower().strip("{}"))))
    relations = [r["relation"] for r in rows]
    me = relations.index("process")
    assert rows[me]["entity_id"] == guid.upper() and rows[me]["host"] == pz["host"]
    assert set(relations[:me]) <= {"ancestor", "missing", "truncated"} and "ancestor" in relations[:me]
    # the parent chain: each row is the parent of the next, as the creation events say
    chain = rows[relations.index("ancestor") : me + 1]
    for parent, child in itertools.pairwise(chain):
        assert (
            _creation(es, prefix, child["entity_id"])["process"]["parent"]["entity_id"] == parent["entity_id"]
        )
    activity = rows[me + 1 :]
    times = [_t(r["time"]) for r in activity]
    assert times == sorted(times)
    own = {
        (r["host"], r["record_id"])
        for r in t["malicious_events"]
        if (r.get("process_guid") or "").upper() == guid.upper() and r["event_id"] != 1
    }
    got_own = {(r["host"], _record(es, prefix, r["event_id"])) for r in activity if r["relation"] == "self"}
    assert own <= got_own
    assert {r["relation"] for r in activity} <= {"self", "child", "target"}


def _record(es: Elasticsearch, prefix: str, doc_id: str) -> int:
    hits = es.search(index=f"{prefix}-events-*", query={"ids": {"values": [doc_id]}}, size=1)["hits"]["hits"]
    return int(hits[0]["_source"]["winlog"]["record_id"])


def _creation(es: Elasticsearch, prefix: str, entity_id: str) -> dict[str, Any]:
    q = {"bool": {"filter": [{"term": {"event.code": "1"}}, {"term": {"process.entity_id": entity_id}}]}}
    hits = es.search(index=f"{prefix}-events-*", query=q, size=1)["hits"]["hits"]
    src: dict[str, Any] = hits[0]["_source"]
    return src


def test_cli_outputs_parse(es_settings: ClusterSettings, day: tuple[str, dict[str, Any]]) -> None:
    prefix, t = day
    env = cli_env(es_settings, prefix)
    cli = CliRunner()
    r = cli.invoke(main, ["hunt", "stack", "--unknown", "--format", "csv"], env=env)
    assert r.exit_code == 0, r.output
    lines = r.stdout
    records = list(csv.DictReader(io.StringIO(lines)))
    assert {rec["process.hash.sha256"] for rec in records} == {t["scenario"]["dropper_sha256"]}
    assert all(rec["allowlisted"] == "" and rec["intel"] == "bad-hashes" for rec in records)
    assert "summary: rows=2 " in r.stderr

    args = ["hunt", "stack", "--by", "file.hash.sha256", "--event-code", "6,7", "--unknown", "--rare"]
    r = cli.invoke(main, [*args, "--format", "json"], env=env)
    assert r.exit_code == 0, r.output
    got = {json.loads(line)["file.hash.sha256"] for line in r.stdout.splitlines()}
    assert got == {t["scenario"]["malicious_dll_sha256"], t["scenario"]["unsigned_driver_sha256"]}

    r = cli.invoke(main, ["hunt", "hash", t["scenario"]["dropper_sha256"], "--first"], env=env)
    assert r.exit_code == 0, r.output
    objs = [json.loads(line) for line in r.stdout.splitlines()]  # not a terminal: JSON lines
    assert [o["host"] for o in objs] == [h["host"] for h in t["categories"]["spread"]["hosts"]]
    assert [o.get("patient_zero") for o in objs] == [True] + [False] * (len(objs) - 1)
    assert f"patient_zero={t['categories']['spread']['patient_zero']}" in r.stderr

    r = cli.invoke(
        main, ["hunt", "stack", "--by", "dns.question.registered_domain", "--format", "table"], env=env
    )
    assert r.exit_code == 0, r.output
    head, *body = r.stdout.splitlines()
    assert head.split()[:3] == ["dns.question.registered_domain", "COUNT", "HOSTS"]
    assert any(line.startswith(t["scenario"]["bad_registered_domain"] + " ") for line in body)


def test_cli_errors_are_one_line(es_settings: ClusterSettings, day: tuple[str, dict[str, Any]]) -> None:
    prefix, _ = day
    env = cli_env(es_settings, prefix)
    cli = CliRunner()
    r = cli.invoke(main, ["hunt", "stack", "--by", "no.such.field"], env=env)
    assert r.exit_code == 1 and f"--by no.such.field: no such field in {prefix}-events-*" in r.output
    r = cli.invoke(main, ["hunt", "stack", "--by", "process.command_line.text"], env=env)
    assert r.exit_code == 1 and "not aggregatable" in r.output
    r = cli.invoke(main, ["hunt", "hash", "not-a-hash"], env=env)
    assert r.exit_code == 2 and "is not a hash" in r.output
    r = cli.invoke(main, ["hunt", "hash", "00" * 32], env=env)
    assert r.exit_code == 1 and r.output == "summary: sightings=0 hosts=0\n"
    r = cli.invoke(main, ["hunt", "process", "{00000000-0000-0000-0000-000000000000}"], env=env)
    assert r.exit_code == 1 and "no event of process {00000000-0000-0000-0000-000000000000}" in r.output
    r = cli.invoke(main, ["hunt", "stack", "--since", "yesterday"], env=env)
    assert r.exit_code == 2 and "neither an ISO" in r.output

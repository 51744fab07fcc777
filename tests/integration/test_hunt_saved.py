"""Saved stacks (``sysmon-detect hunt save``, ``hunt stack --save``) on the generated sample day,
and what the "Sysmon hunt" dashboard runs on them: the saved rows equal ``hunt stack``'s, a
re-save keeps the ids and updates the figures (and drops rows gone from the scope), the stack
tables' queries return exactly the unknown rows. The retro-hunt and log-integrity panels run on
constructed alert documents carrying the fields those alerts are selected by."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from elasticsearch import Elasticsearch

from detectors.cli import main
from detectors.hunt.saved import DEFAULT_STACKS, LEASE_PREFIX, row_id, save_defaults, stack_index
from detectors.hunt.scope import Scope
from detectors.hunt.stack import StackError, StackRequest, StackRow, StackTotals, stack
from detectors.kibana.objects import SavedObjects, load_objects, with_prefix
from detectors.query import get_path
from detectors.setup import setup_alerts
from detectors.state import StateStore
from shipper.es import ClusterSettings
from tests.integration.test_detect_sample import _cleanup
from tests.integration.test_detect_support import cli_env, generate_day, index_docs, load_sample_intel, ship
from tests.kibana_queries import lens_layers, lens_request, lens_rows, search_request


@dataclass(frozen=True)
class Day:
    prefix: str
    objects: SavedObjects
    alerts_range: tuple[str, str]


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture(scope="module")
def day(es: Elasticsearch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Day]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    out = generate_day(tmp_path_factory.mktemp("sday"))
    try:
        setup_alerts(es, prefix)
        ship(es, prefix, [str(out / "winlogbeat.ndjson")])
        load_sample_intel(es, prefix, out / "intel", tmp_path_factory.mktemp("scache"))
        now = datetime.now(UTC)
        _index_alerts(es, prefix, now)
        yield Day(prefix, with_prefix(load_objects(), prefix), (_iso(now - timedelta(hours=1)), _iso(now)))
    finally:
        _cleanup(es, prefix)


def _saved(es: Elasticsearch, prefix: str, name: str) -> dict[str, dict[str, Any]]:
    resp = es.search(index=stack_index(prefix), query={"term": {"stack.name": name}}, size=10_000)
    return {h["_id"]: h["_source"] for h in resp["hits"]["hits"]}


def _truth_rows(es: Elasticsearch, prefix: str, name: str, *, unknown: bool = False) -> list[StackRow]:
    s = DEFAULT_STACKS[name]
    req = StackRequest(fields=s.fields, scope=Scope(event_codes=s.event_codes), unknown_only=unknown)
    return list(stack(es, prefix, req, StackTotals()))


def _as_row(src: dict[str, Any]) -> dict[str, Any]:
    st = src["stack"]
    return {
        "values": tuple(st["values"]),
        "count": st["count"],
        "hosts": st["hosts"],
        "first_seen": st["first_seen"],
        "last_seen": st["last_seen"],
        "allowlisted": st["allowlisted"],
        "allow": tuple(st["allowlists"]),
        "intel": tuple(st["intel_feeds"]),
    }


def _expected(row: StackRow) -> dict[str, Any]:
    return {
        "values": tuple(str(v) for v in row.values),
        "count": row.count,
        "hosts": row.hosts,
        "first_seen": row.first_seen,
        "last_seen": row.last_seen,
        "allowlisted": row.known,
        "allow": row.allow,
        "intel": row.intel,
    }


# ------------------------------------------------------------------------------ saving
def test_saved_rows_equal_hunt_stack(es: Elasticsearch, day: Day) -> None:
    results = save_defaults(es, day.prefix, (), Scope())
    assert [r.name for r in results] == list(DEFAULT_STACKS)
    for res in results:
        s = DEFAULT_STACKS[res.name]
        want = {
            row_id(res.name, s.fields, r.values): _expected(r) for r in _truth_rows(es, day.prefix, res.name)
        }
        saved = _saved(es, day.prefix, res.name)
        assert want, res.name  # the day has rows for every default stack
        assert {i: _as_row(src) for i, src in saved.items()} == want, res.name
        assert res.rows == len(want) and res.removed == 0
        assert res.allowlisted == sum(v["allowlisted"] for v in want.values())
        for src in saved.values():  # the by-fields at their own paths, as the tables show them
            assert [str(get_path(src, f)) for f in s.fields] == src["stack"]["values"]
            assert src["stack"]["scope"]["event_codes"] == list(s.event_codes)
            assert src["stack"]["computed_at"] == res.computed_at
    # the unknown executables include the dropper, known to intel
    rows = _saved(es, day.prefix, "executables").values()
    assert any(r["stack"]["intel_listed"] and not r["stack"]["allowlisted"] for r in rows)


def test_cli_save_equals_the_cli_stack_output(
    es_settings: ClusterSettings, es: Elasticsearch, day: Day
) -> None:
    env = cli_env(es_settings, day.prefix)
    by = ["--by", "process.executable", "--by", "process.hash.sha256", "--event-code", "1"]
    shown = CliRunner().invoke(main, ["hunt", "stack", *by, "--format", "json"], env=env)
    assert shown.exit_code == 0, shown.output
    printed = [json.loads(line) for line in shown.stdout.splitlines()]
    res = CliRunner().invoke(main, ["hunt", "stack", *by, "--save", "cli-exec"], env=env)
    assert res.exit_code == 0, res.output
    assert f"saved: stack=cli-exec rows={len(printed)} " in res.stderr
    saved = [s["stack"] for s in _saved(es, day.prefix, "cli-exec").values()]
    key = ("process.executable", "process.hash.sha256")
    assert {
        tuple(p[k] for k in key): (p["count"], p["hosts"], p["allowlisted"], p.get("intel", []))
        for p in printed
    } == {tuple(s["values"]): (s["count"], s["hosts"], s["allowlisted"], s["intel_feeds"]) for s in saved}
    refused = CliRunner().invoke(main, ["hunt", "stack", "--unknown", "--save", "x"], env=env)
    assert refused.exit_code == 2 and "--save stores every row" in refused.output
    bad = CliRunner().invoke(main, ["hunt", "save", "nope"], env=env)
    assert bad.exit_code == 1 and "no such stack: nope" in bad.output
    ok = CliRunner().invoke(main, ["hunt", "save", "domains", "executables"], env=env)
    assert ok.exit_code == 0, ok.output
    rows = [r["stack"] for name in ("domains", "executables") for r in _saved(es, day.prefix, name).values()]
    unknown = sum(not r["allowlisted"] for r in rows)
    assert ok.stderr.splitlines()[-1] == f"summary: stacks=2 rows={len(rows)} unknown={unknown}"


# ------------------------------------------------------------------- the dashboard's queries
def _search(
    es: Elasticsearch, day: Day, name: str, time_range: tuple[str, str] | None = None
) -> list[dict[str, Any]]:
    obj = day.objects.by_key()[("search", f"{day.prefix}-{name}")]
    req = search_request(day.objects, obj, time_range=time_range)
    resp = es.search(index=req.index, query=req.query, sort=req.sort, size=10_000)
    return [h["_source"] | {"_id": h["_id"]} for h in resp["hits"]["hits"]]


def _lens(es: Elasticsearch, day: Day, name: str) -> list[dict[str, Any]]:
    obj = day.objects.by_key()[("lens", f"{day.prefix}-{name}")]
    [layer] = lens_layers(obj)
    req = lens_request(day.objects, obj, layer, time_range=day.alerts_range)
    resp = es.search(index=req.index, query=req.query, aggs=req.aggs, size=0)
    return lens_rows(req, resp.body)


def test_stack_tables_return_exactly_the_unknown_rows(es: Elasticsearch, day: Day) -> None:
    save_defaults(es, day.prefix, (), Scope())
    for name, s in DEFAULT_STACKS.items():
        hits = _search(es, day, f"search-stack-{name}")
        unknown = _truth_rows(es, day.prefix, name, unknown=True)
        assert {h["_id"] for h in hits} == {row_id(name, s.fields, r.values) for r in unknown}, name
        assert all(not h["stack"]["allowlisted"] for h in hits)
        counts = [h["stack"]["count"] for h in hits]
        assert counts == sorted(counts), name  # rarest first
    # the unknown executables are only what no allowlist knows, not every execution
    everything = _truth_rows(es, day.prefix, "executables")
    assert 0 < len(_search(es, day, "search-stack-executables")) < len(everything)


def test_resave_keeps_ids_updates_counts_and_drops_rows_out_of_scope(es: Elasticsearch, day: Day) -> None:
    [first] = save_defaults(es, day.prefix, ("executables",), Scope())
    before = _saved(es, day.prefix, "executables")
    # one more execution of a known row, one of a new binary
    src = es.search(index=f"{day.prefix}-events-*", query={"term": {"event.code": "1"}}, size=1)["hits"][
        "hits"
    ][0]
    old = src["_source"]
    again = json.loads(json.dumps(old)) | {"@timestamp": old["@timestamp"]}
    again["winlog"]["record_id"] = 10_000_000
    new = json.loads(json.dumps(again))
    new["winlog"]["record_id"] = 10_000_001
    new["process"]["executable"] = "C:\\Users\\Public\\fresh.exe"
    new["process"]["hash"]["sha256"] = "ab" * 32
    index_docs(es, day.prefix, [again, new])
    [second] = save_defaults(es, day.prefix, ("executables",), Scope())
    after = _saved(es, day.prefix, "executables")
    assert set(before) <= set(after) and len(after) == len(before) + 1
    old_id = row_id(
        "executables",
        DEFAULT_STACKS["executables"].fields,
        (old["process"]["executable"], old["process"]["hash"]["sha256"]),
    )
    assert after[old_id]["stack"]["count"] == before[old_id]["stack"]["count"] + 1
    [added] = set(after) - set(before)
    assert after[added]["stack"]["values"] == [new["process"]["executable"], "ab" * 32]
    assert not after[added]["stack"]["allowlisted"]
    assert all(s["stack"]["computed_at"] == second.computed_at > first.computed_at for s in after.values())
    # a save over one host: the other hosts' rows go, the index holds exactly this save
    host = old["host"]["name"]
    [third] = save_defaults(es, day.prefix, ("executables",), Scope(hosts=(host,)))
    one = _saved(es, day.prefix, "executables")
    s = DEFAULT_STACKS["executables"]
    req = StackRequest(fields=s.fields, scope=Scope(hosts=(host,), event_codes=s.event_codes))
    assert set(one) == {
        row_id("executables", s.fields, r.values) for r in stack(es, day.prefix, req, StackTotals())
    }
    assert third.removed == len(after) - len(one) > 0
    assert _saved(es, day.prefix, "modules"), "a save of one stack leaves the others alone"


# ------------------------------------------------------- retro-hunt and log-integrity panels
SYSMON_CHANNEL = "Microsoft-Windows-Sysmon/Operational"


def _alert(rule_id: str, host: str, written: datetime, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@timestamp": _iso(written),
        "event": {"kind": "alert"},
        "rule": {"id": rule_id, "name": f"Rule {rule_id}", "tags": []},
        "host": {"name": host},
        "alert": {"id": uuid.uuid4().hex, "status": "open", "severity": "medium"},
    }
    for path, value in extra.items():
        cur = doc
        parts = path.split("__")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = value
    return doc


def _retro(feed: str, lead: int | None) -> dict[str, Any]:
    return {
        "hunt": f"{feed}:2",
        "feed": feed,
        "generation": 2,
        "listed_at": "2026-11-20T10:00:00.000Z",
        "predates_listing": lead is not None,
        "predates_by_seconds": lead,
        "predates_by": None if lead is None else f"{lead // 3600}h",
    }


def _index_alerts(es: Elasticsearch, prefix: str, now: datetime) -> None:
    """Alerts as the retro-hunt (``alert.retro.*``) and the log-integrity rules (tag
    ``log-integrity``) write them, and others that neither panel may show."""
    t = now - timedelta(minutes=5)
    tag, sysmon, first = ["log-integrity"], {"channel": SYSMON_CHANNEL}, "2026-11-20T10:00:00.000Z"
    docs = [
        _alert("intel-hash-executed", "WS01", t, alert__retro=_retro("bad-hashes", 86_400),
               alert__intel={"matched_values": ["ab" * 32]}, threat__indicator={"first_seen": first}),
        _alert("intel-hash-executed", "WS02", t, alert__retro=_retro("bad-hashes", 7_200),
               alert__intel={"matched_values": ["ab" * 32]}),
        _alert("intel-ip-connection", "WS02", t, alert__retro=_retro("bad-ips", None),
               alert__intel={"matched_values": ["203.0.113.7"]}),
        _alert("intel-ip-connection", "WS03", t, alert__intel={"matched_values": ["203.0.113.7"]}),  # live
        _alert("log-record-gap", "WS01", t, rule__tags=tag, winlog=sysmon),
        _alert("sysmon-state-change", "WS01", t, rule__tags=tag, winlog=sysmon),
        _alert("host-went-quiet", "WS04", t, rule__tags=tag),  # no channel: a host rule
        _alert("lsass-access", "WS01", t, rule__tags=["credential-access"], winlog=sysmon),
    ]  # fmt: skip
    ops: list[dict[str, Any]] = []
    for d in docs:
        ops += [{"create": {"_index": f"{prefix}-alerts-{t:%Y.%m}", "_id": d["alert"]["id"]}}, d]
    resp = es.bulk(operations=ops, refresh=True)
    assert not resp["errors"], resp["items"][:2]


def test_retro_hunt_panels_show_only_retro_alerts(es: Elasticsearch, day: Day) -> None:
    hits = _search(es, day, "search-retro-alerts", day.alerts_range)
    assert [(h["rule"]["id"], h["host"]["name"]) for h in hits] == [
        ("intel-hash-executed", "WS01"),  # hidden longest first
        ("intel-hash-executed", "WS02"),
        ("intel-ip-connection", "WS02"),  # found late but not before its listing: last
    ]
    rows = {(r["feed"], r["rule"]): r["count"] for r in _lens(es, day, "lens-retro-alerts-by-feed-rule")}
    assert rows == {("bad-hashes", "Rule intel-hash-executed"): 2, ("bad-ips", "Rule intel-ip-connection"): 1}


def test_log_integrity_panel_shows_every_integrity_alert_with_or_without_channel(
    es: Elasticsearch, day: Day
) -> None:
    rows = {
        (r["rule"], r["host"], r["channel"]): r["count"]
        for r in _lens(es, day, "lens-integrity-alerts-by-rule-host")
    }
    assert rows == {
        ("Rule log-record-gap", "WS01", SYSMON_CHANNEL): 1,
        ("Rule sysmon-state-change", "WS01", SYSMON_CHANNEL): 1,
        ("Rule host-went-quiet", "WS04", "(missing value)"): 1,
    }


def test_every_hunt_dashboard_query_runs_and_finds_data(es: Elasticsearch, day: Day) -> None:
    save_defaults(es, day.prefix, (), Scope())
    dash = day.objects.by_key()[("dashboard", f"{day.prefix}-dashboard-hunt")]
    ran = 0
    for ref in dash["references"]:
        obj = day.objects.by_key()[(ref["type"], ref["id"])]
        view = "alerts" if "alerts" in str(obj["references"][0]["id"]) else "stack"
        tr = day.alerts_range if view == "alerts" else None
        if obj["type"] == "search":
            req = search_request(day.objects, obj, time_range=tr)
            assert es.count(index=req.index, query=req.query)["count"] > 0, obj["id"]
        else:
            for layer in lens_layers(obj):
                lreq = lens_request(day.objects, obj, layer, time_range=tr)
                lresp = es.search(index=lreq.index, query=lreq.query, aggs=lreq.aggs, size=0)
                assert sum(r["count"] for r in lens_rows(lreq, lresp.body)) > 0, obj["id"]
        ran += 1
    assert ran == 7


def test_save_service_saves_then_stops_cleanly_on_sigterm(es_settings: ClusterSettings, day: Day) -> None:
    env = {**os.environ, **cli_env(es_settings, day.prefix), "PYTHONPATH": str(Path(__file__).parents[2])}
    cmd = [sys.executable, "-c", "from detectors.cli import main; main()", "hunt", "save", "domains",
           "--window", "3650d", "--every", "1h"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().startswith("hunt save: every 3600s")
        saved = proc.stderr.readline()
        assert saved.startswith("saved: stack=domains rows="), saved
        proc.send_signal(signal.SIGTERM)  # during the hour's wait
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0 and proc.stderr.read().strip() == "summary: rounds=1"


def test_a_save_before_setup_installs_the_template_first(es: Elasticsearch, day: Day) -> None:
    index = stack_index(day.prefix)
    es.options(ignore_status=404).indices.delete(index=index)
    es.indices.delete_index_template(name=index)
    [res] = save_defaults(es, day.prefix, ("destination-ips",), Scope())
    assert res.rows > 0 and es.indices.exists_index_template(name=index)
    props = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert props["destination"]["properties"]["ip"]["type"] == "ip"  # the events' own type
    assert props["stack"]["properties"]["count"]["type"] == "long"


def test_one_save_per_stack_at_a_time(es: Elasticsearch, day: Day) -> None:
    store = StateStore(es, day.prefix)
    key = f"{LEASE_PREFIX}domains"
    assert store.acquire(key, "other-host:1:1:abc", 600)  # another run is saving 'domains'
    try:
        with pytest.raises(StackError, match="stack domains is being saved by other-host:1:1:abc"):
            save_defaults(es, day.prefix, ("domains",), Scope())
        [ips] = save_defaults(es, day.prefix, ("destination-ips",), Scope())  # other stacks are free
        assert ips.rows > 0
    finally:
        store.release(key, "other-host:1:1:abc")
    [res] = save_defaults(es, day.prefix, ("domains",), Scope())
    assert res.rows > 0
    holder = store.lease_holder(key)
    assert holder is None or holder[0] == ""  # released after the save

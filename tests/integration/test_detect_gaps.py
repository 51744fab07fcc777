"""Detector behaviour the other engine tests leave open: the ``new_value`` history window, a
``spread`` alert below ``min_hosts`` and growing with new hosts, intel alerts carrying the feed's
confidence and first/last seen, the ingest delay (events shipped through the real ``BulkSink``),
the cost of ancestry (queries per level, not per alert), the per-rule state document after good
and failing runs, and the intel-hash rules on driver loads (6) and file streams/executables
(15, 29)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from elasticsearch import Elasticsearch

from detectors.engine import Engine, EngineOptions
from detectors.intel.indices import indicators_index, setup_intel
from detectors.intel.loader import feed_from_location, load_feed
from detectors.loader import load_rules
from detectors.model import Rule
from detectors.query import iso
from detectors.setup import setup_alerts
from detectors.state import StateStore, parse_time
from shipper.sink import BulkSink
from shipper.templates import events_index
from tests.integration.test_detect_support import (
    alerts,
    builtin_rules,
    count_alerts,
    index_docs,
    make_engine,
    proc_event,
    ts_ago,
)

HOST = "WS21.corp.example"


def _rule(rule_id: str) -> list[Rule]:
    rules = [r for r in builtin_rules() if r.id == rule_id]
    assert rules, rule_id
    return rules


def _custom(tmp_path: Path, name: str, text: str) -> list[Rule]:
    d = tmp_path / name
    d.mkdir()
    (d / f"{name}.yml").write_text(text)
    return list(load_rules([d], strict=True).rules)


def _load_intel(es: Elasticsearch, prefix: str, path: Path, text: str, name: str) -> None:
    setup_intel(es, prefix)
    path.write_text(text)
    res = load_feed(
        es, feed_from_location(str(path), name=name), prefix=prefix, cache_dir=path.parent / f"cache-{name}"
    )
    assert res.status == "loaded", res
    es.indices.refresh(index=f"{prefix}-intel-*")


def _exe(host: str, ts: str, entity: str, sha256: str, exe: str = "C:\\Users\\x\\tool.exe") -> dict[str, Any]:
    return proc_event(host, ts, entity, None, exe, extra={"process.hash.sha256": sha256})


def _tamper(entity: str, ts: str, host: str = HOST) -> dict[str, Any]:
    return proc_event(host, ts, entity, None, "C:\\Windows\\System32\\dllhost.exe", code="25")


# ------------------------------------------------------------------ 1. new_value history window
NEW_VALUE = """\
id: gap-new-value
name: New hash on a host
description: test
type: new_value
severity: medium
risk_score: 40
interval: 1m
threat:
  - tactic: {id: TA0002, name: Execution}
    techniques: [{id: T1204.002, name: Malicious File}]
filter:
  event_codes: [1]
params:
  fields: [host.name, process.hash.sha256]
  require_any: [process.hash.sha256]
  history: 2d
"""


def test_new_value_history_window_and_one_alert_per_value(
    es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    rules = _custom(tmp_path, "nv", NEW_VALUE)
    within, older, fresh = "a1" * 32, "b2" * 32, "c3" * 32
    # history shipped long ago (ingested 20 days ago): outside every run window of this test
    history = [_exe(HOST, ts_ago(1), "{H-1}", within), _exe(HOST, ts_ago(3), "{H-2}", older)]
    for d in history:
        d["event"]["ingested"] = ts_ago(20)
    index_docs(es, prefix, history, stamp=False)
    engine = make_engine(es, prefix, rules, initial_lookback=86400.0)
    r1 = engine.run(only_due=False)[0]
    assert (r1.status, r1.hits, r1.alerts) == ("ok", 0, 0), r1

    # now each value is seen again: `within` was seen 1 day ago (inside the 2-day history),
    # `older` 3 days ago (outside it), `fresh` never
    index_docs(
        es,
        prefix,
        [_exe(HOST, ts_ago(0, -600), "{N-1}", within), _exe(HOST, ts_ago(0, -590), "{N-2}", older),
         _exe(HOST, ts_ago(0, -580), "{N-3}", fresh)],
    )  # fmt: skip
    r2 = engine.run(only_due=False)[0]
    assert (r2.status, r2.hits, r2.alerts) == ("ok", 3, 2), r2
    got = alerts(es, prefix, "gap-new-value")
    by_hash = {a["process"]["hash"]["sha256"]: a for a in got}
    assert sorted(by_hash) == sorted([older, fresh])
    assert by_hash[older]["process"]["entity_id"] == "{N-2}"
    assert by_hash[older]["alert"]["new_value"]["values"] == [HOST, older]
    assert by_hash[older]["alert"]["new_value"]["history"] == "172800s"
    ids = {a["_id"] for a in got}

    # later sightings of the alerted values, and a rerun from scratch over the same window:
    # still one alert per value, ever
    index_docs(
        es, prefix, [_exe(HOST, ts_ago(0, -60), "{L-1}", older), _exe(HOST, ts_ago(0, -50), "{L-2}", fresh)]
    )
    r3 = engine.run(only_due=False)[0]
    assert (r3.status, r3.alerts) == ("ok", 0), r3
    assert r3.duplicates == 2
    es.delete(index=f"{prefix}-state", id="state:gap-new-value", refresh=True)
    r4 = make_engine(es, prefix, rules, initial_lookback=86400.0).run(only_due=False)[0]
    assert (r4.status, r4.hits, r4.alerts) == ("ok", 5, 0), r4
    again = alerts(es, prefix, "gap-new-value")
    assert {a["_id"] for a in again} == ids and len(again) == 2


# ------------------------------------------------------------------ 2. spread below / growing
def test_spread_needs_min_hosts_then_grows_in_place(es: Elasticsearch, prefix: str, tmp_path: Path) -> None:
    bad, benign = "d4" * 32, "e5" * 32
    _load_intel(es, prefix, tmp_path / "spread.txt", f"{bad}\n", "spread-hashes")
    engine = make_engine(es, prefix, _rule("bad-hash-spread"))
    # one host (and the benign hash on three hosts; and the bad hash on a host 10 days earlier,
    # outside the 7-day window): no alert
    index_docs(
        es,
        prefix,
        [_exe("HOST-A", ts_ago(0, -3 * 3600), "{A-1}", bad), _exe("HOST-OLD", ts_ago(10), "{O-1}", bad)]
        + [_exe(f"HOST-{h}", ts_ago(0, -3600), f"{{B-{h}}}", benign) for h in "XYZ"],
    )
    r1 = engine.run(only_due=False)[0]
    assert r1.status == "ok" and r1.hits == 2 and (r1.alerts, r1.updated) == (0, 0), r1
    assert count_alerts(es, prefix, "bad-hash-spread") == 0

    # a second host within the window: the alert appears, patient zero HOST-A
    index_docs(es, prefix, [_exe("HOST-B", ts_ago(0, -2 * 3600), "{B-1}", bad)])
    r2 = engine.run(only_due=False)[0]
    assert (r2.status, r2.alerts, r2.updated) == ("ok", 1, 0), r2
    first = alerts(es, prefix, "bad-hash-spread")
    assert len(first) == 1
    s1 = first[0]["alert"]["spread"]
    assert (s1["patient_zero"], s1["host_count"]) == ("HOST-A", 2)
    assert [h["name"] for h in s1["hosts"]] == ["HOST-A", "HOST-B"]

    # a third host: the same alert grows (updated, not a new one); patient zero unchanged
    index_docs(es, prefix, [_exe("HOST-C", ts_ago(0, -3600), "{C-1}", bad)])
    r3 = engine.run(only_due=False)[0]
    assert (r3.status, r3.alerts, r3.updated) == ("ok", 0, 1), r3
    got = alerts(es, prefix, "bad-hash-spread")
    assert len(got) == 1 and got[0]["_id"] == first[0]["_id"]
    s = got[0]["alert"]["spread"]
    assert s["patient_zero"] == "HOST-A" and got[0]["host"]["name"] == "HOST-A"
    assert s["host_count"] == 3 and got[0]["alert"]["count"] == 3
    assert [h["name"] for h in s["hosts"]] == ["HOST-A", "HOST-B", "HOST-C"]
    assert [h["first_seen"] for h in s["hosts"][:2]] == [h["first_seen"] for h in s1["hosts"]]
    assert s["first_seen"] == s1["first_seen"]
    # nothing new: no change
    r4 = engine.run(only_due=False)[0]
    assert (r4.alerts, r4.updated) == (0, 0), r4
    assert alerts(es, prefix, "bad-hash-spread")[0]["alert"]["spread"]["hosts"] == s["hosts"]


def test_spread_within_window_alerts_despite_an_older_sighting(
    es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    """Two hosts within the window alert even when a third host saw the value long before (all
    shipped at once): the old sighting must not become the anchor that hides the spread."""
    bad = "d7" * 32
    _load_intel(es, prefix, tmp_path / "spread.txt", f"{bad}\n", "spread-hashes")
    engine = make_engine(es, prefix, _rule("bad-hash-spread"))
    index_docs(
        es,
        prefix,
        [_exe("HOST-OLD", ts_ago(10), "{O-1}", bad), _exe("HOST-A", ts_ago(0, -3 * 3600), "{A-1}", bad),
         _exe("HOST-B", ts_ago(0, -2 * 3600), "{B-1}", bad)],
    )  # fmt: skip
    r = engine.run(only_due=False)[0]
    assert (r.status, r.hits, r.alerts) == ("ok", 3, 1), r
    [a] = alerts(es, prefix, "bad-hash-spread")
    s = a["alert"]["spread"]
    assert s["patient_zero"] == "HOST-A" and [h["name"] for h in s["hosts"]] == ["HOST-A", "HOST-B"]


# ------------------------------------------------------------------ 3. indicator metadata
TF_HEADER = (
    '# "first_seen_utc","ioc_id","ioc_value","ioc_type","threat_type","fk_malware","malware_alias",'
    '"malware_printable","last_seen_utc","confidence_level","is_compromised","reference","tags",'
    '"anonymous","reporter"\n'
)
BAD_IP = "198.51.100.23"
BAD_SHA = "f6" * 32


def test_intel_alerts_carry_confidence_first_and_last_seen(
    es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    feed = (
        "# ThreatFox IOCs: CSV export\n"
        + TF_HEADER
        + f'"2024-05-02 10:18:20", "9001", "{BAD_IP}:443", "ip:port", "botnet_cc", "win.cobalt_strike", '
        '"None", "Cobalt Strike", "2024-06-01 08:00:00", "90", "0", "None", "c2", "0", "abuse_ch"\n'
        + f'"2024-04-01 09:00:00", "9002", "{BAD_SHA.upper()}", "sha256_hash", "payload", "win.qakbot", '
        '"None", "QakBot", "2024-05-20 12:30:00", "20", "0", "None", "None", "0", "abuse_ch"\n'
    )
    _load_intel(es, prefix, tmp_path / "threatfox.csv", feed, "tf")
    expected = {
        BAD_IP: ("High", "2024-05-02T10:18:20Z", "2024-06-01T08:00:00Z"),
        BAD_SHA: ("Low", "2024-04-01T09:00:00Z", "2024-05-20T12:30:00Z"),
    }
    # what the loader stored, for each value
    stored = {}
    for value in expected:
        resp = es.search(index=f"{indicators_index(prefix)}*", query={"term": {"intel.value": value}})
        hits = resp["hits"]["hits"]
        assert len(hits) == 1, (value, hits)
        stored[value] = hits[0]["_source"]["threat"]["indicator"]
        ind = stored[value]
        assert (ind["confidence"], ind["first_seen"], ind["last_seen"]) == expected[value]

    rules = _rule("intel-ip-connection") + _rule("intel-hash-executed")
    engine = make_engine(es, prefix, rules)
    net = {"destination.ip": BAD_IP, "destination.port": 443, "source.ip": "10.0.0.5"}
    conn = proc_event(HOST, ts_ago(0, -30), "{I-1}", None, "C:\\x\\beacon.exe", code="3", extra=net)
    run = _exe(HOST, ts_ago(0, -20), "{I-2}", BAD_SHA)
    index_docs(es, prefix, [conn, run])
    res = {r.rule_id: r for r in engine.run(only_due=False)}
    assert res["intel-ip-connection"].alerts == 1 and res["intel-hash-executed"].alerts == 1, res

    for rule_id, value, field in (
        ("intel-ip-connection", BAD_IP, "destination.ip"),
        ("intel-hash-executed", BAD_SHA, "process.hash.sha256"),
    ):
        got = alerts(es, prefix, rule_id)
        assert len(got) == 1
        threat = got[0]["threat"]
        conf, first_seen, last_seen = expected[value]
        ind = threat["indicator"]
        assert (ind["confidence"], ind["first_seen"], ind["last_seen"]) == (conf, first_seen, last_seen)
        assert ind == stored[value]
        assert threat["feed"]["name"] == "tf"
        [enr] = threat["enrichments"]
        assert enr["indicator"]["confidence"] == conf
        assert (enr["indicator"]["first_seen"], enr["indicator"]["last_seen"]) == (first_seen, last_seen)
        assert enr["matched"]["atomic"] == value and enr["matched"]["field"] == field
        assert enr["feed"]["name"] == "tf"


# ------------------------------------------------------------------ 4. ingest delay
def test_ingest_delay_defers_events_to_the_next_run_exactly_once(es: Elasticsearch, prefix: str) -> None:
    delay = 4.0
    rules = _rule("process-tampering")
    setup_alerts(es, prefix)
    engine = Engine(es, prefix, rules, EngineOptions(ingest_delay=delay, overlap=0.0))
    doc = _tamper("{DL-1}", ts_ago(0, -120))
    del doc["event"]["ingested"]
    before = datetime.now(UTC)
    ts = str(doc["@timestamp"])
    with BulkSink(es) as sink:  # the shipper's sink: it stamps event.ingested
        sink.add(doc, events_index(prefix, f"{ts[:4]}.{ts[5:7]}"), "delay-doc-1", ("test", 1))
    es.indices.refresh(index=f"{prefix}-events-*")
    stored = es.search(index=f"{prefix}-events-*", query={"match_all": {}})["hits"]["hits"]
    assert len(stored) == 1
    ingested = parse_time(stored[0]["_source"]["event"]["ingested"])
    assert ingested is not None and ingested >= before.replace(microsecond=before.microsecond // 1000 * 1000)

    r1 = engine.run(only_due=False)[0]
    assert r1.status == "ok" and r1.window is not None
    assert r1.window.end < ingested, "the machine was too slow to test the delay"
    assert (r1.hits, r1.alerts) == (0, 0), r1

    time.sleep(max(0.0, (ingested + timedelta(seconds=delay + 0.5) - datetime.now(UTC)).total_seconds()))
    r2 = engine.run(only_due=False)[0]
    assert r2.status == "ok" and r2.window is not None and r2.window.start is not None
    assert iso(r2.window.start) == iso(r1.window.end)  # the checkpoint (ms precision)
    assert (r2.hits, r2.alerts) == (1, 1), r2
    r3 = engine.run(only_due=False)[0]
    assert (r3.status, r3.hits, r3.alerts) == ("ok", 0, 0), r3
    got = alerts(es, prefix, "process-tampering")
    assert [a["alert"]["source"]["id"] for a in got] == ["delay-doc-1"]


# ------------------------------------------------------------------ 5. ancestry cost
class CountingClient:
    """A thin proxy over the client counting ``search``/``msearch`` calls made from
    ``detectors/ancestry.py`` (any frame of the call stack)."""

    def __init__(self, es: Elasticsearch) -> None:
        self._es = es
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._es, name)
        if name not in ("search", "msearch"):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            f = sys._getframe(1)
            while f is not None:
                if f.f_code.co_filename.replace("\\", "/").endswith("detectors/ancestry.py"):
                    self.calls[name] += 1
                    break
                f = f.f_back  # type: ignore[assignment]
            return attr(*args, **kwargs)

        return counted


def test_ancestry_costs_one_query_per_level_not_per_alert(es: Elasticsearch, prefix: str) -> None:
    n, depth, levels = 25, 5, 7
    docs: list[dict[str, Any]] = []
    for c in range(n):
        for i in range(levels):
            parent = f"{{C{c}-P{i - 1}}}" if i else None
            docs.append(
                proc_event(HOST, ts_ago(0, -300 + i), f"{{C{c}-P{i}}}", parent, f"C:\\t\\c{c}l{i}.exe")
            )
        docs.append(_tamper(f"{{C{c}-P{levels - 1}}}", ts_ago(0, -60 + c)))
    index_docs(es, prefix, docs)
    counting = CountingClient(es)
    setup_alerts(es, prefix)
    engine = Engine(
        cast(Elasticsearch, counting),
        prefix,
        _rule("process-tampering"),
        EngineOptions(ingest_delay=0.0, ancestry_depth=depth),
    )
    res = engine.run(only_due=False)[0]
    assert (res.status, res.alerts) == ("ok", n), res
    queries = counting.calls["search"] + counting.calls["msearch"]
    assert 0 < queries <= depth, counting.calls
    got = alerts(es, prefix, "process-tampering")
    assert len(got) == n
    for a in got:
        c = a["process"]["entity_id"].split("-")[0][2:]
        anc = a["ancestry"]
        assert [x["entity_id"] for x in anc["chain"]] == [f"{{C{c}-P{i}}}" for i in range(6, 1, -1)]
        assert anc["truncated"] is True and anc["broken"] is False


# ------------------------------------------------------------------ 6. per-rule state
STATE_RULE = """\
id: gap-state
name: State test
description: test
type: query
severity: low
risk_score: 10
interval: 1m
threat:
  - tactic: {id: TA0005, name: Defense Evasion}
    techniques: [{id: T1055, name: Process Injection}]
filter:
  event_codes: [25]
"""


def _state_doc(es: Elasticsearch, prefix: str, rule_id: str) -> dict[str, Any]:
    src: dict[str, Any] = es.get(index=f"{prefix}-state", id=f"state:{rule_id}")["_source"]
    return src


def test_state_document_after_ok_and_failing_runs(es: Elasticsearch, prefix: str, tmp_path: Path) -> None:
    good = _custom(tmp_path, "good", STATE_RULE)
    bad = _custom(tmp_path, "bad", STATE_RULE + '  lucene: "process.name:(unclosed"\n')
    index_docs(es, prefix, [_tamper("{ST-1}", ts_ago(0, -30)), _tamper("{ST-2}", ts_ago(0, -29))])
    t0 = datetime.now(UTC)
    r1 = make_engine(es, prefix, good).run(only_due=False)[0]
    assert r1.status == "ok" and r1.window is not None
    d1 = _state_doc(es, prefix, "gap-state")
    last1 = parse_time(d1["last_run"])
    assert last1 is not None and abs((last1 - t0).total_seconds()) < 60
    assert d1["status"] == "ok" and d1["last_error"] is None
    assert (d1["hits"], d1["alerts"], d1["runs"]) == (2, 2, 1)
    assert isinstance(d1["duration"], float) and 0 < d1["duration"] < 60
    assert d1["checkpoint"] == iso(r1.window.end)
    assert parse_time(d1["last_success"]) == last1

    # the same rule id, now with a Lucene string Elasticsearch rejects
    index_docs(es, prefix, [_tamper("{ST-3}", ts_ago(0, -10))])
    r2 = make_engine(es, prefix, bad).run(only_due=False)[0]
    assert r2.status == "failed", r2
    d2 = _state_doc(es, prefix, "gap-state")
    assert d2["status"] == "failed"
    assert d2["last_error"] and d2["last_error"].startswith(f"{tmp_path / 'bad' / 'bad.yml'}:13: ")
    assert "Elasticsearch HTTP 400" in d2["last_error"]
    assert d2["checkpoint"] == d1["checkpoint"]  # not advanced
    assert d2["last_success"] == d1["last_success"]
    last2 = parse_time(d2["last_run"])
    assert last2 is not None and last2 > last1 and d2["runs"] == 2
    assert count_alerts(es, prefix, "gap-state") == 2

    # fixed again: the next run starts from the old checkpoint, so ST-3 is not lost
    r3 = make_engine(es, prefix, good).run(only_due=False)[0]
    assert (r3.status, r3.alerts) == ("ok", 1), r3
    d3 = _state_doc(es, prefix, "gap-state")
    assert d3["status"] == "ok" and d3["last_error"] is None and d3["runs"] == 3
    assert parse_time(d3["checkpoint"]) > parse_time(d1["checkpoint"])  # type: ignore[operator]
    assert StateStore(es, prefix).get("gap-state").alerts == 1


# ------------------------------------------------------------------ 7. intel hashes on 6, 15, 29
def _file_event(
    code: str, ts: str, path: str, hashes: dict[str, str], *, process: bool = True
) -> dict[str, Any]:
    extra = {"file.path": path, **{f"file.hash.{k}": v for k, v in hashes.items()}}
    doc = proc_event(HOST, ts, f"{{F-{code}-{path[-6:]}}}", None, "C:\\x\\writer.exe", code=code, extra=extra)
    if not process:  # a driver load (event 6) has no process
        del doc["process"]
    return doc


def test_intel_hash_rules_on_driver_loads_and_file_events(
    es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    drv_sha256, dll_sha256 = "1a" * 32, "2b" * 32
    stream_md5, exe_sha1 = "3c" * 16, "4d" * 20
    _load_intel(es, prefix, tmp_path / "hashes.txt",
                f"{drv_sha256}\n{dll_sha256.upper()}\n{stream_md5}\n{exe_sha1}\n", "bad-hashes")  # fmt: skip
    rules = _rule("intel-hash-module-loaded") + _rule("intel-hash-file")
    engine = make_engine(es, prefix, rules)
    docs = [
        _file_event("6", ts_ago(0, -50), "C:\\Windows\\System32\\drivers\\evil.sys",
                    {"sha256": drv_sha256, "md5": "00" * 16}, process=False),
        _file_event("6", ts_ago(0, -49), "C:\\Windows\\System32\\drivers\\good.sys", {"sha256": "99" * 32},
                    process=False),
        _file_event("7", ts_ago(0, -48), "C:\\x\\side.dll", {"sha256": dll_sha256}),
        _file_event("15", ts_ago(0, -47), "C:\\Users\\x\\Downloads\\a.zip:Zone.Identifier",
                    {"md5": stream_md5, "sha256": "98" * 32}),
        _file_event("29", ts_ago(0, -46), "C:\\Users\\x\\AppData\\drop.exe", {"sha1": exe_sha1}),
        _file_event("29", ts_ago(0, -45), "C:\\Users\\x\\AppData\\fine.exe", {"sha1": "97" * 20}),
        # a listed hash on an event neither rule covers (11: file created)
        _file_event("11", ts_ago(0, -44), "C:\\Users\\x\\AppData\\other.exe", {"sha256": drv_sha256}),
    ]  # fmt: skip
    index_docs(es, prefix, docs)
    res = {r.rule_id: r for r in engine.run(only_due=False)}
    assert all(r.status == "ok" for r in res.values()), res

    def summary(rule_id: str) -> list[tuple[str, str, str, str]]:
        out = []
        for a in alerts(es, prefix, rule_id):
            [e] = a["threat"]["enrichments"]
            out.append((a["event"]["code"], a["file"]["path"].rsplit("\\", 1)[-1],
                        e["matched"]["field"], e["matched"]["atomic"]))  # fmt: skip
        return sorted(out)

    assert summary("intel-hash-module-loaded") == [
        ("6", "evil.sys", "file.hash.sha256", drv_sha256),
        ("7", "side.dll", "file.hash.sha256", dll_sha256),
    ]
    assert summary("intel-hash-file") == [
        ("15", "a.zip:Zone.Identifier", "file.hash.md5", stream_md5),
        ("29", "drop.exe", "file.hash.sha1", exe_sha1),
    ]
    drv = next(a for a in alerts(es, prefix, "intel-hash-module-loaded") if a["event"]["code"] == "6")
    assert drv["threat"]["feed"]["name"] == "bad-hashes" and "T1014" in drv["threat"]["technique"]["id"]
    assert drv["alert"]["intel"]["matched_values"] == [drv_sha256]
    assert "ancestry" not in drv  # no process, no chain

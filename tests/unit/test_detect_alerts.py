"""Alert building without a cluster: deterministic ids, the month of the source event, copied
fields, ATT&CK, spread host merging, ancestry rendering, log lines."""

from __future__ import annotations

from datetime import UTC, datetime

from detectors.alerts import alert_id, from_event, month_suffix
from detectors.ancestry import Chain, Link
from detectors.builders.event_alert import event_alert, run_times
from detectors.builders.spread import _merge_hosts
from detectors.engine import RunResult
from detectors.loader import BUILTIN_DIR, load_rules
from detectors.model import Rule
from detectors.query import Window

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _rule(rid: str) -> Rule:
    return next(r for r in load_rules([BUILTIN_DIR]).rules if r.id == rid)


def test_alert_ids_are_deterministic_and_distinct() -> None:
    a = alert_id("r1", "sysmon-events-2026.11", "abc")
    assert a == alert_id("r1", "sysmon-events-2026.11", "abc")
    assert a != alert_id("r2", "sysmon-events-2026.11", "abc")
    assert a != alert_id("r1", "sysmon-events-2026.11", "abd")
    assert len(a) == 27 and "=" not in a


def test_month_of_the_source_event() -> None:
    assert month_suffix("2026-02-28T23:59:59.999Z", NOW) == "2026.02"
    assert month_suffix(None, NOW) == "2026.11"


def test_from_event_copies_fields_and_describes_the_rule() -> None:
    rule = _rule("intel-ip-connection")
    hit = {
        "_index": "p-events-2026.11",
        "_id": "ev1",
        "_source": {
            "@timestamp": "2026-11-02T09:14:44.000Z",
            "event": {"kind": "event", "code": "3", "ingested": "2026-11-27T11:00:00Z"},
            "host": {"name": "WS02"},
            "destination": {"ip": "203.0.113.66", "port": 443},
            "process": {"executable": "C:\\x.exe", "entity_id": "{E}"},
            "registry": {"path": "not copied by this rule"},
            "winlog": {"record_id": 42, "event_data": {"Foo": "bar"}},
            "rule": {"name": "sysmon's own RuleName, never copied"},
        },
    }
    doc = from_event(rule, hit, NOW, "ID")
    assert doc["event"]["kind"] == "alert" and doc["event"]["code"] == "3"
    assert doc["event"]["severity"] == 73 and doc["event"]["risk_score"] == 73.0
    assert doc["rule"]["id"] == "intel-ip-connection" and doc["rule"]["ruleset"] == "builtin"
    assert doc["threat"]["technique"]["id"] == ["T1071", "T1571"]
    assert doc["threat"]["tactic"]["id"] == ["TA0011"]
    assert (doc["alert"]["status"], doc["alert"]["original_time"]) == ("open", "2026-11-02T09:14:44.000Z")
    assert doc["alert"]["source"] == {
        "index": "p-events-2026.11",
        "id": "ev1",
        "ingested": "2026-11-27T11:00:00Z",
    }
    assert doc["destination"] == {"ip": "203.0.113.66", "port": 443}
    assert "registry" not in doc and doc["winlog"] == {"record_id": 42}
    assert doc["@timestamp"] == "2026-11-27T12:00:00.000Z"


def test_spread_hosts_merge_keeps_earliest_and_orders_by_time() -> None:
    old = [
        {"name": "B", "first_seen": "2026-11-02T11:00:00.000Z"},
        {"name": "C", "first_seen": "2026-11-02T12:00:00.000Z"},
    ]
    new = {
        "A": {"name": "A", "first_seen": "2026-11-02T09:00:00.000Z"},
        "C": {"name": "C", "first_seen": "2026-11-02T13:00:00.000Z"},
    }
    merged = _merge_hosts(old, new)
    assert [h["name"] for h in merged] == ["A", "B", "C"]
    assert merged[2]["first_seen"] == "2026-11-02T12:00:00.000Z"


def test_chain_document() -> None:
    c = Chain(host="H", entity_id="{3}")
    c.links = [
        Link("{3}", "C:\\a\\child.exe", "child", 3, "t3", "{2}"),
        Link("{2}", "C:\\a\\parent.exe", "parent", 2, "t2", "{1}"),
    ]
    c.broken, c.missing_entity_id = True, "{1}"
    d = c.to_doc()
    assert d["depth"] == 2 and d["broken"] and d["missing_entity_id"] == "{1}"
    assert d["text"] == "child.exe ← parent.exe"
    assert d["chain"][0] == {"entity_id": "{3}", "executable": "C:\\a\\child.exe", "command_line": "child",
                             "pid": 3, "start": "t3"}  # fmt: skip


def test_run_result_line_and_json() -> None:
    r = RunResult("x", "ok", window=Window(None, NOW), hits=3, alerts=2, duplicates=1, duration=0.5)
    assert r.line().startswith("rule x: ok window [-∞, 2026-11-27T12:00:00.000Z) hits=3 alerts=2")
    j = r.to_json()
    assert j["window"] == {"start": None, "end": "2026-11-27T12:00:00.000Z"} and j["alerts"] == 2


def test_event_alert_is_the_one_per_event_alert() -> None:
    """What the scheduled run, the batched Sigma run and the stream stage all write for one
    matching event: the id of (rule, event index, event id), the month of the event's own
    ``@timestamp``, ``from_event``'s document and the run's window."""
    rule = _rule("intel-ip-connection")
    src = {
        "@timestamp": "2026-10-31T23:59:59.999Z",
        "event": {"code": "3", "ingested": "2026-11-27T11:00:00.000Z"},
    }
    hit = {"_index": "p-events-2026.10", "_id": "ev1", "_source": src}
    window = Window(datetime(2026, 11, 27, 10, 0, tzinfo=UTC), NOW)
    index, aid, doc = event_alert(rule, hit, "p", NOW, run_times(window))
    assert aid == alert_id("intel-ip-connection", "p-events-2026.10", "ev1")
    assert index == "p-alerts-2026.10"  # the event's month, not the run's
    expected = from_event(rule, hit, NOW, aid)
    run = doc["alert"].pop("run")
    assert doc == expected
    assert run == {"window_start": "2026-11-27T10:00:00.000Z", "window_end": "2026-11-27T12:00:00.000Z"}
    assert run_times(Window(None, NOW)) == {"window_start": None, "window_end": "2026-11-27T12:00:00.000Z"}
    # the stream's run: this event's ingestion to now, copied (a shared dict is never aliased)
    stream_run = {"window_start": src["event"]["ingested"], "window_end": "2026-11-27T12:00:00.000Z"}
    _, aid2, doc2 = event_alert(rule, hit, "p", NOW, stream_run)
    assert aid2 == aid and doc2["alert"]["run"] == stream_run and doc2["alert"]["run"] is not stream_run
    # no @timestamp: this month's index
    assert event_alert(rule, {**hit, "_source": {}}, "p", NOW, stream_run)[0] == "p-alerts-2026.11"

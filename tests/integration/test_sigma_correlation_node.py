"""Sigma correlation rules run by the engine on the real node, with constructed events whose
``@timestamp`` and ``event.ingested`` the tests choose: sliding windows across clock boundaries,
thresholds, groups, late events, temporal order, distinct values, reruns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch
from sigma.collection import SigmaCollection

from detectors.engine import Engine
from detectors.model import Rule
from detectors.query import iso
from detectors.sigma.rules import convert, runnable
from detectors.state import RuleState
from detectors.validate import check_queries
from shipper.raw import SYSMON_CHANNEL, SYSMON_PROVIDER, RawEvent
from shipper.sysmon.ecs import to_ecs
from tests.integration.test_detect_support import alerts, index_docs, make_engine

#: the runs' clock, a day ahead of the real one: a released lease (expired at the real now) is
#: free for every run of the tests, whatever order their times come in
NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
#: a 5-minute clock mark a day and two hours before the runs' clock (in the real past): the
#: events of the tests sit around it
T0 = NOW.replace(minute=NOW.minute - NOW.minute % 5, second=0) - timedelta(days=1, hours=2)
MIN = timedelta(minutes=1)

WHOAMI = """title: whoami run
id: 7a0c0000-0000-4000-8000-000000000001
name: whoami
status: test
level: low
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\\\\whoami.exe'}
  condition: sel
"""
SMB = """title: smb connection
id: 7a0c0000-0000-4000-8000-000000000002
name: smb_out
status: test
level: low
logsource: {product: windows, category: network_connection}
detection:
  sel: {DestinationPort: 445}
  condition: sel
"""


def correlation(body: str, uid: str = "ff") -> str:
    return (
        f"title: correlated {uid}\nid: 7a0c0000-0000-4000-8000-0000000000{uid}\nstatus: test\nlevel: high\n"
        f"tags: [attack.discovery, attack.t1033]\ncorrelation:\n{body}"
    )


def counting(group_by: str, n: int, rule: str = "whoami") -> str:
    """The body of an event_count correlation: at least ``n`` events within 5 minutes."""
    by = f"  group-by: [{group_by}]\n" if group_by else ""
    return f"  type: event_count\n  rules: [{rule}]\n{by}  timespan: 5m\n  condition: {{gte: {n}}}\n"


def rules(*docs: str) -> list[Rule]:
    converted = convert(SigmaCollection.from_yaml("\n---\n".join(docs)))
    assert all(c.outcome == "runs" for c in converted), [(c.title, c.reason) for c in converted]
    return runnable(converted)


def _raw(eid: int, ts: datetime, host: str, record: int, **data: str) -> dict[str, Any]:
    utc = ts.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    raw = RawEvent(SYSMON_PROVIDER, eid, {"UtcTime": utc, **data}, record_id=record, computer=host,
                   channel=SYSMON_CHANNEL)  # fmt: skip
    return to_ecs(raw)


def whoami(ts: datetime, host: str, record: int, ingested: datetime | None = None) -> dict[str, Any]:
    guid = f"{{00000000-0000-0000-0000-{record:012d}}}"
    doc = _raw(1, ts, host, record, Image="C:\\Windows\\System32\\whoami.exe", User="CORP\\bob",
               CommandLine="whoami /all", ProcessGuid=guid)  # fmt: skip
    doc.setdefault("event", {})["ingested"] = iso(ingested or ts + MIN)
    return doc


def smb(ts: datetime, host: str, record: int, ip: str = "10.0.0.9") -> dict[str, Any]:
    doc = _raw(3, ts, host, record, Image="C:\\Windows\\System32\\svchost.exe", Protocol="tcp",
               SourceIp="10.0.0.1", SourcePort="50000", DestinationIp=ip, DestinationPort="445")  # fmt: skip
    doc.setdefault("event", {})["ingested"] = iso(ts + MIN)
    return doc


def put(es: Elasticsearch, prefix: str, docs: list[dict[str, Any]]) -> list[str]:
    return index_docs(es, prefix, docs, stamp=False)


def run(engine: Engine, rule: Rule, now: datetime) -> int:
    res = engine.run_rule(rule, now=now)
    assert res.status == "ok", res.line()
    return res.alerts


def test_two_events_across_a_clock_boundary_fire_once_and_reruns_add_nothing(
    es: Elasticsearch, prefix: str
) -> None:
    (rule,) = rules(WHOAMI, correlation(counting("Computer", 2)))  # the base rule runs only inside it
    ids = put(es, prefix, [
        # 2 minutes apart, a 5-minute mark between them
        whoami(T0 - MIN, "WKS-A", 1), whoami(T0 + MIN, "WKS-A", 2),
        whoami(T0 - MIN, "WKS-B", 3), whoami(T0 + 6 * MIN, "WKS-B", 4),  # 7 minutes apart
        whoami(T0, "WKS-C", 5),  # alone
    ])  # fmt: skip
    engine = make_engine(es, prefix, [rule])
    assert check_queries(es, [rule], prefix) == []  # `validate`: the union of its base rules' queries
    assert run(engine, rule, NOW) == 1
    (a,) = alerts(es, prefix)
    assert a["rule"]["uuid"] == "7a0c0000-0000-4000-8000-0000000000ff" and a["rule"]["ruleset"] == "sigma"
    assert a["rule"]["name"] == "correlated ff" and a["alert"]["severity"] == "high"
    assert a["threat"]["tactic"]["name"] == ["Discovery"] and a["threat"]["technique"]["id"] == ["T1033"]
    assert a["alert"]["type"] == "correlation" and a["alert"]["count"] == 2
    assert a["alert"]["group"]["fields"] == ["Computer"] and a["alert"]["group"]["values"] == ["wks-a"]
    assert a["alert"]["group"]["window_start"] == iso(T0 - MIN)
    corr = a["alert"]["correlation"]
    assert (corr["type"], corr["figure"], corr["condition"]) == ("event_count", 2, {"op": "gte", "count": 2})
    assert [m["id"] for m in corr["members"]] == ids[:2]
    assert [m["rule"] for m in corr["members"]] == ["whoami", "whoami"]
    assert corr["members"][1]["@timestamp"] == iso(T0 + MIN)
    assert a["host"]["name"] == "WKS-A" and a["alert"]["source"]["id"] == ids[0]
    assert a["ancestry"]["chain"][0]["executable"].endswith("whoami.exe")  # the first member's process
    # the same run again, then a later run whose window overlaps: nothing new
    engine.store.put(RuleState(rule.id))  # forget the checkpoint: a full rerun
    assert run(engine, rule, NOW) == 0
    assert run(engine, rule, NOW + 10 * MIN) == 0
    assert len(alerts(es, prefix)) == 1


def test_group_by_separates_groups_and_without_it_they_share(es: Elasticsearch, prefix: str) -> None:
    separate, shared = rules(
        WHOAMI, correlation(counting("Computer", 2), "01"), correlation(counting("", 2), "02")
    )
    put(es, prefix, [whoami(T0, "WKS-A", 1), whoami(T0 + MIN, "WKS-B", 2)])
    engine = make_engine(es, prefix, [separate, shared])
    assert run(engine, separate, NOW) == 0
    assert run(engine, shared, NOW) == 1
    (a,) = alerts(es, prefix)
    assert a["alert"]["group"]["values"] == [] and a["alert"]["correlation"]["members_total"] == 2
    engine.store.put(RuleState(shared.id))  # a full rerun: the one group (no key) holds its window
    assert run(engine, shared, NOW + MIN) == 0


def test_a_late_event_completes_a_window_in_the_past_once(es: Elasticsearch, prefix: str) -> None:
    (rule,) = rules(WHOAMI, correlation(counting("Computer, User", 3)))
    put(es, prefix, [whoami(T0, "WKS-L", 1), whoami(T0 + MIN, "WKS-L", 2)])
    engine = make_engine(es, prefix, [rule])
    assert run(engine, rule, NOW - 30 * MIN) == 0  # two of three
    # shipped an hour and a half late: old @timestamp, new event.ingested
    late = put(es, prefix, [whoami(T0 + 2 * MIN, "WKS-L", 3, ingested=NOW - 10 * MIN)])
    assert run(engine, rule, NOW) == 1
    (a,) = alerts(es, prefix)
    assert a["alert"]["group"]["values"] == ["wks-l", "corp\\bob"]
    assert a["alert"]["correlation"]["members"][-1]["id"] == late[0]
    # another late one inside that alert's window adds nothing
    put(es, prefix, [whoami(T0 + 3 * MIN, "WKS-L", 4, ingested=NOW + MIN)])
    assert run(engine, rule, NOW + 5 * MIN) == 0
    assert len(alerts(es, prefix)) == 1


def test_temporal_ordered_needs_the_order_and_temporal_does_not(es: Elasticsearch, prefix: str) -> None:
    common = ("  rules: [whoami, smb_out]\n  group-by: [host]\n  timespan: 5m\n"
              "  aliases:\n    host:\n      whoami: Computer\n      smb_out: host.name\n")  # fmt: skip
    ordered, unordered = rules(
        WHOAMI, SMB, correlation("  type: temporal_ordered\n" + common, "01"),
        correlation("  type: temporal\n" + common, "02"),
    )  # fmt: skip
    put(es, prefix, [
        whoami(T0 - MIN, "WKS-X", 1), smb(T0 + MIN, "WKS-X", 2),  # whoami, then SMB: in order
        smb(T0 - MIN, "WKS-Y", 3), whoami(T0 + MIN, "WKS-Y", 4),  # SMB first
        whoami(T0, "WKS-Z", 5),  # one rule only
    ])  # fmt: skip
    engine = make_engine(es, prefix, [ordered, unordered])
    assert run(engine, ordered, NOW) == 1
    assert run(engine, unordered, NOW) == 2
    by_rule: dict[str, list[list[str]]] = {}
    for a in alerts(es, prefix):
        by_rule.setdefault(a["rule"]["id"], []).append(a["alert"]["group"]["values"])
    assert by_rule[ordered.id] == [["wks-x"]]
    assert sorted(by_rule[unordered.id]) == [["wks-x"], ["wks-y"]]
    (a,) = [x for x in alerts(es, prefix) if x["rule"]["id"] == ordered.id]
    assert [m["rule"] for m in a["alert"]["correlation"]["members"]] == ["whoami", "smb_out"]


def test_value_count_counts_distinct_values(es: Elasticsearch, prefix: str) -> None:
    body = ("  type: value_count\n  rules: [smb_out]\n  group-by: [Computer]\n  timespan: 5m\n"
            "  condition: {gte: 3, field: DestinationIp}\n")  # fmt: skip
    (rule,) = rules(SMB, correlation(body))
    put(es, prefix, [
        smb(T0, "WKS-P", 1, "10.0.0.1"), smb(T0 + MIN, "WKS-P", 2, "10.0.0.1"),
        smb(T0 + 2 * MIN, "WKS-P", 3, "10.0.0.2"),  # two distinct addresses
        smb(T0, "WKS-Q", 4, "10.0.0.1"), smb(T0 + MIN, "WKS-Q", 5, "10.0.0.2"),
        smb(T0 + 2 * MIN, "WKS-Q", 6, "10.0.0.3"),  # three
    ])  # fmt: skip
    engine = make_engine(es, prefix, [rule])
    assert run(engine, rule, NOW) == 1
    (a,) = alerts(es, prefix)
    assert a["alert"]["group"]["values"] == ["wks-q"]
    corr = a["alert"]["correlation"]
    assert corr["field"] == "DestinationIp" and corr["values"] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert corr["figure"] == 3


def test_fewer_than_is_judged_once_the_window_has_closed(es: Elasticsearch, prefix: str) -> None:
    (rule,) = rules(WHOAMI, correlation(counting("Computer", 3).replace("gte", "lt")))
    t = NOW - timedelta(hours=1)  # runs at t + a few minutes: on the runs' clock, after the real one
    put(es, prefix, [whoami(t, "WKS-F", 1), whoami(t + MIN, "WKS-F", 2)])  # ingested at t+1m, t+2m
    engine = make_engine(es, prefix, [rule])
    assert run(engine, rule, t + 3 * MIN) == 0  # the window from t is still open: a third may come
    assert run(engine, rule, t + 20 * MIN) == 1  # closed with two: re-read through the lookback
    assert run(engine, rule, t + 40 * MIN) == 0
    (a,) = alerts(es, prefix)
    assert a["alert"]["correlation"]["figure"] == 2 and a["alert"]["group"]["window_start"] == iso(t)

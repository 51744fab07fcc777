"""The log-integrity rules on the real node with constructed records: record-id gaps (exact
range, none without one, incremental across runs, filled by late records within the grace or
after it, reruns adding nothing, resets), quiet hosts (quiet, steady, brand new, recovered) and
the Sysmon state-change rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from detectors.builders.context import RunContext
from detectors.builders.sequence_gap import build_sequence_gap
from detectors.loader import load_rules
from detectors.model import Rule
from detectors.query import Window, iso
from tests.integration.test_detect_support import alerts, builtin_rules, index_docs, make_engine

SYSMON = "Microsoft-Windows-Sysmon/Operational"
NOW = datetime.now(UTC).replace(microsecond=0)

HEAD = """\
id: {id}
name: test
description: test
type: {type}
severity: medium
risk_score: 40
interval: 1m
threat:
  - tactic: {{id: TA0005, name: Defense Evasion}}
    techniques: [{{id: T1070.001, name: Clear Windows Event Logs}}]
params:
"""


def _rule(tmp_path: Path, rule_id: str, rule_type: str, params: str) -> Rule:
    d = tmp_path / rule_id
    d.mkdir()
    (d / "r.yml").write_text(HEAD.format(id=rule_id, type=rule_type) + params)
    return load_rules([d], strict=True).rules[0]


def _records(
    host: str,
    ids: list[int],
    *,
    written: datetime,
    ingested: datetime,
    channel: str = SYSMON,
    code: str = "1",
) -> list[dict[str, Any]]:
    """One record per id, record ``n`` written ``n`` seconds after ``written``, all ingested at
    ``ingested``."""
    out = []
    for rid in ids:
        t = iso(written + timedelta(seconds=rid))
        out.append(
            {
                "@timestamp": t,
                "event": {"code": code, "kind": "event", "created": t, "ingested": iso(ingested)},
                "host": {"name": host},
                "winlog": {"channel": channel, "record_id": rid},
            }
        )
    return out


def _ship(es: Elasticsearch, prefix: str, docs: list[dict[str, Any]]) -> None:
    index_docs(es, prefix, docs, stamp=False)


def _gaps(es: Elasticsearch, prefix: str, rule_id: str) -> dict[tuple[str, str, int, int], dict[str, Any]]:
    out = {}
    for a in alerts(es, prefix, rule_id):
        g = a["alert"]["gap"]
        key = (
            a["host"]["name"],
            g["kind"],
            g.get("first_missing", g["after"]["record_id"]),
            g.get("last_missing", g["before"]["record_id"]),
        )
        out[key] = a
    return out


def test_gap_found_with_exact_range_incrementally_and_reruns_add_nothing(
    es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    rule = _rule(tmp_path, "gap", "sequence_gap", "  grace: 30m\n")
    t0 = NOW - timedelta(days=1)
    # WS1: 1..10 shipped first; WS2: 1..30, no gap, on two channels
    _ship(
        es,
        prefix,
        _records("WS1", list(range(1, 11)), written=t0, ingested=NOW - timedelta(hours=5))
        + _records("WS2", list(range(1, 31)), written=t0, ingested=NOW - timedelta(hours=5))
        + _records(
            "WS2", list(range(7, 19)), written=t0, ingested=NOW - timedelta(hours=5), channel="System"
        ),
    )
    engine = make_engine(es, prefix, [rule])
    r1 = engine.run_rule(rule, now=NOW - timedelta(hours=4))
    assert (r1.status, r1.alerts, r1.hits) == ("ok", 0, 52), r1
    # then WS1 15..20 arrives in a later window: the gap is between the two runs' records
    _ship(es, prefix, _records("WS1", list(range(15, 21)), written=t0, ingested=NOW - timedelta(hours=3)))
    r2 = engine.run_rule(rule, now=NOW - timedelta(hours=2))
    assert (r2.status, r2.alerts) == ("ok", 1), r2
    got = _gaps(es, prefix, "gap")
    assert list(got) == [("WS1", "gap", 11, 14)]
    a = got["WS1", "gap", 11, 14]
    g = a["alert"]["gap"]
    assert (g["missing"], g["still_missing"], g["before"]["record_id"], g["after"]["record_id"]) == (
        4,
        4,
        10,
        15,
    )
    assert g["before"]["created"] == iso(t0 + timedelta(seconds=10))
    assert g["after"]["created"] == iso(t0 + timedelta(seconds=15))
    assert a["winlog"]["channel"] == SYSMON and a["alert"]["status"] == "open"
    assert a["rule"]["category"] == "sequence_gap" and "records 11-14 missing (4)" in a["message"]
    # reruns over everything (a fresh engine state) find the same gap and write nothing
    es.delete(index=f"{prefix}-state", id="state:gap", refresh=True)
    r3 = engine.run_rule(rule, now=NOW)
    assert (r3.status, r3.alerts, r3.duplicates) == ("ok", 0, 1), r3
    assert list(_gaps(es, prefix, "gap")) == [("WS1", "gap", 11, 14)]


def test_late_records_within_the_grace_leave_no_alert_after_it_close_the_alert(
    es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    rule = _rule(tmp_path, "gap-late", "sequence_gap", "  grace: 1h\n")
    t0 = NOW - timedelta(days=2)
    engine = make_engine(es, prefix, [rule])
    # WS3 misses 6..8, WS4 misses 4..9; a run within the grace judges neither
    _ship(
        es,
        prefix,
        _records("WS3", [1, 2, 3, 4, 5, 9, 10, 11, 12], written=t0, ingested=NOW - timedelta(hours=3))
        + _records("WS4", [1, 2, 3, 10, 11, 12], written=t0, ingested=NOW - timedelta(hours=3)),
    )
    r0 = engine.run_rule(rule, now=NOW - timedelta(hours=2, minutes=40))
    assert (r0.status, r0.hits, r0.alerts) == ("ok", 0, 0), r0
    # the archive holding WS3's 6..8 arrives 30 minutes later, within the grace: no alert for WS3
    _ship(es, prefix, _records("WS3", [6, 7, 8], written=t0, ingested=NOW - timedelta(hours=2, minutes=30)))
    r1 = engine.run_rule(rule, now=NOW - timedelta(minutes=50))
    assert (r1.status, r1.hits, r1.alerts) == ("ok", 18, 1), r1
    assert list(_gaps(es, prefix, "gap-late")) == [("WS4", "gap", 4, 9)]
    # part of WS4's gap arrives after the grace: the alert is recounted, no alert for the rest
    _ship(es, prefix, _records("WS4", [5, 6], written=t0, ingested=NOW - timedelta(minutes=40)))
    r2 = engine.run_rule(rule, now=NOW + timedelta(minutes=30))
    assert (r2.status, r2.alerts, r2.suppressed, r2.updated) == ("ok", 0, 2, 1), r2
    a = _gaps(es, prefix, "gap-late")["WS4", "gap", 4, 9]
    assert (a["alert"]["gap"]["filled"], a["alert"]["gap"]["still_missing"], a["alert"]["status"]) == (
        2,
        4,
        "open",
    )
    # the rest arrives: the alert is closed with its reason; a rerun changes nothing
    _ship(es, prefix, _records("WS4", [4, 7, 8, 9], written=t0, ingested=NOW))
    r3 = engine.run_rule(rule, now=NOW + timedelta(hours=2))
    assert (r3.status, r3.alerts, r3.updated) == ("ok", 0, 1), r3
    a = _gaps(es, prefix, "gap-late")["WS4", "gap", 4, 9]
    assert (a["alert"]["gap"]["still_missing"], a["alert"]["status"]) == (0, "closed")
    assert "filled" in a["alert"]["status_reason"]
    es.delete(index=f"{prefix}-state", id="state:gap-late", refresh=True)
    r4 = engine.run_rule(rule, now=NOW + timedelta(hours=2))
    assert (r4.status, r4.alerts, r4.updated) == ("ok", 0, 0), r4
    assert len(alerts(es, prefix, "gap-late")) == 1


def test_a_restart_of_the_ids_is_reported_as_a_reset(es: Elasticsearch, prefix: str, tmp_path: Path) -> None:
    rule = _rule(tmp_path, "gap-reset", "sequence_gap", "  grace: 10m\n")
    t0 = NOW - timedelta(days=1)
    old = _records("DC1", list(range(500, 521)), written=t0, ingested=NOW - timedelta(hours=2))
    new = _records(
        "DC1", list(range(1, 9)), written=t0 + timedelta(hours=1), ingested=NOW - timedelta(hours=1)
    )
    _ship(es, prefix, old + new)
    engine = make_engine(es, prefix, [rule])
    r = engine.run_rule(rule, now=NOW)
    assert (r.status, r.alerts) == ("ok", 1), r
    got = _gaps(es, prefix, "gap-reset")
    assert list(got) == [("DC1", "reset", 1, 520)]
    g = got["DC1", "reset", 1, 520]["alert"]["gap"]
    assert g["after"]["created"] == iso(t0 + timedelta(hours=1, seconds=1)) and "missing" not in g


def _steady(host: str, per_hour: int, hours: range, skip_last: bool = False) -> list[dict[str, Any]]:
    docs = []
    for h in hours:
        if skip_last and h == 0:
            continue
        for k in range(per_hour):
            t = iso(NOW - timedelta(hours=h) + timedelta(minutes=5 + k * 50 / per_hour))
            docs.append(
                {
                    "@timestamp": t,
                    "event": {"code": "3", "kind": "event", "ingested": t},
                    "host": {"name": host},
                }
            )
    return docs


SILENCE = "  history: 2d\n  bucket: 1h\n  window: 1h\n  fraction: 0.2\n  min_history: 1d\n  min_expected: 5\n"


def test_a_quiet_host_is_alerted_once_per_quiet_period(
    es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    rule = _rule(tmp_path, "quiet", "silence", SILENCE)
    # hour h covers [NOW - h h + 5 min, NOW - h h + 55 min); the last window is [NOW, NOW + 1h)
    _ship(
        es,
        prefix,
        _steady("STEADY", 10, range(0, 50))
        + _steady("QUIET", 10, range(1, 50))
        + _steady("NEWBIE", 10, range(1, 10))
        + _steady("RARE", 2, range(0, 50), skip_last=True),
    )
    engine = make_engine(es, prefix, [rule])
    when = NOW + timedelta(hours=1)
    r1 = engine.run_rule(rule, now=when)
    assert (r1.status, r1.alerts) == ("ok", 1), r1
    [a] = alerts(es, prefix, "quiet")
    s = a["alert"]["silence"]
    assert a["host"]["name"] == "QUIET" and s["ongoing"] is True
    assert (s["observed"], s["expected"], s["median_per_bucket"]) == (0, 10.0, 10.0)
    assert s["since"] == iso(NOW)
    # the next run while it is still quiet updates the same alert
    r2 = engine.run_rule(rule, now=when + timedelta(minutes=15))
    assert (r2.status, r2.alerts, r2.updated) == ("ok", 0, 1), r2
    assert len(alerts(es, prefix, "quiet")) == 1
    # it comes back: the period ends; the alert stays, with when it ended
    _ship(es, prefix, _steady("QUIET", 10, range(-1, 0)))
    r3 = engine.run_rule(rule, now=when + timedelta(minutes=30))
    assert (r3.status, r3.alerts, r3.updated) == ("ok", 0, 1), r3
    [a] = alerts(es, prefix, "quiet")
    assert a["alert"]["silence"]["ongoing"] is False and a["alert"]["silence"]["ended"] == iso(
        when + timedelta(minutes=30)
    )


def test_a_long_quiet_period_stays_followed(es: Elasticsearch, prefix: str, tmp_path: Path) -> None:
    """Quiet for longer than half its history, a host's own median falls to nothing: its
    ongoing alert is still updated (judged against the rate it had when it went quiet), and
    the period still ends when the host comes back."""
    rule = _rule(tmp_path, "long-quiet", "silence", SILENCE)
    _ship(es, prefix, _steady("QUIET", 10, range(1, 50)))
    engine = make_engine(es, prefix, [rule])
    when = NOW + timedelta(hours=1)
    assert engine.run_rule(rule, now=when).alerts == 1
    much_later = when + timedelta(hours=30)  # 31 silent hours of a 48-hour history
    r = engine.run_rule(rule, now=much_later)
    assert (r.status, r.alerts, r.updated) == ("ok", 0, 1), r
    [a] = alerts(es, prefix, "long-quiet")
    s = a["alert"]["silence"]
    assert s["ongoing"] is True and s["last_checked"] == iso(much_later) and s["expected"] == 10.0
    _ship(es, prefix, _steady("QUIET", 10, range(-31, -30)))  # back, in the last hour
    r = engine.run_rule(rule, now=much_later + timedelta(minutes=30))
    assert (r.status, r.updated) == ("ok", 1), r
    [a] = alerts(es, prefix, "long-quiet")
    assert a["alert"]["silence"]["ongoing"] is False


def test_sysmon_state_changes_alert(es: Elasticsearch, prefix: str) -> None:
    rules = [r for r in builtin_rules() if r.id == "sysmon-state-change"]
    t0 = NOW - timedelta(hours=1)
    docs = [
        d
        for code in ("4", "16", "255", "1")
        for d in _records("WS9", [int(code)], written=t0, ingested=NOW, code=code)
    ]
    _ship(es, prefix, docs)
    r = make_engine(es, prefix, rules).run(only_due=False)[0]
    assert (r.status, r.alerts) == ("ok", 3), r
    assert sorted(a["event"]["code"] for a in alerts(es, prefix, "sysmon-state-change")) == ["16", "255", "4"]


def test_only_groups_failing_the_cheap_check_are_read(es: Elasticsearch, prefix: str, tmp_path: Path) -> None:
    rule = _rule(tmp_path, "gap-scale", "sequence_gap", "  grace: 10m\n")
    t0 = NOW - timedelta(days=1)
    docs = [d for n in range(120) for d in _records(f"H{n:03}", list(range(1, 21)), written=t0, ingested=NOW)]
    # one host with a gap, one whose ids restart within the tolerance (out-of-order stamps): both are read
    docs += _records("ODD1", [1, 2, 3, 5], written=t0, ingested=NOW)
    docs += [
        *_records("ODD2", [3, 4], written=t0, ingested=NOW),
        *_records("ODD2", [1, 2], written=t0 + timedelta(seconds=10), ingested=NOW),
    ]
    _ship(es, prefix, docs)
    make_engine(es, prefix, [rule])  # templates
    later = NOW + timedelta(hours=1)
    stats = build_sequence_gap(rule, RunContext(es=es, prefix=prefix, now=later, window=Window(None, later)))
    assert stats.notes == ["122 (host, channel) groups checked, 2 read record by record"]
    assert (stats.hits, stats.alerts) == (2408, 1)
    assert list(_gaps(es, prefix, "gap-scale")) == [("ODD1", "gap", 4, 4)]

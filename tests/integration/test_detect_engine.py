"""Engine behaviour on hand-made events: late archives, > 10,000 matches, ancestry chains and
breaks, a broken rule that does not stop the others, threshold and suppression, triage status,
leases, the daemon."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import Elasticsearch

from detectors.alerts import set_status
from detectors.ancestry import build_chains
from detectors.engine import Engine, EngineOptions
from detectors.loader import load_rules
from detectors.model import Rule
from detectors.query import iso
from detectors.scheduler import Daemon
from detectors.state import StateStore
from tests.integration.test_detect_support import (
    alerts,
    builtin_rules,
    count_alerts,
    ensure_templates,
    index_docs,
    make_engine,
    proc_event,
    ts_ago,
)

HOST = "WS09.corp.example"


def _tamper(entity: str, ts: str, host: str = HOST) -> dict[str, object]:
    return proc_event(host, ts, entity, None, "C:\\Windows\\System32\\dllhost.exe", code="25",
                      extra={"message": "Image is replaced"})  # fmt: skip


def _rule(rule_id: str) -> list[Rule]:
    return [r for r in builtin_rules() if r.id == rule_id]


def test_late_archive_with_old_timestamps_detected_once(es: Elasticsearch, prefix: str) -> None:
    engine = make_engine(es, prefix, _rule("process-tampering"))
    index_docs(es, prefix, [_tamper("{A-1}", ts_ago(0, -5))])
    r1 = engine.run(only_due=False)[0]
    assert (r1.status, r1.alerts) == ("ok", 1)
    # an archive shipped now, with events from three days (and two months) ago
    index_docs(es, prefix, [_tamper("{B-1}", ts_ago(3)), _tamper("{B-2}", ts_ago(62))])
    r2 = engine.run(only_due=False)[0]
    assert (r2.status, r2.alerts) == ("ok", 2)
    r3 = engine.run(only_due=False)[0]
    assert r3.alerts == 0
    got = alerts(es, prefix, "process-tampering")
    assert sorted(a["process"]["entity_id"] for a in got) == ["{A-1}", "{B-1}", "{B-2}"]
    # alerts live in the month of their source event
    old = next(a for a in got if a["process"]["entity_id"] == "{B-2}")
    assert (
        old["_index"]
        == f"{prefix}-alerts-{old['alert']['original_time'][:4]}.{old['alert']['original_time'][5:7]}"
    )
    st = StateStore(es, prefix).get("process-tampering")
    assert st.status == "ok" and st.runs == 3 and st.checkpoint is not None


def test_more_than_10000_matches_all_become_alerts(es: Elasticsearch, prefix: str) -> None:
    engine = make_engine(es, prefix, _rule("process-tampering"), page_size=4000)
    n = 10_250
    index_docs(es, prefix, [_tamper(f"{{E-{i}}}", ts_ago(0, -60 + i / 1000)) for i in range(n)])
    res = engine.run(only_due=False)[0]
    assert res.status == "ok", res
    assert (res.hits, res.alerts) == (n, n)
    assert count_alerts(es, prefix, "process-tampering") == n
    again = engine.run_rule(_rule("process-tampering")[0])
    assert again.alerts == 0


def _chain_docs(n_levels: int, missing_root: bool) -> list[dict[str, object]]:
    docs = []
    for i in range(n_levels + 1):
        parent = f"{{P-{i - 1}}}" if i > 0 else ("{P-GONE}" if missing_root else None)
        docs.append(
            proc_event(HOST, ts_ago(0, -100 + i), f"{{P-{i}}}", parent, f"C:\\t\\level{i}.exe", pid=1000 + i)
        )
    # the same entity ids on another host must never be mixed in
    docs.append(proc_event("OTHER.corp.example", ts_ago(0, -50), "{P-2}", "{X}", "C:\\other.exe"))
    return docs


def test_five_level_ancestry_rebuilt_and_break_reported(es: Elasticsearch, prefix: str) -> None:
    ensure_templates(es, prefix)
    index_docs(es, prefix, _chain_docs(5, missing_root=True))
    chains = build_chains(es, prefix, [(HOST, "{P-5}"), (HOST, "{P-3}")], depth=10)
    c = chains[(HOST, "{P-5}")]
    assert [lk.entity_id for lk in c.links] == [f"{{P-{i}}}" for i in range(5, -1, -1)]
    assert [lk.executable for lk in c.links] == [f"C:\\t\\level{i}.exe" for i in range(5, -1, -1)]
    assert [lk.pid for lk in c.links] == [1000 + i for i in range(5, -1, -1)]
    assert all(lk.start and lk.command_line for lk in c.links)
    assert c.broken and c.missing_entity_id == "{P-GONE}"
    assert [lk.entity_id for lk in chains[(HOST, "{P-3}")].links] == ["{P-3}", "{P-2}", "{P-1}", "{P-0}"]
    short = build_chains(es, prefix, [(HOST, "{P-5}")], depth=3)[(HOST, "{P-5}")]
    assert len(short.links) == 3 and short.truncated and not short.broken


def test_alert_carries_ancestry(es: Elasticsearch, prefix: str) -> None:
    engine = make_engine(es, prefix, _rule("process-tampering"))
    index_docs(es, prefix, _chain_docs(5, missing_root=False))
    index_docs(es, prefix, [_tamper("{P-5}", ts_ago(0, -10)), _tamper("{NEVER-STARTED}", ts_ago(0, -9))])
    engine.run(only_due=False)
    got = {a["process"]["entity_id"]: a for a in alerts(es, prefix, "process-tampering")}
    anc = got["{P-5}"]["ancestry"]
    assert [x["entity_id"] for x in anc["chain"]] == [f"{{P-{i}}}" for i in range(5, -1, -1)]
    assert anc["broken"] is False and anc["depth"] == 6
    orphan = got["{NEVER-STARTED}"]["ancestry"]
    assert (
        orphan["broken"] is True
        and orphan["missing_entity_id"] == "{NEVER-STARTED}"
        and orphan["chain"] == []
    )


GOOD = """\
id: custom-tamper
name: Custom tampering
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
BAD_QUERY = GOOD.replace("custom-tamper", "custom-broken") + '  lucene: "process.name:(unclosed"\n'
BAD_YAML = GOOD.replace("custom-tamper", "custom-typo").replace("severity: low", "severity: urgent")


def test_rule_with_error_reported_with_file_and_line_others_run(
    es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    (tmp_path / "a_good.yml").write_text(GOOD)
    (tmp_path / "b_broken.yml").write_text(BAD_QUERY)
    (tmp_path / "c_typo.yml").write_text(BAD_YAML)
    res = load_rules([tmp_path])
    assert [str(e) for e in res.errors] == [
        f"{tmp_path / 'c_typo.yml'}:5: severity 'urgent' is not one of low, medium, high, critical"
    ]
    engine = make_engine(es, prefix, res.rules)
    index_docs(es, prefix, [_tamper("{T-1}", ts_ago(0, -3))])
    results = {r.rule_id: r for r in engine.run(only_due=False)}
    assert results["custom-tamper"].status == "ok" and results["custom-tamper"].alerts == 1
    broken = results["custom-broken"]
    assert broken.status == "failed"
    assert broken.where == f"{tmp_path / 'b_broken.yml'}:13"
    st = StateStore(es, prefix).get("custom-broken")
    assert st.status == "failed" and st.last_error and "b_broken.yml:13" in st.last_error


THRESHOLD = """\
id: many-tamper
name: Burst of tampering
description: test
type: threshold
severity: medium
risk_score: 50
interval: 1m
threat:
  - tactic: {id: TA0005, name: Defense Evasion}
    techniques: [{id: T1055, name: Process Injection}]
filter:
  event_codes: [25]
params:
  group_by: [host.name]
  threshold: 3
  window: 1h
"""


def test_threshold_and_suppression(es: Elasticsearch, prefix: str, tmp_path: Path) -> None:
    (tmp_path / "t.yml").write_text(THRESHOLD)
    (tmp_path / "s.yml").write_text(
        GOOD.replace("custom-tamper", "suppressed-tamper")
        + "suppression:\n  group_by: [host.name]\n  window: 1d\n"
    )
    rules = load_rules([tmp_path], strict=True).rules
    engine = make_engine(es, prefix, rules)
    base = datetime.now(UTC).replace(minute=5, second=0, microsecond=0) - timedelta(hours=3)
    ts = [(base + timedelta(minutes=i)).isoformat().replace("+00:00", "Z") for i in range(4)]
    index_docs(es, prefix, [_tamper(f"{{H-{i}}}", t) for i, t in enumerate(ts)])
    index_docs(es, prefix, [_tamper("{Q-1}", ts[0], host="QUIET.corp.example")])
    res = {r.rule_id: r for r in engine.run(only_due=False)}
    assert res["many-tamper"].alerts == 1
    th = alerts(es, prefix, "many-tamper")
    assert len(th) == 1 and th[0]["alert"]["count"] == 4 and th[0]["alert"]["group"]["values"] == [HOST]
    sup = alerts(es, prefix, "suppressed-tamper")
    assert sorted(a["host"]["name"] for a in sup) == ["QUIET.corp.example", HOST]
    assert res["suppressed-tamper"].suppressed == 3


def test_alert_status_ack_and_close(es: Elasticsearch, prefix: str) -> None:
    engine = make_engine(es, prefix, _rule("process-tampering"))
    index_docs(es, prefix, [_tamper("{S-1}", ts_ago(0, -3))])
    engine.run(only_due=False)
    aid = alerts(es, prefix)[0]["_id"]
    assert set_status(es, prefix, aid, "acknowledged") == "open"
    assert set_status(es, prefix, aid, "closed", reason="benign test") == "acknowledged"
    a = alerts(es, prefix)[0]
    assert a["alert"]["status"] == "closed" and a["alert"]["status_reason"] == "benign test"


def test_lease_excludes_a_second_scheduler(es: Elasticsearch, prefix: str) -> None:
    rule = _rule("process-tampering")[0]
    a = make_engine(es, prefix, [rule])
    b = Engine(es, prefix, [rule], EngineOptions(ingest_delay=0.0), owner="other")
    assert a.store.acquire(rule.id, a.owner, 600)
    r = b.run_rule(rule)
    assert r.status == "locked" and a.owner in (r.error or "")
    a.store.release(rule.id, a.owner)
    assert b.run_rule(rule).status == "ok"


def test_a_released_lease_is_free_at_any_clock_one_rule_or_many(es: Elasticsearch, prefix: str) -> None:
    """A run whose clock is behind the one that released a lease still takes it: one rule
    (``acquire``) and a batch (``acquire_many``) judge a lease the same way."""
    store = StateStore(es, prefix)
    store.ensure()
    later = datetime.now(UTC) + timedelta(days=1)
    for rule_id in ("r-one", "r-many"):  # released by a run whose clock is a day ahead
        doc = {"kind": "lease", "rule_id": rule_id, "owner": "", "acquired": iso(later)}
        doc["expires"] = iso(later)
        es.index(index=store.index, id=f"lease:{rule_id}", document=doc, refresh=True)
    assert store.acquire("r-one", "behind", 600)
    won, errors = store.acquire_many(["r-many"], "behind", 600, datetime.now(UTC))
    assert won == {"r-many"} and not errors
    # a live holder still excludes, in both
    assert not store.acquire("r-one", "third", 600)
    won, _ = store.acquire_many(["r-many"], "third", 600, datetime.now(UTC))
    assert not won


def test_daemon_runs_rules_and_stops(es: Elasticsearch, prefix: str) -> None:
    rules = _rule("process-tampering")
    engine = make_engine(es, prefix, rules)
    index_docs(es, prefix, [_tamper("{D-1}", ts_ago(0, -3))])
    out = io.StringIO()
    d = Daemon(engine, rules, json_lines=True, out=out, tick=0.05)
    t = threading.Thread(target=d.run)
    t.start()
    while not d.results:
        threading.Event().wait(0.05)
    d.stop()
    t.join(timeout=30)
    assert not t.is_alive()
    assert '"rule":"process-tampering"' in out.getvalue() and '"alerts":1' in out.getvalue()


def _group(a: dict[str, object]) -> dict[str, object]:
    g = a["alert"]["group"]  # type: ignore[index]
    return {k: g[k] for k in ("values", "window_start", "count", "first_seen", "last_seen")}  # type: ignore[index]


def test_suppression_group_figures_exact_across_reruns(
    es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    (tmp_path / "s.yml").write_text(
        GOOD.replace("custom-tamper", "grouped-tamper")
        + "suppression:\n  group_by: [host.name]\n  window: 1h\n"
    )
    rules = load_rules([tmp_path], strict=True).rules
    engine = make_engine(es, prefix, rules)
    b1 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    b2 = b1 + timedelta(hours=1)

    def at(base: datetime, minutes: float) -> str:
        return (base + timedelta(minutes=minutes)).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def iso_b(base: datetime) -> str:
        return at(base, 0)

    n = 5
    index_docs(es, prefix, [_tamper(f"{{G-{i}}}", at(b1, 5 + i)) for i in range(n)])
    res = engine.run(only_due=False)[0]
    assert (res.status, res.hits, res.alerts, res.suppressed) == ("ok", n, 1, n - 1)
    got = alerts(es, prefix, "grouped-tamper")
    want = {"values": [HOST], "window_start": iso_b(b1), "count": n,
            "first_seen": at(b1, 5), "last_seen": at(b1, 5 + n - 1)}  # fmt: skip
    assert [_group(a) for a in got] == [want]
    first_id = got[0]["_id"]
    # the next run re-reads the overlap (409s): the figures stay absolute, not 2n
    again = engine.run(only_due=False)[0]
    assert again.status == "ok" and again.hits == n and again.alerts == 0
    assert [_group(a) for a in alerts(es, prefix, "grouped-tamper")] == [want]
    # a rerun over everything ever ingested: still n
    rerun = make_engine(es, prefix, rules, overlap=10 * 86400).run(only_due=False)[0]
    assert rerun.status == "ok" and rerun.hits == n and rerun.alerts == 0
    assert [_group(a) for a in alerts(es, prefix, "grouped-tamper")] == [want]

    # later arrivals of the same group and bucket (one earlier than all, one later): same alert,
    # new totals; another host and another bucket: their own alerts
    late = [_tamper("{G-L1}", at(b1, 1)), _tamper("{G-L2}", at(b1, 59.5))]
    other_host = [_tamper(f"{{O-{i}}}", at(b1, 10 + i), host="OTHER.corp.example") for i in range(2)]
    other_bucket = [_tamper(f"{{N-{i}}}", at(b2, 20 + i)) for i in range(3)]
    index_docs(es, prefix, late + other_host + other_bucket)
    res = engine.run(only_due=False)[0]
    assert res.status == "ok" and res.alerts == 2, res
    got = alerts(es, prefix, "grouped-tamper")
    assert len(got) == 3
    by = {(a["host"]["name"], a["alert"]["group"]["window_start"]): a for a in got}
    assert by[(HOST, iso_b(b1))]["_id"] == first_id
    assert _group(by[(HOST, iso_b(b1))]) == {
        **want,
        "count": n + 2,
        "first_seen": at(b1, 1),
        "last_seen": at(b1, 59.5),
    }
    assert _group(by[("OTHER.corp.example", iso_b(b1))]) == {
        "values": ["OTHER.corp.example"], "window_start": iso_b(b1), "count": 2,
        "first_seen": at(b1, 10), "last_seen": at(b1, 11)}  # fmt: skip
    assert _group(by[(HOST, iso_b(b2))]) == {
        "values": [HOST], "window_start": iso_b(b2), "count": 3,
        "first_seen": at(b2, 20), "last_seen": at(b2, 22)}  # fmt: skip
    # and the run after that (overlap again) changes nothing
    engine.run(only_due=False)
    assert sorted(map(str, (_group(a) for a in alerts(es, prefix, "grouped-tamper")))) == sorted(
        map(str, (_group(a) for a in got))
    )


def test_suppression_group_figures_missing_and_multi_valued_fields(
    es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    (tmp_path / "s.yml").write_text(
        GOOD.replace("custom-tamper", "user-tamper")
        + "suppression:\n  group_by: [host.name, user.name]\n  window: 1d\n"
    )
    engine = make_engine(es, prefix, load_rules([tmp_path], strict=True).rules, page_size=2)
    ts = (
        datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    ).isoformat()
    ts = ts.replace("+00:00", "Z")
    users: list[object] = [["a", "b"], ["a", "b"], ["b", "a"], "a", "a", "a", None, None, "a|b"]
    docs = []
    for i, u in enumerate(users):
        d = _tamper(f"{{U-{i}}}", ts)
        if u is not None:
            d["user"] = {"name": u}
        docs.append(d)
    index_docs(es, prefix, docs)
    res = engine.run(only_due=False)[0]
    assert res.status == "ok" and res.hits == len(users), res
    counts = {
        a["alert"]["group"]["key"]: a["alert"]["group"]["count"] for a in alerts(es, prefix, "user-tamper")
    }
    # "a|b" from ["a", "b"] and from "a|b" is one key (as the alert id always had it)
    assert counts == {f"{HOST}|a|b": 3, f"{HOST}|b|a": 1, f"{HOST}|a": 3, f"{HOST}|": 2}

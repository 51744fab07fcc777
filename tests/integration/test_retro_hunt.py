"""Retro-hunt on a real node: events shipped first, intel listed after; the hunt raises exactly
the alerts the scheduled ``intel_match`` rules would have, once; it resumes after a kill, skips
removed indicators, honours allowlists and its window."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from detectors.engine import Engine
from detectors.intel.indices import lookup_index, setup_intel
from detectors.intel.loader import LoadResult, feed_from_location, load_feed, remove_feed
from detectors.loader import load_rules
from detectors.model import Rule
from detectors.retro import RetroHunter, pending_hunts, read_progress
from detectors.state import parse_time, state_index
from shipper.es import ClusterSettings
from tests.integration.test_detect_support import (
    alerts,
    builtin_rules,
    cli_env,
    count_alerts,
    index_docs,
    make_engine,
    proc_event,
    ts_ago,
)

HOST = "WS31.corp.example"
BAD_SHA = "ab" * 32
BAD_IP = "203.0.113.77"
BAD_DOMAIN = "evil-updates.example"
INTEL_RULES = ("intel-hash-executed", "intel-ip-connection", "intel-dns-domain")
# what may differ between a retro alert and the scheduled one: when and by which run
TIMING = ("@timestamp", "alert.status_updated", "alert.run", "alert.retro", "threat.indicator.first_seen")


def _rules(*ids: str) -> list[Rule]:
    found = [r for r in builtin_rules() if r.id in ids]
    assert len(found) == len(ids), ids
    return found


def _exe(ts: str, entity: str, sha256: str, exe: str = "C:\\Users\\x\\tool.exe") -> dict[str, Any]:
    return proc_event(HOST, ts, entity, None, exe, extra={"process.hash.sha256": sha256})


def _conn(ts: str, ip: str) -> dict[str, Any]:
    extra = {"destination.ip": ip, "destination.port": 443, "source.ip": "10.0.0.9"}
    return proc_event(HOST, ts, "{C-1}", None, "C:\\x\\beacon.exe", code="3", extra=extra)


def _dns(ts: str, name: str) -> dict[str, Any]:
    extra = {"dns.question.name": name, "dns.question.registered_domain": name}
    return proc_event(HOST, ts, "{D-1}", None, "C:\\x\\updater.exe", code="22", extra=extra)


def _load(es: Elasticsearch, prefix: str, tmp: Path, name: str, values: list[str], **kw: Any) -> LoadResult:
    setup_intel(es, prefix)
    path = tmp / f"{name}.txt"
    path.write_text("".join(f"{v}\n" for v in values), encoding="utf-8")
    res = load_feed(
        es,
        feed_from_location(str(path), name=name, min_ratio=0, **kw),
        prefix=prefix,
        cache_dir=tmp / f"cache-{name}",
        force=True,
    )
    assert res.status == "loaded", res
    return res


def _strip(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k not in ("_index", "@timestamp")}
    out["alert"] = {k: v for k, v in out["alert"].items() if k not in ("status_updated", "run", "retro")}
    ind = dict(out["threat"]["indicator"])
    ind.pop("first_seen", None)
    out["threat"] = {**out["threat"], "indicator": ind}
    return out


def _forget_rule_states(es: Elasticsearch, prefix: str, rules: list[Rule]) -> None:
    for r in rules:
        es.options(ignore_status=404).delete(index=state_index(prefix), id=f"state:{r.id}", refresh=True)


def test_retro_alerts_are_the_scheduled_alerts(es: Elasticsearch, prefix: str, tmp_path: Path) -> None:
    rules = _rules(*INTEL_RULES)
    engine = make_engine(es, prefix, rules, overlap=0.0)  # no re-examined edge: events are minutes old
    _load(es, prefix, tmp_path, "tf", ["198.51.100.1"])  # a feed that lists none of them yet
    assert RetroHunter(es, prefix, rules).run()[0].alerts == 0
    index_docs(es, prefix, [_exe(ts_ago(20), "{E-1}", BAD_SHA), _conn(ts_ago(40), BAD_IP),
                            _dns(ts_ago(10), BAD_DOMAIN), _exe(ts_ago(9), "{E-2}", "cd" * 32)])  # fmt: skip
    assert sum(r.alerts for r in engine.run(only_due=False)) == 0

    res = _load(es, prefix, tmp_path, "tf", ["198.51.100.1", BAD_SHA, BAD_IP, BAD_DOMAIN])
    assert res.added == 3
    [p] = pending_hunts(es, prefix)
    assert (p.feed, p.generation, p.counts) == ("tf", 2, {"sha256": 1, "ip": 1, "domain": 1})
    assert sum(r.alerts for r in engine.run(only_due=False)) == 0  # scheduled runs never look back

    [hunt] = RetroHunter(es, prefix, builtin_rules()).run()
    assert (hunt.status, hunt.alerts, hunt.duplicates, hunt.unlisted) == ("done", 3, 0, 0), hunt
    assert pending_hunts(es, prefix) == []
    es.indices.refresh(index=lookup_index(prefix))
    assert es.count(index=lookup_index(prefix), query={"ids": {"values": p.chunk_ids}})["count"] == 0
    retro = {a["_id"]: a for a in alerts(es, prefix)}
    assert sorted(a["rule"]["id"] for a in retro.values()) == sorted(INTEL_RULES)
    for a in retro.values():
        r = a["alert"]["retro"]
        assert (r["feed"], r["generation"], r["predates_listing"]) == ("tf", 2, True)
        when = parse_time(a["alert"]["original_time"])
        assert when is not None and r["predates_by_seconds"] == int((p.listed_at - when).total_seconds())
        assert a["threat"]["indicator"]["first_seen"] == r["listed_at"]  # the feed gives none
        assert a["alert"]["intel"]["feeds"] == ["tf"]

    # the scheduled rules, rerun over everything, find the same alerts: all 409s ...
    _forget_rule_states(es, prefix, rules)
    again = engine.run(only_due=False)
    assert (sum(r.alerts for r in again), sum(r.duplicates for r in again)) == (0, 3)
    # ... and, written afresh, the same documents up to when and by which run
    for aid, a in retro.items():
        es.delete(index=a["_index"], id=aid, refresh=True)
    _forget_rule_states(es, prefix, rules)
    assert sum(r.alerts for r in engine.run(only_due=False)) == 3
    scheduled = {a["_id"]: a for a in alerts(es, prefix)}
    assert scheduled.keys() == retro.keys()
    for aid in retro:
        assert scheduled[aid]["_index"] == retro[aid]["_index"]
        assert _strip(scheduled[aid]) == _strip(retro[aid]), aid
        assert "retro" not in scheduled[aid]["alert"]


def test_relisting_hunts_again_and_adds_nothing(es: Elasticsearch, prefix: str, tmp_path: Path) -> None:
    rules = _rules("intel-hash-executed")
    index_docs(es, prefix, [_exe(ts_ago(3), "{R-1}", BAD_SHA), _exe(ts_ago(2), "{R-2}", BAD_SHA)])
    make_engine(es, prefix, rules)
    _load(es, prefix, tmp_path, "hashes", [BAD_SHA])
    [first] = RetroHunter(es, prefix, rules).run()
    assert (first.alerts, first.duplicates) == (2, 0), first
    assert RetroHunter(es, prefix, rules).run() == []  # nothing queued any more
    remove_feed(es, "hashes", prefix=prefix)
    _load(es, prefix, tmp_path, "hashes", [BAD_SHA])  # listed anew: hunted anew, the same ids
    [second] = RetroHunter(es, prefix, rules).run()
    assert (second.alerts, second.duplicates) == (0, 2), second
    assert count_alerts(es, prefix) == 2


def test_hunt_killed_midway_resumes(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path
) -> None:
    rules = _rules("intel-hash-executed")
    # one event in each of three months: three units
    index_docs(es, prefix, [_exe(ts_ago(d), f"{{K-{d}}}", BAD_SHA) for d in (70, 38, 2)])
    make_engine(es, prefix, rules)
    _load(es, prefix, tmp_path, "hashes", [BAD_SHA])
    [p] = pending_hunts(es, prefix)
    script = textwrap.dedent(
        """
        import os
        from detectors.retro import RetroHunter
        from shipper.es import ClusterSettings, make_client
        from tests.integration.test_detect_support import builtin_rules
        es = make_client(ClusterSettings.from_env())
        rules = [r for r in builtin_rules() if r.id == "intel-hash-executed"]
        def die(key, stats):
            print("unit", key, stats.alerts, flush=True)
            os._exit(9)  # killed: no lease released, nothing cleaned up
        RetroHunter(es, os.environ["SYSMON_INDEX_PREFIX"], rules, on_unit=die).run()
        """
    )
    env = {**cli_env(es_settings, prefix), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path.cwd())}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 9 and proc.stdout.startswith("unit "), proc.stdout + proc.stderr
    progress = read_progress(es, prefix, p)
    assert len(progress.units_done) == 1 and progress.alerts == 1 and progress.status == "running"
    assert [x.generation_id for x in pending_hunts(es, prefix)] == [p.generation_id]

    [resumed] = RetroHunter(es, prefix, rules).run()  # the dead holder's lease is taken over
    assert (resumed.status, resumed.units, resumed.resumed) == ("done", 3, 1), resumed
    assert (resumed.alerts, resumed.duplicates) == (2, 0), resumed  # the done unit is not redone
    assert count_alerts(es, prefix, "intel-hash-executed") == 3
    done = read_progress(es, prefix, p)
    assert done.status == "done" and done.alerts == 3 and len(done.units_done) == 3


def test_removed_indicator_raises_nothing(es: Elasticsearch, prefix: str, tmp_path: Path) -> None:
    rules = _rules("intel-hash-executed")
    gone, kept = "e1" * 32, "e2" * 32
    index_docs(es, prefix, [_exe(ts_ago(5), "{G-1}", gone), _exe(ts_ago(5), "{G-2}", kept)])
    make_engine(es, prefix, rules)
    _load(es, prefix, tmp_path, "hashes", [gone, kept])  # queued, not hunted yet
    third = _load(es, prefix, tmp_path, "hashes", [kept])  # `gone` is delisted before the hunt
    assert third.added == 0
    [hunt] = RetroHunter(es, prefix, rules).run()
    assert (hunt.alerts, hunt.unlisted) == (1, 1), hunt
    [a] = alerts(es, prefix)
    assert a["process"]["hash"]["sha256"] == kept
    # a feed removed before its hunt ran leaves nothing to hunt
    _load(es, prefix, tmp_path, "other", [gone])
    assert [p.feed for p in pending_hunts(es, prefix)] == ["other"]
    remove_feed(es, "other", prefix=prefix)
    assert pending_hunts(es, prefix) == [] and RetroHunter(es, prefix, rules).run() == []
    assert count_alerts(es, prefix) == 1


ALLOWED_RULE = """
id: intel-hash-not-allowlisted
name: Intel hash executed outside the allowlisted paths
description: intel_match with an allowlist exception
type: intel_match
severity: high
risk_score: 70
interval: 5m
threat:
  - tactic: {id: TA0002, name: Execution}
    techniques:
      - {id: T1204.002, name: "User Execution: Malicious File"}
filter:
  event_codes: [1]
fields: [host, process]
params:
  fields: [process.hash.sha256]
exceptions:
  allowlists:
    - fields: [process.executable]
"""


def test_allowlist_added_before_the_hunt_suppresses_it(
    es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "allowed.yml").write_text(ALLOWED_RULE)
    rules = list(load_rules([tmp_path / "rules"], strict=True).rules)
    lab = "C:\\Lab\\sample.exe"
    index_docs(es, prefix, [_exe(ts_ago(4), "{A-1}", BAD_SHA, exe=lab), _exe(ts_ago(4), "{A-2}", BAD_SHA)])
    make_engine(es, prefix, rules)
    allow = _load(es, prefix, tmp_path, "lab-paths", [lab], kind="allow")
    assert allow.added is None and pending_hunts(es, prefix) == []  # an allowlist queues no hunt
    _load(es, prefix, tmp_path, "hashes", [BAD_SHA])
    [hunt] = RetroHunter(es, prefix, rules).run()
    assert hunt.alerts == 1, hunt
    [a] = alerts(es, prefix)
    assert a["process"]["executable"] == "C:\\Users\\x\\tool.exe"


def test_window_bounds_the_hunt(es: Elasticsearch, prefix: str, tmp_path: Path) -> None:
    rules = _rules("intel-hash-executed")
    index_docs(es, prefix, [_exe(ts_ago(100), "{W-old}", BAD_SHA), _exe(ts_ago(6), "{W-new}", BAD_SHA),
                            _exe(ts_ago(40), "{W-mid}", BAD_SHA)])  # fmt: skip
    make_engine(es, prefix, rules)
    _load(es, prefix, tmp_path, "hashes", [BAD_SHA], retro_window=30 * 86400.0)
    [p] = pending_hunts(es, prefix)
    assert p.window == timedelta(days=30) and p.since is not None
    [hunt] = RetroHunter(es, prefix, rules).run()
    assert hunt.alerts == 1, hunt
    # indices wholly before the window are not even searched
    months = {f"{d:%Y.%m}" for d in (datetime.now(UTC) - timedelta(days=n) for n in (6, 40, 100))}
    assert hunt.units == len([m for m in months if m >= f"{p.since:%Y.%m}"]) < len(months)
    [a] = alerts(es, prefix)
    assert a["process"]["entity_id"] == "{W-new}"


def test_engine_unchanged_without_feeds(es: Elasticsearch, prefix: str) -> None:
    """No feed, no hunt: the hunter finds nothing to do and the rules run as before."""
    rules = _rules("intel-hash-executed")
    engine: Engine = make_engine(es, prefix, rules)
    index_docs(es, prefix, [_exe(ts_ago(1), "{N-1}", BAD_SHA)])
    assert RetroHunter(es, prefix, rules).run() == []
    assert engine.run(only_due=False)[0].status == "ok"


def test_allowlist_entry_removed_exposes_the_events_it_hid(
    es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "allowed.yml").write_text(ALLOWED_RULE)
    rules = list(load_rules([tmp_path / "rules"], strict=True).rules)
    lab, kit = "C:\\Lab\\sample.exe", "C:\\Kit\\tool.exe"
    engine = make_engine(es, prefix, rules, overlap=0.0)
    index_docs(
        es, prefix, [_exe(ts_ago(6), "{U-1}", BAD_SHA, exe=lab), _exe(ts_ago(6), "{U-2}", BAD_SHA, exe=kit)]
    )
    _load(es, prefix, tmp_path, "lab-paths", [lab, kit], kind="allow")
    _load(es, prefix, tmp_path, "hashes", [BAD_SHA])
    assert RetroHunter(es, prefix, rules).run()[0].alerts == 0  # both allowlisted
    assert engine.run(only_due=False)[0].alerts == 0

    _load(es, prefix, tmp_path, "lab-paths", [kit], kind="allow")  # the lab path is no longer trusted
    [p] = pending_hunts(es, prefix)
    assert (p.feed, p.role, p.counts) == ("lab-paths", "removed", {"image_path": 1})
    [hunt] = RetroHunter(es, prefix, rules).run()
    assert (hunt.alerts, hunt.units) == (1, len({ts_ago(6)[:7]})), hunt
    [a] = alerts(es, prefix)
    assert a["process"]["executable"] == lab
    assert (a["alert"]["retro"]["change"], a["alert"]["retro"]["feed"]) == ("unallowed", "lab-paths")
    assert "first_seen" not in a["threat"]["indicator"]  # not a new listing: the feed's own fields
    # the scheduled rule, rerun over everything, writes that very alert (409)
    _forget_rule_states(es, prefix, rules)
    res = engine.run(only_due=False)[0]
    assert (res.alerts, res.duplicates) == (0, 1), res

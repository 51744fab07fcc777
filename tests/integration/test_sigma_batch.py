"""Sigma rules run as batches on the real node (matched in process by the native stream matcher, or
as named Lucene clauses) give exactly what running them one by one gives:
the same alerts (same ``_id``, same documents but for the times of the run), the same per-rule
counts, checkpoints and leases; a broken rule in a batch fails alone; a batch pages past its
page size; each rule keeps its own window; a rerun adds nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch

import detectors.batch
from detectors.batch import batchable, run_batched
from detectors.engine import RunResult
from detectors.model import Filter, Rule
from detectors.query import iso
from detectors.sigma.loading import load_sigma
from detectors.state import RuleState, StateStore, parse_time
from detectors.stream.rules import StreamRules
from shipper.pipeline import iter_documents
from shipper.sink import BulkSink
from tests.integration.test_detect_support import alerts, ensure_templates, index_docs, make_engine
from tests.integration.test_sigma_node import EVENTS
from tests.shared_data import shared_dir

#: what differs between two runs of the same rule over the same events
RUN_FIELDS = ("@timestamp", "alert.status_updated", "alert.run")


@dataclass
class Shipped:
    """The shared EVTX attack samples in one index, every runnable shared Sigma rule, and what
    one batched run of all of them gave."""

    prefix: str
    rules: list[Rule]
    batched: dict[str, RunResult]
    alerts: dict[str, dict[str, Any]]

    def firing(self) -> list[Rule]:
        return [r for r in self.rules if self.batched[r.id].alerts]


@pytest.fixture(scope="module")
def shipped(es: Elasticsearch) -> Iterator[Shipped]:
    prefix = "tbatch" + datetime.now(UTC).strftime("%H%M%S%f")
    samples = shared_dir() / "data" / "sysmon" / "evtx-attack-samples"
    ensure_templates(es, prefix)
    # one index, not one per month: building ~1,800 rules' queries is paid per shard searched
    with BulkSink(es) as sink:
        for item in iter_documents(sorted(str(f) for f in samples.rglob("*.evtx"))):
            sink.add(item.doc, f"{prefix}-events-all", item.doc_id, (item.source, item.seq))
    es.indices.refresh(index=f"{prefix}-events-*")
    rules = [c.rule for c in load_sigma([shared_dir() / "data" / "sigma" / "rules" / "windows"]) if c.rule]
    native = StreamRules.compile(rules).native_ids()
    assert len(native) > 1500
    real = detectors.batch.run_batch

    def lucene_only(batch: list[Rule], *args: Any) -> Any:
        # a rule the native matcher runs must run in process, never fall back here silently
        assert not native & {r.id for r in batch}, "a native rule went to a Lucene batch"
        return real(batch, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(detectors.batch, "run_batch", lucene_only)
        batched = _ok(make_engine(es, prefix, rules).run(only_due=False))
    yield Shipped(prefix, rules, batched, _by_id(es, prefix))
    _drop(es, f"{prefix}-*")


def _drop(es: Elasticsearch, pattern: str) -> None:
    names = list(es.options(ignore_status=404).indices.get(index=pattern))
    for i in range(0, len(names), 50):
        es.options(ignore_status=404).indices.delete(index=",".join(names[i : i + 50]))


def _forget_runs(es: Elasticsearch, prefix: str) -> None:
    """No alerts and no rule state: the next run starts from scratch over the same events."""
    _drop(es, f"{prefix}-alerts-*")
    _drop(es, f"{prefix}-state")


def _strip(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k != "@timestamp"}
    out["alert"] = {k: v for k, v in doc["alert"].items() if k not in ("status_updated", "run")}
    return out


def _by_id(es: Elasticsearch, prefix: str) -> dict[str, dict[str, Any]]:
    return {a["_id"]: _strip(a) for a in alerts(es, prefix)}


def _ok(results: list[RunResult]) -> dict[str, RunResult]:
    bad = [r.line() for r in results if r.status != "ok"]
    assert bad == []
    return {r.rule_id: r for r in results}


def test_batched_run_equals_rule_by_rule(es: Elasticsearch, shipped: Shipped) -> None:
    prefix, rules, batched = shipped.prefix, shipped.rules, shipped.batched
    firing = shipped.firing()
    quiet = [r for r in rules if not batched[r.id].alerts][::40]
    assert len(firing) >= 20 and sum(batched[r.id].alerts for r in firing) >= 200
    chosen = firing + quiet
    wanted = {r.id for r in chosen}
    expected = {k: v for k, v in shipped.alerts.items() if v["rule"]["id"] in wanted}
    assert len(expected) == len(shipped.alerts)

    _forget_runs(es, prefix)
    single = _ok(make_engine(es, prefix, chosen, batch_size=1).run(only_due=False))
    assert _by_id(es, prefix) == expected
    for r in chosen:
        one, many = single[r.id], batched[r.id]
        assert (one.hits, one.alerts, one.duplicates) == (many.hits, many.alerts, many.duplicates), r.id

    # switching back to batches over the same events (an overlap that re-examines them all)
    # adds nothing
    again = _ok(make_engine(es, prefix, chosen, overlap=86400.0).run(only_due=False))
    assert sum(r.alerts for r in again.values()) == 0
    assert sum(r.duplicates for r in again.values()) == sum(r.alerts for r in single.values())
    assert _by_id(es, prefix) == expected


def test_lucene_batches_equal_the_in_process_run(es: Elasticsearch, shipped: Shipped) -> None:
    # the fixture's run matched in process; the same rules as named Lucene clauses on the node
    prefix, batched = shipped.prefix, shipped.batched
    chosen = shipped.firing() + [r for r in shipped.rules if not batched[r.id].alerts][::40]
    wanted = {r.id for r in chosen}
    _forget_runs(es, prefix)
    lucene = _ok(make_engine(es, prefix, chosen, batch_in_process=False).run(only_due=False))
    assert _by_id(es, prefix) == {k: v for k, v in shipped.alerts.items() if v["rule"]["id"] in wanted}
    for r in chosen:
        one, many = lucene[r.id], batched[r.id]
        assert (one.hits, one.alerts, one.duplicates) == (many.hits, many.alerts, many.duplicates), r.id


def test_a_broken_rule_fails_alone(es: Elasticsearch, shipped: Shipped) -> None:
    prefix = shipped.prefix
    _forget_runs(es, prefix)
    good = shipped.firing()[:12]
    bad_filter = Filter(good[0].filter.event_codes, lucene="process.name:(")
    broken = replace(good[0], id="broken-rule", filter=bad_filter)
    mixed = [*good[:5], broken, *good[5:]]
    results = {r.rule_id: r for r in make_engine(es, prefix, mixed).run(only_due=False)}
    assert results["broken-rule"].status == "failed"
    assert results["broken-rule"].where == str(broken.at("filter.lucene"))
    assert "Elasticsearch HTTP 400" in (results["broken-rule"].error or "")
    for r in good:
        assert (results[r.id].status, results[r.id].alerts) == ("ok", shipped.batched[r.id].alerts)
    states = StateStore(es, prefix).get_many([r.id for r in mixed])
    assert states["broken-rule"].checkpoint is None and states["broken-rule"].status == "failed"
    assert all(states[r.id].checkpoint is not None for r in good)
    wanted = {r.id for r in good}
    assert _by_id(es, prefix) == {k: v for k, v in shipped.alerts.items() if v["rule"]["id"] in wanted}


def test_paging_past_the_page_size_and_rerun(es: Elasticsearch, shipped: Shipped) -> None:
    prefix = shipped.prefix
    _forget_runs(es, prefix)
    # the busiest rules, enough for a dozen pages of 7 (every page searches the whole batch)
    busiest = sorted(shipped.firing(), key=lambda r: -shipped.batched[r.id].alerts)
    chosen = [r for n, r in enumerate(busiest) if sum(shipped.batched[b.id].alerts for b in busiest[:n]) < 80]
    wanted = {r.id for r in chosen}
    expected = {k: v for k, v in shipped.alerts.items() if v["rule"]["id"] in wanted}
    first = _ok(make_engine(es, prefix, chosen, page_size=7).run(only_due=False))
    total = sum(r.alerts for r in first.values())
    assert total == len(expected) > 7 * 10
    assert _by_id(es, prefix) == expected
    rerun = _ok(make_engine(es, prefix, chosen, page_size=7, overlap=86400.0).run(only_due=False))
    assert sum(r.alerts for r in rerun.values()) == 0
    assert sum(r.duplicates for r in rerun.values()) == total
    assert _by_id(es, prefix) == expected


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_each_rule_keeps_its_own_window_and_lease(es: Elasticsearch, prefix: str) -> None:
    from tests.integration.test_sigma_node import _converted, _rule

    now = datetime.now(UTC)
    old, new = [dict(e) for e in EVENTS[:2]], [dict(e) for e in EVENTS[:2]]
    for d in old:
        d["event"] = {**d["event"], "ingested": _iso(now - timedelta(minutes=30))}
    for d in new:
        d["winlog"] = {**d["winlog"], "record_id": d["winlog"]["record_id"] + 100}
        d["event"] = {**d["event"], "ingested": _iso(now - timedelta(seconds=5))}
    index_docs(es, prefix, old + new, stamp=False)
    one = _converted(_rule("  sel:\n    Image|endswith: '.exe'\n  condition: sel")).rule
    assert one is not None
    rules = [replace(one, id=f"own-window-{n}") for n in range(4)]
    assert all(batchable(r) for r in rules)
    engine = make_engine(es, prefix, rules, overlap=0.0)
    store = StateStore(es, prefix)
    # rule 0 examined everything up to ten minutes ago; rule 1 is new; rule 2 is someone else's
    store.put(RuleState(rules[0].id, checkpoint=now - timedelta(minutes=10), runs=1))
    assert store.acquire(rules[2].id, "elsewhere:1:1:x", 600)
    results = {r.rule_id: r for r in run_batched(engine, rules)}
    assert (results[rules[0].id].status, results[rules[0].id].hits) == ("ok", 2)
    assert (results[rules[1].id].status, results[rules[1].id].hits) == ("ok", 4)
    assert results[rules[2].id].status == "locked"
    assert (results[rules[3].id].status, results[rules[3].id].hits) == ("ok", 4)
    states = store.get_many([r.id for r in rules])
    assert states[rules[0].id].runs == 2 and states[rules[2].id].checkpoint is None
    window = results[rules[1].id].window
    assert window is not None and states[rules[1].id].checkpoint == parse_time(iso(window.end))
    # the leases this run took are given back; the other one is untouched
    assert all(store.lease_holder(r.id)[0] == "" for r in rules if r.id != rules[2].id)  # type: ignore[index]
    assert store.lease_holder(rules[2].id)[0] == "elsewhere:1:1:x"  # type: ignore[index]
    assert len(alerts(es, prefix)) == 2 + 4 + 4

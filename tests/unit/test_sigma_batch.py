"""The pure parts of running Sigma rules as batches: which rules batch, how they are packed into
searches, the union of their windows, the one query of a batch, and the daemon's jobs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sigma.collection import SigmaCollection

from detectors.batch import batchable, clause_estimate, plan
from detectors.builders.batched import batch_query, union_window
from detectors.builders.context import RunContext
from detectors.engine import EngineOptions
from detectors.model import Filter, Rule, Suppression
from detectors.query import Window
from detectors.scheduler import Daemon
from detectors.sigma.rules import convert

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _sigma(n: int, detection: str = "Image|endswith: '\\\\x.exe'", interval: int = 300) -> Rule:
    text = (
        f"title: r{n}\nid: 3f3c2a10-0000-4000-8000-{n:012d}\nstatus: test\nlevel: high\n"
        "logsource:\n  product: windows\n  category: process_creation\n"
        f"detection:\n  sel:\n    {detection}\n  condition: sel\n"
    )
    (c,) = convert(SigmaCollection.from_yaml(text), interval=interval)
    assert c.rule is not None, c.reason
    return c.rule


def test_only_plain_sigma_query_rules_batch() -> None:
    rule = _sigma(1)
    assert batchable(rule)
    assert not batchable(replace(rule, sigma=None))
    assert not batchable(replace(rule, suppression=Suppression(("host.name",), 3600)))
    assert not batchable(replace(rule, type="threshold"))
    # a |fieldref comparison is checked per hit, on the rule's own path
    fieldref = _sigma(3, "Image|fieldref: ParentImage")
    assert fieldref.filter.field_refs and not batchable(fieldref)


def test_clause_estimate_grows_with_the_query() -> None:
    small = _sigma(1)
    big = _sigma(2, "CommandLine|contains: [" + ", ".join(f"'a{i}'" for i in range(40)) + "]")
    assert clause_estimate(small) < 10
    assert clause_estimate(big) >= 40


def test_plan_keeps_order_and_respects_both_limits() -> None:
    rules = [_sigma(i) for i in range(10)]
    each = clause_estimate(rules[0])
    assert [len(b) for b in plan(rules, 4, 10_000)] == [4, 4, 2]
    assert [len(b) for b in plan(rules, 100, 3 * each)] == [3, 3, 3, 1]
    assert [r.id for b in plan(rules, 3, 10_000) for r in b] == [r.id for r in rules]
    # a rule larger than the budget is a batch of its own, never dropped
    assert [len(b) for b in plan(rules[:2], 100, 1)] == [1, 1]
    assert plan([], 10, 10) == []


def test_union_window() -> None:
    a = Window(T0, T0 + timedelta(minutes=5))
    b = Window(T0 - timedelta(hours=1), T0 + timedelta(minutes=4))
    assert union_window([a, b]) == Window(b.start, a.end)
    assert union_window([a, Window(None, T0)]) == Window(None, a.end)


def test_batch_query_names_each_rule_with_its_own_window() -> None:
    rules = [_sigma(1), replace(_sigma(2), filter=Filter(event_codes=("3",), lucene="x:y"))]
    windows = {rules[0].id: Window(T0, T0 + timedelta(minutes=5)), rules[1].id: Window(None, T0)}
    ctx = RunContext(es=cast(Any, None), prefix="p", now=T0, window=Window(None, T0))
    q = batch_query(ctx, rules, windows)["bool"]["filter"]
    assert q[0] == Window(None, T0 + timedelta(minutes=5)).clause()
    assert q[1] == {"terms": {"event.code": ["1", "3"]}}
    should = q[2]["bool"]["should"]
    assert [s["bool"]["_name"] for s in should] == ["0", "1"]
    for rule, clause in zip(rules, should, strict=True):
        assert windows[rule.id].clause() in clause["bool"]["filter"]
        assert {"terms": {"event.code": list(rule.filter.event_codes)}} in clause["bool"]["filter"]


class _Engine:
    def __init__(self, batch_size: int) -> None:
        self.options = EngineOptions(batch_size=batch_size)


def test_daemon_runs_batchable_rules_of_an_interval_as_one_job() -> None:
    rules = [_sigma(1), _sigma(2), _sigma(3, interval=60), replace(_sigma(4), sigma=None)]
    jobs = Daemon(cast(Any, _Engine(200)), rules).jobs()
    # the plain rule and the lone 60 s Sigma rule alone, the two 300 s Sigma rules together
    assert sorted(interval for interval, _ in jobs) == [60, 300, 300]
    assert len(Daemon(cast(Any, _Engine(1)), rules).jobs()) == 4


class _BrokenStore:
    """Leases are won, but reading the rules' states fails (the cluster went away)."""

    def __init__(self) -> None:
        self.released: list[str] = []

    def acquire_many(
        self, ids: list[str], owner: str, ttl: float, now: datetime
    ) -> tuple[set[str], dict[str, str]]:
        return set(ids), {}

    def renew_many(self, ids: list[str], owner: str, ttl: float) -> set[str]:
        return set(ids)

    def get_many(self, ids: list[str]) -> dict[str, Any]:
        raise ConnectionError("cluster unreachable")

    def release_many(self, ids: list[str], owner: str) -> None:
        self.released += ids


def test_a_batch_whose_states_cannot_be_read_fails_its_rules_without_raising() -> None:
    from types import SimpleNamespace

    from detectors.batch import run_batched

    rules = [_sigma(1), _sigma(2)]
    store = _BrokenStore()
    engine = SimpleNamespace(store=store, owner="me", options=EngineOptions())
    results = run_batched(cast(Any, engine), rules, now=T0)
    assert [(r.rule_id, r.status) for r in results] == [(rules[0].id, "failed"), (rules[1].id, "failed")]
    assert all("cluster unreachable" in (r.error or "") for r in results)
    assert store.released == [r.id for r in rules]  # the leases are given back


def test_the_in_process_matcher_is_compiled_once_per_list_of_rules() -> None:
    from detectors import batch

    rules = [_sigma(n) for n in range(3)]
    first = batch._matcher_for(rules)
    assert batch._matcher_for(list(rules)) is first  # the same rule objects
    assert first.native_ids() == {r.id for r in rules}
    again = [_sigma(n) for n in range(3)]  # equal rules, other objects (a reload)
    assert batch._matcher_for(again) is not first
    for n in range(batch._MATCHERS_KEPT):
        batch._matcher_for([_sigma(10 + n)])
    assert batch._matcher_for(rules) is not first  # the oldest was let go

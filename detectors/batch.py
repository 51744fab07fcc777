"""Sigma rules that share a schedule run as batches: a few searches per pass instead of one per
rule, with everything a rule's own run (:meth:`detectors.engine.Engine.run_rule`) gives.

- **Windows**: each rule keeps its own window ``[checkpoint - overlap, now - ingest delay)``
  from its own state; its named clause carries that window
  (:mod:`detectors.builders.batched`), so rules whose checkpoints differ (a new rule, one that
  failed last time, late data) share a search and still see exactly their own events.
- **Searches**: the rules are packed into batches of at most ``batch_size`` rules and about
  ``batch_clauses`` query clauses (an estimate from the Lucene text), well inside
  ``indices.query.bool.max_clause_count``; each batch is one paged search, ``batch_workers`` of
  them at a time. Building a rule's query on a shard costs far more than matching it (Sigma
  rules are wildcard lists), so the searches ask Elasticsearch to skip the shards whose
  ``event.ingested`` range lies outside the batch's windows.
- **One failing rule never stops the others**: a batch whose search or writes fail is split in
  two and each half is run again, down to the single rule that fails; that rule fails alone,
  exactly as its own run would (state, ``where``, error), and the rest succeed. A connection
  error fails the batch's rules at once (splitting cannot help).
- **Leases, states, checkpoints**: per rule, as in a rule's own run, taken, renewed, released and
  written for the whole batch at once (:meth:`detectors.state.StateStore.acquire_many` and
  friends). A rule whose lease another scheduler holds is ``locked``; a rule's checkpoint moves
  only when its own part succeeded. The duration of each rule's result is its batch's.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from elastic_transport import ConnectionError as TransportConnectionError

from detectors.builders.batched import run_batch, union_window
from detectors.builders.context import RunContext, RunStats
from detectors.builders.inprocess import run_in_process
from detectors.engine import Engine, RunResult, error_text, failure_text, ok_result, ok_state
from detectors.heartbeat import BatchHeartbeat
from detectors.model import Rule
from detectors.query import Window, alerts_pattern
from detectors.stream.rules import StreamRules
from shipper.fewer_gc import fewer_collections

log = logging.getLogger(__name__)
#: the matchers of the last rule lists run in process (a daemon's passes reuse them): the key is
#: the rule objects' identities, kept alive by the value so that no identity is reused
_MATCHERS: OrderedDict[tuple[int, ...], tuple[tuple[Rule, ...], StreamRules]] = OrderedDict()
_MATCHERS_KEPT = 4
_matchers_lock = threading.Lock()
_FIELD = re.compile(r"(?<!\\):")
_OPERATOR = re.compile(r"\s(?:OR|AND)\s")


def batchable(rule: Rule) -> bool:
    """Sigma rules of type ``query`` without suppression, intel or per-hit checks (``|fieldref``):
    every matching event is one alert whose id depends on the rule and the event only."""
    return (
        rule.sigma is not None
        and rule.type == "query"
        and rule.suppression is None
        and rule.filter.intel is None
        and not rule.exceptions.allowlists
        and not rule.filter.field_refs
    )


def clause_estimate(rule: Rule) -> int:
    """About how many leaf clauses the rule's query has (field:value pairs and their OR/AND
    lists), plus its event codes, window and exceptions."""
    lucene = rule.filter.lucene or ""
    leaves = max(len(_FIELD.findall(lucene)), len(_OPERATOR.findall(lucene)) + 1)
    return leaves + 3 + sum(len(v.values) for v in rule.exceptions.values)


def plan(rules: Sequence[Rule], max_rules: int, max_clauses: int) -> list[list[Rule]]:
    """Rules, in order, cut into batches of at most ``max_rules`` rules and ``max_clauses``
    estimated clauses (a rule larger than that is a batch of its own)."""
    batches: list[list[Rule]] = []
    current: list[Rule] = []
    size = 0
    for rule in rules:
        n = clause_estimate(rule)
        if current and (len(current) >= max_rules or size + n > max_clauses):
            batches.append(current)
            current, size = [], 0
        current.append(rule)
        size += n
    if current:
        batches.append(current)
    return batches


def run_batched(engine: Engine, rules: Sequence[Rule], now: datetime | None = None) -> list[RunResult]:
    """Run ``rules`` (all :func:`batchable`) once each; one result per rule, in order."""
    t0 = time.monotonic()
    now = now or datetime.now(UTC)
    store, owner, ttl = engine.store, engine.owner, engine.options.lease_ttl
    ids = [r.id for r in rules]
    try:
        won, errors = store.acquire_many(ids, owner, ttl, now)
    except Exception as exc:
        error = f"lease: {error_text(exc)}"
        return [RunResult(r.id, "failed", error=error, where=str(r.where)) for r in rules]
    results: dict[str, RunResult] = {}
    for rule in rules:
        if rule.id in errors:
            error = f"lease: {errors[rule.id]}"
            results[rule.id] = RunResult(rule.id, "failed", error=error, where=str(rule.where))
        elif rule.id not in won:
            holder = store.lease_holder(rule.id)
            who = holder[0] if holder else "another scheduler"
            results[rule.id] = RunResult(rule.id, "locked", error=f"lease held by {who}")
    mine = [r for r in rules if r.id in won]
    try:
        with fewer_collections(), BatchHeartbeat(store, [r.id for r in mine], owner, ttl):
            results.update(_run_locked(engine, mine, now, t0))
    except Exception as exc:  # the state reads or writes failed: every rule of it failed, none raises
        duration = time.monotonic() - t0
        for rule in mine:
            if rule.id not in results:
                where, error = failure_text(rule, exc)
                results[rule.id] = RunResult(rule.id, "failed", duration=duration, error=error, where=where)
    finally:
        try:
            store.release_many([r.id for r in mine], owner)
        except Exception:
            pass  # the leases expire on their own
    return [results[r.id] for r in rules]


def _run_locked(engine: Engine, rules: Sequence[Rule], now: datetime, t0: float) -> dict[str, RunResult]:
    if not rules:
        return {}
    states = engine.store.get_many([r.id for r in rules])
    windows = {r.id: engine.window_for(r, states[r.id], now) for r in rules}
    results: dict[str, RunResult] = {}
    todo: list[Rule] = []
    for rule in rules:
        w = windows[rule.id]
        if w.start is not None and w.start >= w.end:
            results[rule.id] = RunResult(rule.id, "skipped", window=w, error="empty window")
        else:
            todo.append(rule)
    if not todo:
        return results
    opts = engine.options
    ctx = RunContext(
        es=engine.es,
        prefix=engine.prefix,
        now=now,
        window=union_window([windows[r.id] for r in todo]),
        ancestry_depth=opts.ancestry_depth,
        page_size=opts.page_size,
    )
    outcomes: dict[str, RunStats | Exception] = {}
    created: set[str] = set()
    rest = _in_process(todo, windows, ctx, created, outcomes) if opts.batch_in_process else todo
    batches = plan(rest, opts.batch_size, opts.batch_clauses)
    with ThreadPoolExecutor(max_workers=max(1, opts.batch_workers), thread_name_prefix="batch") as pool:
        for _ in pool.map(lambda b: _search(b, windows, ctx, created, outcomes), batches):
            pass
    try:
        engine.es.indices.refresh(
            index=alerts_pattern(engine.prefix), ignore_unavailable=True, allow_no_indices=True
        )
    except Exception as exc:  # as in a rule's own run: the refresh is part of the run
        outcomes = {rid: exc if isinstance(o, RunStats) else o for rid, o in outcomes.items()}
    duration = time.monotonic() - t0
    done = []
    for rule in todo:
        outcome, w = outcomes[rule.id], windows[rule.id]
        if isinstance(outcome, Exception):
            results[rule.id] = engine.record_failure(rule, states[rule.id], w, now, duration, outcome)
        else:
            done.append(ok_state(rule.id, states[rule.id], w, now, outcome, duration))
            results[rule.id] = ok_result(rule.id, w, outcome, duration)
    engine.store.put_many(done)
    return results


def _in_process(
    todo: list[Rule],
    windows: dict[str, Window],
    ctx: RunContext,
    created: set[str],
    outcomes: dict[str, RunStats | Exception],
) -> list[Rule]:
    """Run the rules the native matcher takes in this process (one read of their windows'
    events); the rules left for the Lucene batches: the others, or all of them if the read or a
    write failed (a connection error fails them at once, as in a batch)."""
    try:
        matcher = _matcher_for(todo)
    except Exception:  # (a bug in the matcher: the node answers instead)
        log.warning("in-process matching unavailable; Lucene batches instead", exc_info=True)
        return todo
    native = matcher.native_ids()
    mine = [r for r in todo if r.id in native]
    if not mine:
        return todo
    try:
        outcomes.update(run_in_process(mine, windows, ctx, created, matcher))
    except TransportConnectionError as exc:
        outcomes.update((r.id, exc) for r in mine)
    except Exception as exc:
        log.warning("in-process run of %d rules failed (%s); Lucene batches", len(mine), error_text(exc))
        return todo
    return [r for r in todo if r.id not in native]


def _matcher_for(rules: Sequence[Rule]) -> StreamRules:
    """The stream matcher of ``rules``, compiled once per list of rule objects (building the
    native core's matcher for every SigmaHQ rule takes about a second)."""
    key = tuple(id(r) for r in rules)
    with _matchers_lock:
        kept = _MATCHERS.get(key)
        if kept is not None:
            _MATCHERS.move_to_end(key)
            return kept[1]
    matcher = StreamRules.compile(rules)
    with _matchers_lock:
        _MATCHERS[key] = (tuple(rules), matcher)
        while len(_MATCHERS) > _MATCHERS_KEPT:
            _MATCHERS.popitem(last=False)
    return matcher


def _search(
    batch: list[Rule],
    windows: dict[str, Window],
    ctx: RunContext,
    created: set[str],
    outcomes: dict[str, RunStats | Exception],
) -> None:
    """Run one batch; on failure split it until the failing rules are alone."""
    try:
        outcomes.update(run_batch(batch, windows, ctx, created))
    except TransportConnectionError as exc:
        outcomes.update((r.id, exc) for r in batch)
    except Exception as exc:
        if len(batch) == 1:
            outcomes[batch[0].id] = exc
            return
        half = len(batch) // 2
        _search(batch[:half], windows, ctx, created, outcomes)
        _search(batch[half:], windows, ctx, created, outcomes)

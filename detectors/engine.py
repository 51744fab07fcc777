"""Run rules: the window, the lease, the builder, the state — and one failing rule never stops
the others.

Each run of a rule examines ``event.ingested`` in ``[checkpoint - overlap, now - ingest_delay)``.
The shipper stamps ``event.ingested`` when it indexes an event, so an archive shipped days late
(old ``@timestamp``, new ``event.ingested``) falls in the next window and is examined exactly
once; the overlap re-examines the edge of the previous window, which costs nothing but 409s
because alert ids are deterministic. The checkpoint only moves when the run succeeded.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from detectors.ancestry import DEFAULT_DEPTH
from detectors.builders import RunContext, RunStats, builder_for
from detectors.heartbeat import DEFAULT_LEASE_TTL, LeaseHeartbeat
from detectors.model import Rule
from detectors.query import PAGE_SIZE, Window, alerts_pattern, iso
from detectors.state import RuleState, StateStore, default_owner
from shipper.fewer_gc import fewer_collections

DEFAULT_INGEST_DELAY = 30.0
DEFAULT_OVERLAP = 60.0
DEFAULT_BATCH_SIZE = 200
DEFAULT_BATCH_CLAUSES = 3000


@dataclass(frozen=True, slots=True)
class EngineOptions:
    ingest_delay: float = DEFAULT_INGEST_DELAY
    overlap: float = DEFAULT_OVERLAP
    #: first run of a rule: look back this many seconds (None: everything ever ingested)
    initial_lookback: float | None = None
    #: seconds a lease lasts unless renewed; a live run renews it every third of this
    lease_ttl: float = DEFAULT_LEASE_TTL
    ancestry_depth: int = DEFAULT_DEPTH
    page_size: int = PAGE_SIZE
    #: at most this many batchable (Sigma) rules per search (detectors/batch.py); 1 turns
    #: batching off
    batch_size: int = DEFAULT_BATCH_SIZE
    #: and at most about this many query clauses per search
    batch_clauses: int = DEFAULT_BATCH_CLAUSES
    #: batches searched at the same time
    batch_workers: int = 2
    #: batchable rules the native stream matcher runs are matched in this process over one read
    #: of their windows' events (detectors/builders/inprocess.py) instead of Lucene batches
    batch_in_process: bool = True


@dataclass(frozen=True, slots=True)
class RunResult:
    rule_id: str
    status: str  # ok | failed | skipped | locked
    window: Window | None = None
    hits: int = 0
    alerts: int = 0
    duplicates: int = 0
    suppressed: int = 0
    updated: int = 0
    duration: float = 0.0
    error: str | None = None
    where: str | None = None

    def line(self) -> str:
        """The human log line."""
        head = f"rule {self.rule_id}: {self.status}"
        if self.window is not None:
            head += f" window {self.window}"
        head += (
            f" hits={self.hits} alerts={self.alerts} updated={self.updated} duplicates={self.duplicates}"
            f" suppressed={self.suppressed} duration={self.duration:.2f}s"
        )
        if self.error:
            head += f" error: {self.where + ': ' if self.where else ''}{self.error}"
        return head

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "status": self.status,
            "window": None
            if self.window is None
            else {
                "start": iso(self.window.start) if self.window.start else None,
                "end": iso(self.window.end),
            },
            "hits": self.hits,
            "alerts": self.alerts,
            "updated": self.updated,
            "duplicates": self.duplicates,
            "suppressed": self.suppressed,
            "duration": round(self.duration, 3),
            "error": self.error,
            "where": self.where,
        }


def error_text(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        body = exc.body
        reason = ""
        if isinstance(body, dict):
            err = body.get("error")
            if isinstance(err, dict):
                causes = err.get("root_cause") or []
                reason = str((causes[0] if causes else err).get("reason", ""))
        return f"Elasticsearch HTTP {exc.meta.status}: {reason or exc.message}"
    return f"{type(exc).__name__}: {exc}"


def _error_key(rule: Rule, exc: BaseException) -> str:
    """Which part of the rule most likely caused a run error (for its line)."""
    text = error_text(exc).lower()
    if isinstance(exc, ApiError):
        if rule.filter.lucene and ("query_string" in text or "parse" in text or "lexical" in text):
            return "filter.lucene"
        if rule.filter.query is not None:
            return "filter.query"
        return "params" if "params" in rule.lines else "filter"
    return "type"


class Engine:
    def __init__(
        self,
        es: Elasticsearch,
        prefix: str,
        rules: Sequence[Rule],
        options: EngineOptions | None = None,
        owner: str | None = None,
    ) -> None:
        self.es = es
        self.prefix = prefix
        self.rules = list(rules)
        self.options = options or EngineOptions()
        self.owner = owner or default_owner()
        self.store = StateStore(es, prefix)
        self.store.ensure()

    def window_for(self, rule: Rule, state: RuleState, now: datetime) -> Window:
        end = now - timedelta(seconds=self.options.ingest_delay)
        if state.checkpoint is not None:
            start: datetime | None = state.checkpoint - timedelta(seconds=self.options.overlap)
        elif self.options.initial_lookback is not None:
            start = end - timedelta(seconds=self.options.initial_lookback)
        else:
            start = None
        return Window(start, end)

    def is_due(self, rule: Rule, state: RuleState, now: datetime) -> bool:
        if state.last_run is None:
            return True
        return (now - state.last_run).total_seconds() >= rule.interval - 1

    def run(self, rules: Sequence[Rule] | None = None, *, only_due: bool = True) -> list[RunResult]:
        """Run (due) enabled rules once each, in order; never raises for a rule's failure. The
        due rules that can be batched (:func:`detectors.batch.batchable`) run together in as
        few searches as their clauses allow; the others one by one."""
        from detectors.batch import batchable, run_batched

        out: list[RunResult | None] = []
        due: list[tuple[int, Rule]] = []
        states = self.store.all()
        for rule in rules if rules is not None else self.rules:
            if not rule.enabled and rules is None:
                continue
            st = states.get(rule.id, RuleState(rule.id))
            if only_due and not self.is_due(rule, st, datetime.now(UTC)):
                out.append(RunResult(rule.id, "skipped", error="not due"))
                continue
            due.append((len(out), rule))
            out.append(None)
        batch = [(i, r) for i, r in due if batchable(r)] if self.options.batch_size > 1 else []
        if len(batch) > 1:
            for (i, _), result in zip(batch, run_batched(self, [r for _, r in batch]), strict=True):
                out[i] = result
        for i, rule in due:
            if out[i] is None:
                out[i] = self.run_rule(rule)
        return [r for r in out if r is not None]

    def run_rule(self, rule: Rule, now: datetime | None = None) -> RunResult:
        with fewer_collections():  # hits parsed by the page: see shipper/fewer_gc.py
            return self._run_rule(rule, now)

    def _run_rule(self, rule: Rule, now: datetime | None) -> RunResult:
        t0 = time.monotonic()
        now = now or datetime.now(UTC)
        ttl = self.options.lease_ttl
        try:
            got = self.store.acquire(rule.id, self.owner, ttl, now)
        except Exception as exc:
            return RunResult(rule.id, "failed", error=f"lease: {error_text(exc)}", where=str(rule.where))
        if not got:
            holder = self.store.lease_holder(rule.id)
            who = holder[0] if holder else "another scheduler"
            return RunResult(rule.id, "locked", error=f"lease held by {who}")
        try:
            with LeaseHeartbeat(self.store, rule.id, self.owner, ttl):
                return self._run_locked(rule, now, t0)
        finally:
            try:
                self.store.release(rule.id, self.owner)
            except Exception:
                pass  # the lease expires on its own

    def _run_locked(self, rule: Rule, now: datetime, t0: float) -> RunResult:
        state = self.store.get(rule.id)
        window = self.window_for(rule, state, now)
        if window.start is not None and window.start >= window.end:
            return RunResult(rule.id, "skipped", window=window, error="empty window")
        ctx = RunContext(
            es=self.es,
            prefix=self.prefix,
            now=now,
            window=window,
            ancestry_depth=self.options.ancestry_depth,
            page_size=self.options.page_size,
        )
        try:
            stats = builder_for(rule)(rule, ctx)
            self.es.indices.refresh(
                index=alerts_pattern(self.prefix), ignore_unavailable=True, allow_no_indices=True
            )
        except Exception as exc:
            return self.record_failure(rule, state, window, now, time.monotonic() - t0, exc)
        duration = time.monotonic() - t0
        self.store.put(ok_state(rule.id, state, window, now, stats, duration))
        return ok_result(rule.id, window, stats, duration)

    def record_failure(
        self, rule: Rule, state: RuleState, window: Window, now: datetime, duration: float, exc: BaseException
    ) -> RunResult:
        """The rule's failed run: its state (the checkpoint stays) and its result line."""
        where, error = failure_text(rule, exc)
        try:
            self.store.put(failed_state(state, now, duration, where, error))
        except Exception:
            pass
        return RunResult(rule.id, "failed", window=window, duration=duration, error=error, where=where)


def failure_text(rule: Rule, exc: BaseException) -> tuple[str, str]:
    """(where in the rule, error text) of a run's exception."""
    where = str(rule.at(_error_key(rule, exc)))
    error = error_text(exc)
    if not isinstance(exc, ApiError):
        error += " | " + "".join(traceback.format_exception(exc, limit=3)).strip().splitlines()[-1]
    return where, error


def failed_state(state: RuleState, now: datetime, duration: float, where: str, error: str) -> RuleState:
    return replace(
        state,
        last_run=now,
        status="failed",
        duration=duration,
        last_error=f"{where}: {error}",
        runs=state.runs + 1,
    )


def ok_state(
    rule_id: str, state: RuleState, window: Window, now: datetime, stats: RunStats, duration: float
) -> RuleState:
    """A successful run's state: the checkpoint moves to the window's end."""
    return RuleState(
        rule_id=rule_id,
        checkpoint=window.end,
        last_run=now,
        last_success=now,
        status="ok",
        hits=stats.hits,
        alerts=stats.alerts,
        duplicates=stats.duplicates,
        duration=duration,
        last_error=None,
        window_start=window.start,
        window_end=window.end,
        runs=state.runs + 1,
    )


def ok_result(rule_id: str, window: Window, stats: RunStats, duration: float) -> RunResult:
    return RunResult(
        rule_id,
        "ok",
        window=window,
        hits=stats.hits,
        alerts=stats.alerts,
        duplicates=stats.duplicates,
        suppressed=stats.suppressed,
        updated=stats.updated,
        duration=duration,
    )

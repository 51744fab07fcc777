"""Retro-hunt: the scheduled ``intel_match`` rules, run over the retained events against only
the indicators a load added — or, when an allowlist dropped entries, against the current lists
but only over the events those entries used to allowlist for the rule.

A hunt is cut into units, one per (rule, monthly events index), run by the rule's own builder
(:mod:`detectors.builders.events`) with a :class:`HuntScope`: the rule's query, exceptions and
alert building are the scheduled ones, so an alert has the scheduled alert's id and shape (a
later scheduled run, or a rerun, gets 409s). The intel clause looks only at the added chunks —
one ``terms`` lookup per chunk of added indicators, whatever their number. An alert is written
only when the event still matches a current listing (its intel enrichment is not empty), so an
indicator removed before the hunt ran raises nothing.

Each done unit is recorded in the hunt's progress document before the next starts, so a hunt
killed midway resumes at its first unfinished unit (a unit cut short is run again: 409s). A
lease (``lease:retro:<feed>``, :class:`~detectors.state.StateStore`) keeps two runners off the
same feed's hunts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from detectors.ancestry import DEFAULT_DEPTH
from detectors.builders import builder_for
from detectors.builders.context import HuntScope, RunContext, RunStats
from detectors.engine import error_text
from detectors.heartbeat import DEFAULT_LEASE_TTL, LeaseHeartbeat
from detectors.intel.config import format_duration
from detectors.intel.lookup import FIELD_TYPES
from detectors.model import IntelClause, IntelMatchParams, Rule
from detectors.query import PAGE_SIZE, Window, alerts_pattern, events_pattern, intel_should, iso
from detectors.retro.pending import Pending, Progress, finish, pending_hunts, read_progress, save_progress
from detectors.state import StateStore, default_owner, parse_time

_MONTHLY = re.compile(r"-events-(\d{4})\.(\d{2})$")


@dataclass(frozen=True, slots=True)
class HuntOptions:
    lease_ttl: float = DEFAULT_LEASE_TTL
    ancestry_depth: int = DEFAULT_DEPTH
    page_size: int = PAGE_SIZE


@dataclass(slots=True)
class HuntResult:
    feed: str
    generation: int
    indicators: int
    status: str = "done"  # done | locked | failed
    units: int = 0
    resumed: int = 0  # units a previous run had done
    hits: int = 0
    alerts: int = 0
    duplicates: int = 0
    unlisted: int = 0
    duration: float = 0.0
    error: str | None = None

    def line(self) -> str:
        text = (
            f"retro-hunt feed={self.feed} generation={self.generation} indicators={self.indicators} "
            f"status={self.status} units={self.units} resumed={self.resumed} hits={self.hits} "
            f"alerts={self.alerts} duplicates={self.duplicates} unlisted={self.unlisted} "
            f"seconds={self.duration:.2f}"
        )
        return text + (f" error: {self.error}" if self.error else "")

    def to_json(self) -> dict[str, Any]:
        return {"retro_hunt": {k: getattr(self, k) for k in self.__slots__}}


def hunt_rules(rules: Sequence[Rule]) -> list[Rule]:
    return [r for r in rules if r.enabled and r.type == "intel_match"]


def _types(clause: IntelClause) -> set[str]:
    return {t for f in clause.fields for t in (clause.types or FIELD_TYPES.get(f, ()))}


def unallowing(rule: Rule, p: Pending) -> list[IntelClause]:
    """The rule's allowlist exceptions the entries ``p`` removed from an allowlist fall under."""
    return [
        a
        for a in rule.exceptions.allowlists
        if (not a.feeds or p.feed in a.feeds) and _types(a) & set(p.chunks)
    ]


def rule_wants(rule: Rule, p: Pending) -> bool:
    """Added indicators: whether the rule looks at this feed and at any type it added. Removed
    allowlist entries: whether one of the rule's allowlist exceptions could have hidden them."""
    if p.role == "removed":
        return bool(unallowing(rule, p))
    params = rule.params
    assert isinstance(params, IntelMatchParams)
    if params.feeds and p.feed not in params.feeds:
        return False
    return bool(_types(IntelClause(params.fields, params.feeds, params.types)) & set(p.chunks))


def scope_filters(es: Elasticsearch, prefix: str, rule: Rule, p: Pending) -> tuple[dict[str, Any], ...]:
    """The hunt's own clauses: events since the window's start and, for removed allowlist
    entries, events the removed entries used to allowlist for this rule."""
    out: list[dict[str, Any]] = []
    if p.since is not None:
        out.append({"range": {"@timestamp": {"gte": iso(p.since), "format": "strict_date_optional_time"}}})
    if p.role == "removed":
        chunks = {p.feed: p.chunks}
        parts = [intel_should(es, a, prefix, kind="allow", chunks=chunks) for a in unallowing(rule, p)]
        out.append({"bool": {"should": parts, "minimum_should_match": 1}})
    return tuple(out)


def event_indices(es: Elasticsearch, prefix: str, since: datetime | None) -> list[str]:
    """The monthly events indices that may hold events at or after ``since``, oldest first."""
    names = es.indices.get(
        index=events_pattern(prefix), expand_wildcards="open", ignore_unavailable=True, allow_no_indices=True
    )
    out = []
    for name in names:
        m = _MONTHLY.search(name)
        if m is None or not name.startswith(f"{prefix}-events-"):
            continue
        if since is None or (int(m[1]), int(m[2])) >= (since.year, since.month):
            out.append(name)
    return sorted(out)


def marker(p: Pending) -> Callable[[dict[str, Any], dict[str, Any]], bool]:
    """The alert annotation of a hunt: ``alert.retro`` (which load, how long the event predates
    it) and ``threat.indicator.first_seen`` (the load's time when the feed gives none)."""
    listed = iso(p.listed_at)

    def mark(doc: dict[str, Any], src: dict[str, Any]) -> bool:
        if not (doc["alert"].get("intel") or {}).get("matched_values"):
            return False  # no current listing backs it: removed since the load
        ts = src.get("@timestamp")
        when = parse_time(str(ts)) if ts else None
        lead = None if when is None else int((p.listed_at - when).total_seconds())
        doc["alert"]["retro"] = {
            "change": "listed" if p.role == "added" else "unallowed",
            "hunt": p.id,
            "feed": p.feed,
            "generation": p.generation,
            "listed_at": listed,
            "predates_listing": lead is not None and lead > 0,
            "predates_by_seconds": lead if lead is not None and lead > 0 else None,
            "predates_by": format_duration(timedelta(seconds=lead)) if lead and lead > 0 else None,
        }
        indicator = doc["threat"].get("indicator")
        if p.role == "added" and isinstance(indicator, dict) and not indicator.get("first_seen"):
            doc["threat"]["indicator"] = {**indicator, "first_seen": listed}
        return True

    return mark


@dataclass(slots=True)
class _Unit:
    rule: Rule
    index: str
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = f"{self.rule.id}@{self.index}"


class RetroHunter:
    """Runs the queued hunts with ``rules`` (their ``intel_match`` ones)."""

    def __init__(
        self,
        es: Elasticsearch,
        prefix: str,
        rules: Sequence[Rule],
        options: HuntOptions | None = None,
        owner: str | None = None,
        on_unit: Callable[[str, RunStats], None] | None = None,
    ) -> None:
        self.es, self.prefix = es, prefix
        self.rules = hunt_rules(rules)
        self.options = options or HuntOptions()
        self.owner = owner or default_owner()
        self.on_unit = on_unit
        self.store = StateStore(es, prefix)

    def run(self, feeds: list[str] | None = None) -> list[HuntResult]:
        """Every queued hunt (of ``feeds``), oldest first; never raises for a hunt's failure."""
        self.store.ensure()
        return [self.hunt(p) for p in pending_hunts(self.es, self.prefix, feeds)]

    def hunt(self, p: Pending) -> HuntResult:
        t0 = time.monotonic()
        result = HuntResult(p.feed, p.generation, p.total)
        lease = f"retro:{p.feed}"
        try:
            if not self.store.acquire(lease, self.owner, self.options.lease_ttl):
                holder = self.store.lease_holder(lease)
                result.status, result.error = (
                    "locked",
                    f"lease held by {holder[0] if holder else 'another run'}",
                )
                return result
            try:
                with LeaseHeartbeat(self.store, lease, self.owner, self.options.lease_ttl):
                    self._hunt_locked(p, result)
            finally:
                self.store.release(lease, self.owner)
        except Exception as exc:  # the hunt stays queued; its done units stay done
            result.status, result.error = "failed", error_text(exc)
        finally:
            result.duration = time.monotonic() - t0
        return result

    def _hunt_locked(self, p: Pending, result: HuntResult) -> None:
        progress = read_progress(self.es, self.prefix, p)
        progress.started = progress.started or iso(datetime.now(UTC))
        indices = event_indices(self.es, self.prefix, p.since)  # once per hunt, not per rule
        units = [_Unit(r, ix) for r in self.rules if rule_wants(r, p) for ix in indices]
        done = set(progress.units_done)
        result.units, result.resumed = len(units), sum(u.key in done for u in units)
        for unit in units:
            if unit.key in done:
                continue
            stats = self._run_unit(p, unit)
            self._record(p, progress, unit, stats, result)
            if self.on_unit is not None:
                self.on_unit(unit.key, stats)
        self.es.indices.refresh(
            index=alerts_pattern(self.prefix), ignore_unavailable=True, allow_no_indices=True
        )
        progress.status = "done"
        save_progress(self.es, self.prefix, p, progress, datetime.now(UTC))
        finish(self.es, self.prefix, p)

    def _run_unit(self, p: Pending, unit: _Unit) -> RunStats:
        now = datetime.now(UTC)
        scope = HuntScope(
            index=unit.index,
            chunks={p.feed: p.chunks} if p.role == "added" else None,  # removed: the current lists
            filters=scope_filters(self.es, self.prefix, unit.rule, p),
            mark=marker(p),
        )
        ctx = RunContext(
            es=self.es,
            prefix=self.prefix,
            now=now,
            window=Window(None, now),
            ancestry_depth=self.options.ancestry_depth,
            page_size=self.options.page_size,
            hunt=scope,
        )
        return builder_for(unit.rule)(unit.rule, ctx)

    def _record(
        self, p: Pending, progress: Progress, unit: _Unit, stats: RunStats, result: HuntResult
    ) -> None:
        progress.units_done.append(unit.key)
        for name in ("hits", "alerts", "duplicates", "unlisted"):
            setattr(progress, name, getattr(progress, name) + getattr(stats, name))
            setattr(result, name, getattr(result, name) + getattr(stats, name))
        save_progress(self.es, self.prefix, p, progress, datetime.now(UTC))

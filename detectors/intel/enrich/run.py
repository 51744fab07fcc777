"""One enrichment run: the hashes to judge, page by page, through each enabled service in
registry order (CIRCL's free known-good answers first, so they spare the quotas of the others),
cached verdicts first, then lookups within each service's budget; then the feeds rebuilt.

A service that stops (quota, 429, rejected key, unreachable) is stopped for the rest of the run
and says why; the hashes it did not get to are counted as ``skipped_quota`` and looked up by a
later run; the other services go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from elasticsearch import Elasticsearch

from detectors.intel.generation import LoadResult
from detectors.intel.indices import enrich_index

from . import cache
from .model import LookupError_, ServiceSettings, ServiceStop, Verdict, VerdictKind
from .quota import QuotaStore
from .services import SERVICES

PAGE = 500


@dataclass(frozen=True, slots=True)
class RunOptions:
    max_age: timedelta = timedelta(days=7)
    unknown_max_age: timedelta = timedelta(days=1)
    max_wait: float = 600.0  # seconds a run may wait for rate limits in all


@dataclass(slots=True)
class ServiceReport:
    """What one service did in a run. ``looked_up``: hashes answered by a request of this run;
    ``cached``: hashes answered from a fresh cached verdict; the three verdict counts cover both;
    ``skipped_quota``: hashes left for a later run because the service stopped (or is disabled);
    ``skipped_known``: hashes another service had already judged."""

    service: str
    status: str = "ok"  # ok | quota (budget or 429: resumes next run) | failed | disabled
    reason: str | None = None
    requests: int = 0
    looked_up: int = 0
    cached: int = 0
    malicious: int = 0
    known_good: int = 0
    unknown: int = 0
    skipped_quota: int = 0
    skipped_known: int = 0
    errors: int = 0
    last_error: str | None = None
    used_today: int = 0  # requests this UTC day, by every run and collector
    per_day: int | None = None
    feeds: dict[str, int] = field(default_factory=dict)  # feed name → generation loaded this run

    def count(self, v: Verdict) -> None:
        setattr(self, v.verdict, getattr(self, v.verdict) + 1)

    def stop(self, stop: ServiceStop) -> None:
        self.status, self.reason = ("quota" if stop.quota else "failed"), stop.message

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class RunReport:
    """Per hash, what the services together said: ``malicious`` or ``known_good`` (the first
    service that judged it), ``unknown`` (every service asked did not know it), ``pending`` (a
    service that stopped, or failed on it, did not judge it: a later run asks)."""

    hashes: int = 0
    malicious: int = 0
    known_good: int = 0
    unknown: int = 0
    pending: int = 0
    services: dict[str, ServiceReport] = field(default_factory=dict)
    feed_errors: list[str] = field(default_factory=list)


def _now_iso(now: float) -> str:
    return datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _ServiceRun:
    """One service within a run: its settings, budget and report."""

    def __init__(self, es: Elasticsearch, prefix: str, settings: ServiceSettings, quota: QuotaStore,
                 report: ServiceReport, clock: Callable[[], float]) -> None:  # fmt: skip
        self.es, self.prefix, self.settings, self.quota = es, prefix, settings, quota
        self.report, self.clock = report, clock
        self.service = SERVICES[settings.name]

    def judge(self, todo: list[str], judged: dict[str, VerdictKind], pending: set[str]) -> None:
        """Look ``todo`` up batch by batch until done or the service stops."""
        rep = self.report
        for start in range(0, len(todo), self.service.batch):
            batch = todo[start : start + self.service.batch]
            if rep.status != "ok":
                rep.skipped_quota += len(todo) - start
                pending.update(todo[start:])
                return
            try:
                self.quota.take()
            except ServiceStop as stop:  # our own budget: nothing was sent
                rep.stop(stop)
                rep.skipped_quota += len(todo) - start
                pending.update(todo[start:])
                return
            rep.requests += 1
            try:
                verdicts = self.service.lookup(self.settings, batch, _now_iso(self.clock()))
            except ServiceStop as stop:
                if stop.quota:  # the service said 429: it knows of spending we do not
                    self.quota.block(stop.retry_after)
                rep.stop(stop)
                rep.skipped_quota += len(todo) - start
                pending.update(todo[start:])
                return
            except LookupError_ as exc:
                rep.errors += len(batch)
                rep.last_error = str(exc)
                pending.update(batch)  # not cached: asked again next run
                continue
            cache.save(self.es, self.prefix, verdicts)
            rep.looked_up += len(verdicts)
            rep.errors += len(batch) - len(verdicts)
            pending.update(set(batch) - {v.hash for v in verdicts})
            for v in verdicts:
                rep.count(v)
                if v.verdict != "unknown":
                    judged.setdefault(v.hash, v.verdict)


def _pages(hashes: Iterable[str]) -> Iterator[list[str]]:
    it = iter(hashes)
    while page := list(islice(it, PAGE)):
        yield page


def enrich(
    es: Elasticsearch,
    prefix: str,
    hashes: Iterable[str],
    settings: Sequence[ServiceSettings],
    options: RunOptions = RunOptions(),
    *,
    disabled: dict[str, str] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> RunReport:
    """Judge ``hashes`` (lower-case MD5/SHA-1/SHA-256) with the services in ``settings``;
    ``disabled`` lists services left out and why (reported, their hashes skipped)."""
    report = RunReport()
    deadline = clock() + options.max_wait
    order = sorted(settings, key=lambda s: list(SERVICES).index(s.name))
    runs: list[_ServiceRun] = []
    for s in order:
        rep = report.services[s.name] = ServiceReport(s.name)
        index = enrich_index(prefix)
        quota = QuotaStore(es, index, s.name, s.limits, deadline=deadline, clock=clock, sleep=sleep)
        runs.append(_ServiceRun(es, prefix, s, quota, rep, clock))
    off = {name: ServiceReport(name, status="disabled", reason=why) for name, why in (disabled or {}).items()}
    for page in _pages(hashes):
        report.hashes += len(page)
        judged: dict[str, VerdictKind] = {}
        pending: set[str] = set()
        now = datetime.fromtimestamp(clock(), tz=UTC)
        for run in runs:
            rep = run.report
            known = cache.cached(es, prefix, run.settings.name, page)
            todo: list[str] = []
            for h in page:
                v = known.get(h)
                if v is not None and cache.is_fresh(v, now, options.max_age, options.unknown_max_age):
                    rep.cached += 1
                    rep.count(v)
                    if v.verdict != "unknown":
                        judged.setdefault(h, v.verdict)
                elif h in judged:
                    rep.skipped_known += 1
                else:
                    todo.append(h)
            run.judge(todo, judged, pending)
        for rep in off.values():
            rep.skipped_quota += len(page)
        for h in page:
            outcome = judged.get(h) or ("pending" if h in pending else "unknown")
            setattr(report, outcome, getattr(report, outcome) + 1)
    report.services.update(off)
    es.indices.refresh(index=enrich_index(prefix))
    for run in runs:
        _publish(es, prefix, run.settings.name, report)
        run.report.used_today, run.report.per_day = run.quota.used_today(), run.settings.limits.per_day
    return report


def _publish(es: Elasticsearch, prefix: str, name: str, report: RunReport) -> None:
    rep = report.services[name]
    for kind in ("intel", "allow"):
        try:
            res: LoadResult | None = cache.publish(es, prefix, name, SERVICES[name].title, kind)
        except Exception as exc:  # the verdicts are cached: the next run publishes them
            report.feed_errors.append(f"{cache.feed_name(name, kind)}: {type(exc).__name__}: {exc}")
            continue
        if res is None:
            continue
        if res.status == "failed":
            report.feed_errors.append(f"{res.feed}: {res.error}")
        else:
            rep.feeds[res.feed] = int(res.generation or 0)

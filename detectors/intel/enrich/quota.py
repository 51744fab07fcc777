"""Per-service request budgets, shared by every run and collector through Elasticsearch.

A token bucket of ``per_minute`` tokens refilled evenly (``per_minute`` / 60 a second) plus a
count of requests per UTC day (VirusTotal resets daily quotas at 00:00 UTC). Both live in one
document per service, ``quota:<service>`` in ``<prefix>-intel-enrich``, taken with
``if_seq_no``/``if_primary_term`` (no scripts): a cron run never spends what an earlier run, or
another collector, already spent today. After a 429 the service is blocked for its
``Retry-After`` (when given) and its bucket emptied.

:func:`decide` is the pure rule; :class:`QuotaStore` reads and writes the document.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from .model import Limits, ServiceStop


@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    updated: float  # epoch seconds of ``tokens``
    day: str  # the UTC day ``day_used`` counts
    day_used: int = 0
    blocked_until: float | None = None

    def doc(self, service: str) -> dict[str, Any]:
        return {
            "kind": "quota",
            "service": service,
            "tokens": self.tokens,
            "updated": self.updated,
            "day": self.day,
            "day_used": self.day_used,
            "blocked_until": self.blocked_until,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Bucket:
        return cls(
            tokens=float(doc["tokens"]),
            updated=float(doc["updated"]),
            day=str(doc["day"]),
            day_used=int(doc.get("day_used") or 0),
            blocked_until=doc.get("blocked_until"),
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """``wait`` 0 and no ``exhausted``: take the request now (``bucket`` is the state after it);
    ``wait`` > 0: try again after that many seconds; ``exhausted``: no request before the reason
    passes."""

    bucket: Bucket
    wait: float = 0.0
    exhausted: str | None = None


def utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%d")


def new_bucket(limits: Limits, now: float) -> Bucket:
    return Bucket(tokens=limits.per_minute, updated=now, day=utc_day(now))


def decide(bucket: Bucket, limits: Limits, now: float) -> Decision:
    """May one request go out at ``now``?"""
    rate = limits.per_minute / 60.0
    elapsed = max(0.0, now - bucket.updated)
    tokens = min(limits.per_minute, bucket.tokens + elapsed * rate)
    day = utc_day(now)
    used = bucket.day_used if bucket.day == day else 0
    current = replace(bucket, tokens=tokens, updated=max(now, bucket.updated), day=day, day_used=used)
    if bucket.blocked_until is not None and now < bucket.blocked_until:
        until = datetime.fromtimestamp(bucket.blocked_until, tz=UTC).strftime("%H:%M:%SZ")
        return Decision(current, exhausted=f"blocked after a 429 until {until}")
    if limits.per_day is not None and used >= limits.per_day:
        return Decision(current, exhausted=f"daily quota used ({used}/{limits.per_day}, resets 00:00 UTC)")
    if tokens < 1.0:
        return Decision(current, wait=(1.0 - tokens) / rate)
    return Decision(replace(current, tokens=tokens - 1.0, day_used=used + 1, blocked_until=None))


class QuotaStore:
    """Takes one request's worth of a service's budget, waiting for the bucket to refill while
    that ends before ``deadline`` (a ``clock()`` value); otherwise stops the service."""

    def __init__(
        self,
        es: Elasticsearch,
        index: str,
        service: str,
        limits: Limits,
        *,
        deadline: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.es, self.index, self.service, self.limits = es, index, service, limits
        self.deadline, self.clock, self.sleep = deadline, clock, sleep
        self.doc_id = f"quota:{service}"

    def _read(self) -> tuple[Bucket | None, dict[str, Any]]:
        try:
            got = self.es.get(index=self.index, id=self.doc_id)
        except NotFoundError:
            return None, {}
        cas = {"if_seq_no": got["_seq_no"], "if_primary_term": got["_primary_term"]}
        return Bucket.from_doc(got["_source"]), cas

    def _write(self, bucket: Bucket, cas: dict[str, Any]) -> bool:
        try:
            if cas:
                self.es.index(index=self.index, id=self.doc_id, document=bucket.doc(self.service), **cas)
            else:
                self.es.create(index=self.index, id=self.doc_id, document=bucket.doc(self.service))
        except ConflictError:
            return False  # another run took a token meanwhile: decide again
        return True

    def take(self) -> None:
        """Spend one request, or raise :class:`ServiceStop` (``quota=True``)."""
        while True:
            now = self.clock()
            bucket, cas = self._read()
            decision = decide(bucket or new_bucket(self.limits, now), self.limits, now)
            if decision.exhausted:
                raise ServiceStop(f"{self.service}: {decision.exhausted}", quota=True)
            if decision.wait > 0:
                if now + decision.wait > self.deadline:
                    raise ServiceStop(
                        f"{self.service}: rate limit ({self.limits.per_minute:g}/min) would wait past "
                        "the run's --max-wait",
                        quota=True,
                    )
                self.sleep(decision.wait)
                continue
            if self._write(decision.bucket, cas):
                return

    def block(self, retry_after: float | None) -> None:
        """After a 429: empty the bucket, and block until ``Retry-After`` when the service gave one."""
        for _ in range(5):
            now = self.clock()
            bucket, cas = self._read()
            current = decide(bucket or new_bucket(self.limits, now), self.limits, now).bucket
            blocked = now + retry_after if retry_after else current.blocked_until
            if self._write(replace(current, tokens=0.0, blocked_until=blocked), cas):
                return

    def used_today(self) -> int:
        bucket, _ = self._read()
        if bucket is None:
            return 0
        return bucket.day_used if bucket.day == utc_day(self.clock()) else 0

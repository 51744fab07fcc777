"""Sending: one chunk as bulk requests until every document in it has an outcome, and the
result of the chunk as a value. Runs on the sink's worker threads and calls nobody back: the
sink hands the results to its caller in order.

Outcome of each item, all counted, none dropped silently:

- 201 → ``shipped``; 409 → ``duplicates`` (every document is a ``create`` with a deterministic
  ``_id``, so a 409 is the same event shipped before);
- 429 / 5xx item errors and request-level 429/502/503/504 / connection errors → retried with
  exponential backoff and full jitter, at most ``max_retries`` times; a request that still fails
  raises :class:`ShipError` (nothing of the chunk is acknowledged, so a rerun resumes before it);
- 401/403 item errors and those that refuse the whole index (a block, a closed or missing index)
  → :class:`ShipError`: the run stops and nothing of the chunk is acknowledged;
- any other item error (mapping rejections: 400-class) → a dead letter, ``dead_lettered``
  counted, and the document counts as done (the run ends non-zero).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, TlsError
from elasticsearch import ApiError, AuthenticationException, AuthorizationException, Elasticsearch

from shipper.chunks import Ack, Chunk
from shipper.dead_letters import DeadLetters, error_fields
from shipper.errors import ClusterError

RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: item errors that say nothing about the document: the cluster refuses every write to the index
#: (rights, a block, a closed or missing index). They stop the run unacknowledged, never
#: dead-lettered, so a rerun once the cause is fixed sends the same documents again.
STOPPING_STATUSES = frozenset({401, 403})
STOPPING_ERRORS = frozenset(
    {
        "security_exception",
        "cluster_block_exception",
        "index_closed_exception",
        "index_not_found_exception",
        "no_such_index_exception",
    }
)


class ShipError(ClusterError):
    """A bulk request failed for good (retries exhausted, credentials refused, …)."""


@dataclass(frozen=True)
class BulkOptions:
    max_bytes: int = 5 * 1024 * 1024
    max_docs: int = 2000
    in_flight: int = 4  # the raw client's best concurrency on the bench node (bench/ingest.py)
    max_retries: int = 8
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    flush_interval: float | None = None  # seconds an item may wait in a partial batch (watch)


@dataclass
class SinkStats:
    shipped: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    retries: int = 0
    requests: int = 0
    bytes_sent: int = 0
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)


class AckRange(NamedTuple):
    """Records ``first`` … ``last`` of ``source`` are done (in the cluster, or dead-lettered)."""

    source: str
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one chunk came to, or records acknowledged without a request (``requested`` False:
    they made no document)."""

    acked: list[AckRange]
    shipped: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    requested: bool = True
    #: the records dead-lettered (not in the cluster: no alert may point at them), and the ones
    #: the cluster already held (409: the document indexed is the first shipment's)
    dead: tuple[Ack, ...] = ()
    duplicated: tuple[Ack, ...] = ()


def ack_ranges(acks: Iterable[Ack], passed: Iterable[tuple[str, int, int]] = ()) -> list[AckRange]:
    """``acks`` and ``passed`` ranges as the fewest ranges per source, sorted."""
    spans = [(s, q, q) for s, q in acks]
    spans.extend(passed)
    spans.sort()
    out: list[AckRange] = []
    for source, first, last in spans:
        if out and out[-1].source == source and first <= out[-1].last + 1:
            if last > out[-1].last:
                out[-1] = AckRange(source, out[-1].first, last)
        else:
            out.append(AckRange(source, first, last))
    return out


def _refusal_text(ack: Ack, status: int, error: Any) -> str:
    etype, reason = error_fields(error)
    source, seq = ack
    return (
        f"{source} (item {seq}): the cluster refuses writes (HTTP {status} {etype}: {reason});"
        " nothing from here on is checkpointed: fix the cause (rights, block, index) and run again"
    )


class Sender:
    """Sends chunks (thread-safe: the counters are kept under a lock)."""

    def __init__(
        self,
        client: Elasticsearch,
        opts: BulkOptions,
        stats: SinkStats,
        dead_letters: DeadLetters | None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.opts = opts
        self.stats = stats
        self.dead_letters = dead_letters
        self._sleep = sleep
        self._lock = threading.Lock()

    def backoff(self, attempt: int) -> float:
        cap = min(self.opts.backoff_max, self.opts.backoff_initial * (2**attempt))
        return random.uniform(cap / 2, cap)

    def request(self, items: list[bytes]) -> dict[str, Any]:
        """One bulk request, retried while the cluster is away or overloaded."""
        body = b"".join(items)  # every line ends in its newline
        attempt = 0
        while True:
            try:
                resp = self.client.bulk(
                    operations=body,  # type: ignore[arg-type]  # pre-serialised NDJSON is passed as is
                    filter_path="errors,items.*.status,items.*.error",
                )
                with self._lock:
                    self.stats.requests += 1
                    self.stats.bytes_sent += len(body)
                return dict(resp.body)
            except (AuthenticationException, AuthorizationException) as exc:
                raise ShipError(
                    f"the cluster refused the bulk request (HTTP {exc.meta.status}): {exc.message}"
                ) from exc
            except TlsError as exc:
                raise ShipError(f"TLS verification failed: {exc.message}") from exc
            except (TransportConnectionError, ConnectionTimeout) as exc:
                reason = f"connection error: {exc.message}"
            except ApiError as exc:
                if exc.meta.status not in RETRY_STATUSES:
                    raise ShipError(f"bulk request failed: HTTP {exc.meta.status} {exc.message}") from exc
                reason = f"HTTP {exc.meta.status}"
            if attempt >= self.opts.max_retries:
                raise ShipError(f"bulk request failed after {attempt + 1} attempts ({reason})")
            with self._lock:
                self.stats.retries += 1
            self._sleep(self.backoff(attempt))
            attempt += 1

    def send(self, chunk: Chunk) -> BatchResult:
        """Send ``chunk`` until every item is done; its result, or :class:`ShipError`."""
        pending = list(range(len(chunk.acks)))
        counts = [0, 0, 0]  # shipped, duplicates, dead-lettered
        dead: list[Ack] = []
        duplicated: list[Ack] = []
        attempt = 0
        while pending:
            whole = len(pending) == len(chunk.items)
            resp = self.request(chunk.items if whole else [chunk.items[i] for i in pending])
            items = resp.get("items") or []
            if len(items) != len(pending):
                raise ShipError(f"bulk response has {len(items)} items for {len(pending)} documents")
            if resp.get("errors") is False:  # every item created (the usual case): no item to read
                with self._lock:
                    self.stats.shipped += len(pending)
                counts[0] += len(pending)
                break
            retry_left = attempt < self.opts.max_retries
            pending = self._outcomes(chunk, pending, items, counts, (dead, duplicated), retry_left=retry_left)
            if pending:
                self._sleep(self.backoff(attempt))
                attempt += 1
        shipped, duplicates, dead_lettered = counts
        acked = ack_ranges(chunk.acks, chunk.passed)
        return BatchResult(
            acked, shipped, duplicates, dead_lettered, dead=tuple(dead), duplicated=tuple(duplicated)
        )

    def _outcomes(
        self,
        chunk: Chunk,
        pending: list[int],
        items: list[Any],
        counts: list[int],
        marks: tuple[list[Ack], list[Ack]],
        *,
        retry_left: bool,
    ) -> list[int]:
        """Count each answered item (``counts`` and ``marks``, the dead-lettered and the
        duplicated, updated); the ones to send again."""
        retry: list[int] = []
        shipped = dups = 0
        for i, item in zip(pending, items, strict=True):
            result = next(iter(item.values()))
            status = int(result.get("status", 0))
            if status in (200, 201):
                shipped += 1
            elif status == 409:
                dups += 1
                marks[1].append(chunk.acks[i])
            elif (status == 429 or status >= 500) and retry_left:
                retry.append(i)
            elif (status in STOPPING_STATUSES) or _error_type(result) in STOPPING_ERRORS:
                raise ShipError(_refusal_text(chunk.acks[i], status, result.get("error")))
            else:
                self._dead_letter(chunk, i, status, result.get("error"))
                counts[2] += 1
                marks[0].append(chunk.acks[i])
        with self._lock:
            self.stats.shipped += shipped
            self.stats.duplicates += dups
            if retry:
                self.stats.retries += 1
        counts[0] += shipped
        counts[1] += dups
        return retry

    def _dead_letter(self, chunk: Chunk, i: int, status: int, error: Any) -> None:
        etype, reason = error_fields(error)
        with self._lock:
            self.stats.dead_lettered += 1
            self.stats.dead_letter_reasons[etype] = self.stats.dead_letter_reasons.get(etype, 0) + 1
        if self.dead_letters is None:
            source, seq = chunk.acks[i]
            raise ShipError(f"{source} (item {seq}): rejected by the cluster ({etype}: {reason})")
        self.dead_letters.write(chunk.items[i], chunk.acks[i], status, error)


def _error_type(result: dict[str, Any]) -> Any:
    error = result.get("error")
    return error.get("type") if isinstance(error, dict) else None

"""Bulk writer: NDJSON bodies bounded by bytes and count, several requests in flight, retries with
bounded exponential backoff and jitter, dead letters for rejected documents, acknowledgements.

Every document is written with ``op_type: create`` and a deterministic ``_id`` into the monthly
index of its own ``@timestamp``; a 409 is therefore a duplicate (counted, not an error), and
shipping the same event again — after a crash, from another collector, a year later — never
duplicates it.

Outcome of each item, all counted, none dropped silently:

- 201 → ``shipped``; 409 → ``duplicates``;
- 429 / 5xx item errors and request-level 429/502/503/504 / connection errors → retried with
  exponential backoff and full jitter, at most ``max_retries`` times; a request that still fails
  raises :class:`ShipError` (nothing of it is acknowledged, so a rerun resumes before it);
- 401/403 item errors and those that refuse the whole index (a block, a closed or missing index)
  → :class:`ShipError`: the run stops and nothing of the batch is acknowledged;
- any other item error (mapping rejections: 400-class) → one line in the dead-letter NDJSON file
  with the reason and the document, ``dead_lettered`` counted, and the run ends non-zero.

Acknowledgements: every item carries an ``ack`` key (its source and 1-based ordinal); once an
item's outcome is known (shipped, duplicate or dead-lettered) ``on_ack(ranges)`` is called from
the worker thread with contiguous ``(source, first, last)`` ranges. The checkpoint turns them into
a contiguous watermark.

Memory is flat: at most ``in_flight`` requests are being sent plus one being filled; ``add``
blocks when all slots are busy.
"""

from __future__ import annotations

import fcntl
import os
import random
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate, repeat
from pathlib import Path
from typing import IO, Any

import orjson
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, TlsError
from elasticsearch import ApiError, AuthenticationException, AuthorizationException, Elasticsearch

from shipper.envelope import Envelope, FilePath, wrap
from shipper.errors import ClusterError
from shipper.native import document_time, native, native_head
from shipper.redact import mask_text
from shipper.templates import index_suffix

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
AckRange = tuple[str, int, int]
AckCallback = Callable[[list[AckRange]], None]


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


@dataclass
class _Batch:
    items: list[bytes] = field(default_factory=list)  # per item its action and document lines
    acks: list[tuple[str, int]] = field(default_factory=list)
    nbytes: int = 0
    started: float = 0.0


_LINE = orjson.OPT_APPEND_NEWLINE


_NOW: list[Any] = [-1, "", b""]  # (millisecond, its ISO string, as bytes): formatted once per ms


def _now() -> list[Any]:
    ms = time.time_ns() // 1_000_000
    cached = _NOW
    if cached[0] != ms:
        moment = datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)
        text = moment.isoformat(timespec="milliseconds")[:-6] + "Z"
        cached = [ms, text, text.encode()]
        globals()["_NOW"] = cached  # one list swapped whole: a reader never sees a mixed pair
    return cached


def _stamped(doc_json: bytes, now: bytes) -> bytes:
    """A native document with ``event.ingested`` = ``now`` spliced in as the first event field,
    as a bulk line (newline included)."""
    return b"".join((doc_json[:50], b'"ingested":"', now, b'",', doc_json[50:], b"\n"))


def now_iso() -> str:
    """The current UTC time, ``yyyy-MM-ddTHH:mm:ss.SSSZ``."""
    return str(_now()[1])


def _error_fields(error: Any) -> tuple[str, str]:
    """An item error's type and reason (with its cause), secrets masked: the cluster quotes the
    value it could not parse, and a command line may hold a URL with a password. (The document
    itself stays as it was: it is the event, and a replay must send it unchanged.)"""
    if not isinstance(error, dict):
        return "error", mask_text(str(error))
    etype = str(error.get("type", "error"))
    reason = str(error.get("reason", ""))
    caused = error.get("caused_by")
    if isinstance(caused, dict) and caused.get("reason"):
        reason += f" (caused by {caused.get('type')}: {caused.get('reason')})"
    return etype, mask_text(reason)


def _stops_the_run(status: int, error: Any) -> bool:
    etype = error.get("type") if isinstance(error, dict) else None
    return status in STOPPING_STATUSES or etype in STOPPING_ERRORS


def _refusal_text(ack: tuple[str, int], status: int, error: Any) -> str:
    etype, reason = _error_fields(error)
    source, seq = ack
    return (
        f"{source} (item {seq}): the cluster refuses writes (HTTP {status} {etype}: {reason});"
        " nothing from here on is checkpointed: fix the cause (rights, block, index) and run again"
    )


def _ranges(acks: Iterable[tuple[str, int]]) -> list[AckRange]:
    out: list[AckRange] = []
    for source, seq in sorted(acks):
        if out and out[-1][0] == source and out[-1][2] + 1 == seq:
            out[-1] = (source, out[-1][1], seq)
        elif out and out[-1][0] == source and out[-1][2] >= seq:
            continue
        else:
            out.append((source, seq, seq))
    return out


def _open_dead_letters(path: Path) -> IO[bytes]:
    """Open ``path`` for appending, 0600 (dead letters hold whole events: users, command lines),
    with a shared lock: ``sysmon-ship replay`` locks it exclusively and may replace or remove it,
    so the file locked must still be the one at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)  # a file left by an older version is tightened too
        fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return os.fdopen(fd, "ab")
        except FileNotFoundError:
            pass
        os.close(fd)  # replaced or removed while we waited for the lock: open the new one


class BulkSink:
    """Thread-safe for ``on_ack`` (called from workers); ``add``/``flush``/``close`` are for one
    producer thread."""

    def __init__(
        self,
        client: Elasticsearch,
        *,
        options: BulkOptions | None = None,
        dead_letter_path: str | Path | None = None,
        on_ack: AckCallback | None = None,
        sleep: Callable[[float], None] = time.sleep,
        envelope: Envelope | None = None,
    ) -> None:
        self.client = client
        #: what every event document gets (see ``shipper.envelope``); None: documents as given
        self.envelope = envelope
        self._files: dict[str, FilePath] = {}  # per source being shipped: its log.file.path
        self.opts = options or BulkOptions()
        if self.opts.max_docs < 1 or self.opts.in_flight < 1 or self.opts.max_bytes < 1:
            raise ValueError("bulk sizes and in-flight requests must be at least 1")
        self.dead_letter_path = Path(dead_letter_path) if dead_letter_path else None
        self.on_ack = on_ack
        self.stats = SinkStats()
        self._sleep = sleep
        self._lock = threading.Lock()
        self._dl_fh: IO[bytes] | None = None
        self._slots = threading.BoundedSemaphore(self.opts.in_flight)
        self._pool = ThreadPoolExecutor(max_workers=self.opts.in_flight, thread_name_prefix="bulk")
        self._futures: set[Future[None]] = set()
        self._error: BaseException | None = None
        self._batch = _Batch()
        self._action_heads: dict[str, bytes] = {}  # index → b'{"create":{"_index":"…","_id":'
        self._core = native()
        self._closed = False

    # ---------------------------------------------------------------- producer side

    def name_source(self, source: str, label: str | None = None) -> None:
        """``source``'s documents are about to come: their ``log.file.path`` is its absolute
        path, or ``label`` (a file read through a handle after it left its folder)."""
        if self.envelope is not None:
            self._files[source] = FilePath.of(source, label)

    def forget_source(self, source: str) -> None:
        self._files.pop(source, None)

    def _file(self, source: str) -> FilePath:
        file = self._files.get(source)
        return file if file is not None else FilePath.of(source)

    def add(self, doc: dict[str, Any], index: str, doc_id: str, ack: tuple[str, int]) -> None:
        """Queue one document (``event.ingested`` and the envelope are set here)."""
        self._raise_if_failed()
        if self.envelope is not None:
            self.envelope.apply(doc, self._file(ack[0]))
        event = doc.get("event")
        if isinstance(event, dict):
            event["ingested"] = now_iso()
        else:
            doc["event"] = {"ingested": now_iso()}
        self._append(self._action(index, doc_id) + orjson.dumps(doc, option=_LINE), ack)

    def add_json(self, doc_json: bytes, index: str, doc_id: str, ack: tuple[str, int]) -> None:
        """:meth:`add` for a document already serialised by the native core, which always
        starts ``{"@timestamp":"<24 characters>","event":{``: ``event.ingested`` is spliced in
        without decoding it (any other document is decoded and queued by :meth:`add`)."""
        if not native_head(doc_json):
            self.add(orjson.loads(doc_json), index, doc_id, ack)
            return
        self._raise_if_failed()
        if self.envelope is not None:
            doc_json = wrap(doc_json, self.envelope.tail, self._file(ack[0]).json)
        self._append(self._action(index, doc_id) + _stamped(doc_json, _now()[2]), ack)

    def add_json_run(
        self,
        docs: list[bytes],
        doc_ids: list[str],
        index_head: str,
        source: str,
        first_seq: int,
    ) -> None:
        """:meth:`add_json` for consecutive documents of ``source`` (acks ``first_seq`` on), each
        into the index ``index_head`` + ``yyyy.MM`` of its ``@timestamp``. The native core builds
        the bulk lines of the whole run at once; they are then cut into batches as
        :meth:`_append` would."""
        self._raise_if_failed()
        now = _now()[1]
        items = None
        if self._core is not None:
            env = self.envelope
            tail, log_file = (env.tail, self._file(source).json) if env is not None else (b"", b"")
            items = self._core.bulk_lines(docs, doc_ids, index_head, now, tail, log_file)
        if items is None:  # no core, or not all native documents: one by one, the careful way
            for k, raw in enumerate(docs):
                index = index_head + (index_suffix(document_time(raw)) or "unknown")
                self.add_json(raw, index, doc_ids[k], (source, first_seq + k))
            return
        upto = list(accumulate(map(len, items), initial=0))  # bytes of items[:i]
        n, k = len(items), 0
        max_docs, max_bytes = self.opts.max_docs, self.opts.max_bytes
        while k < n:
            b = self._batch
            if not b.items:
                b.started = time.monotonic()
            # the most items from k on that fit in this batch's bounds (one at least if it is empty)
            last = min(n, k + max_docs - len(b.acks))
            j = bisect_right(upto, max_bytes - b.nbytes + upto[k], k, last + 1) - 1
            if j <= k:  # (below k: what the batch holds is already over the bound)
                if b.items:  # the next document does not fit: this batch is full
                    self._submit()
                    continue
                j = k + 1  # a document larger than the bound goes alone
            b.items.extend(items[k:j])
            b.acks.extend(zip(repeat(source), range(first_seq + k, first_seq + j)))
            b.nbytes += upto[j] - upto[k]
            k = j
            if len(b.acks) >= max_docs:
                self._submit()

    def _head(self, index: str) -> bytes:
        """``{"create":{"_index":…,"_id":`` for ``index``, serialised once per index."""
        head = self._action_heads.get(index)
        if head is None:
            head = self._action_heads[index] = b'{"create":{"_index":' + orjson.dumps(index) + b',"_id":'
        return head

    def _action(self, index: str, doc_id: str) -> bytes:
        """The bulk action line ``{"create":{"_index":…,"_id":…}}`` (newline included)."""
        return self._head(index) + orjson.dumps(doc_id) + b"}}\n"

    def _append(self, item: bytes, ack: tuple[str, int]) -> None:
        """Queue one item (its action and document lines)."""
        b = self._batch
        if not b.items:
            b.started = time.monotonic()
        size = len(item)
        if b.items and b.nbytes + size > self.opts.max_bytes:
            self._submit()
            b = self._batch
            b.started = time.monotonic()
        b.items.append(item)
        b.acks.append(ack)
        b.nbytes += size
        if len(b.acks) >= self.opts.max_docs:
            self._submit()

    def maybe_flush(self) -> None:
        """Send a partial batch whose oldest item waited ``flush_interval`` seconds or more."""
        fi = self.opts.flush_interval
        b = self._batch
        if fi is not None and b.items and time.monotonic() - b.started >= fi:
            self._submit()

    def flush(self, wait: bool = True) -> None:
        """Send what is buffered; with ``wait``, return once every request has been answered."""
        if self._batch.items:
            self._submit()
        if wait:
            self._wait_all()
        self._raise_if_failed()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._error is None and self._batch.items:
                self._submit()
            self._wait_all()
        finally:
            self._pool.shutdown(wait=True)
            if self._dl_fh is not None:
                self._dl_fh.close()
                self._dl_fh = None
        self._raise_if_failed()

    def __enter__(self) -> BulkSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _submit(self) -> None:
        batch, self._batch = self._batch, _Batch()
        self._slots.acquire()
        if self._error is not None:
            self._slots.release()
            self._raise_if_failed()
        fut = self._pool.submit(self._run, batch)
        with self._lock:
            self._futures.add(fut)
        fut.add_done_callback(self._done)

    def _done(self, fut: Future[None]) -> None:
        with self._lock:
            self._futures.discard(fut)
        exc = fut.exception()
        if exc is not None and self._error is None:
            self._error = exc
        self._slots.release()

    def _wait_all(self) -> None:
        while True:
            with self._lock:
                pending = list(self._futures)
            if not pending:
                return
            for fut in pending:
                try:
                    fut.result()
                except BaseException:
                    pass

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            err = self._error
            if isinstance(err, ClusterError):
                raise err
            raise ShipError(f"bulk request failed: {err}") from err

    # ---------------------------------------------------------------- worker side

    def _backoff(self, attempt: int) -> float:
        cap = min(self.opts.backoff_max, self.opts.backoff_initial * (2**attempt))
        return random.uniform(cap / 2, cap)

    def _send(self, items: list[bytes]) -> dict[str, Any]:
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
            self._sleep(self._backoff(attempt))
            attempt += 1

    def _run(self, batch: _Batch) -> None:
        pending = list(range(len(batch.acks)))
        attempt = 0
        while pending:
            resp = self._send(
                batch.items if len(pending) == len(batch.items) else [batch.items[i] for i in pending]
            )
            items = resp.get("items") or []
            if len(items) != len(pending):
                raise ShipError(f"bulk response has {len(items)} items for {len(pending)} documents")
            if resp.get("errors") is False:  # every item created (the usual case): no item to read
                with self._lock:
                    self.stats.shipped += len(pending)
                if self.on_ack is not None:
                    self.on_ack(_ranges(batch.acks[i] for i in pending))
                return
            retry: list[int] = []
            done: list[tuple[str, int]] = []
            shipped = dups = 0
            for i, item in zip(pending, items, strict=True):
                result = next(iter(item.values()))
                status = int(result.get("status", 0))
                if status in (200, 201):
                    shipped += 1
                    done.append(batch.acks[i])
                elif status == 409:
                    dups += 1
                    done.append(batch.acks[i])
                elif (status == 429 or status >= 500) and attempt < self.opts.max_retries:
                    retry.append(i)
                elif _stops_the_run(status, result.get("error")):
                    raise ShipError(_refusal_text(batch.acks[i], status, result.get("error")))
                else:
                    self._dead_letter(batch, i, status, result.get("error"))
                    done.append(batch.acks[i])
            with self._lock:
                self.stats.shipped += shipped
                self.stats.duplicates += dups
                if retry:
                    self.stats.retries += 1
            if done and self.on_ack is not None:
                self.on_ack(_ranges(done))
            pending = retry
            if pending:
                self._sleep(self._backoff(attempt))
                attempt += 1

    def _dead_letter(self, batch: _Batch, i: int, status: int, error: Any) -> None:
        item = batch.items[i]
        cut = item.index(b"\n")
        action = orjson.loads(item[:cut])["create"]
        index, doc_id, document = action["_index"], action["_id"], item[cut + 1 : -1]
        source, seq = batch.acks[i]
        etype, reason = _error_fields(error)
        line = orjson.dumps(
            {
                "status": status,
                "error": {"type": etype, "reason": reason},
                "index": index,
                "_id": doc_id,
                "source": source,
                "seq": seq,
                "dead_lettered_at": now_iso(),
                "document": orjson.Fragment(document),
            }
        )
        with self._lock:
            self.stats.dead_lettered += 1
            self.stats.dead_letter_reasons[etype] = self.stats.dead_letter_reasons.get(etype, 0) + 1
            if self.dead_letter_path is None:
                raise ShipError(f"{source} (item {seq}): rejected by the cluster ({etype}: {reason})")
            if self._dl_fh is None:
                self._dl_fh = _open_dead_letters(self.dead_letter_path)
            self._dl_fh.write(line + b"\n")
            self._dl_fh.flush()

"""Bulk writer: chunk → send → results.

Every document is written with ``op_type: create`` and a deterministic ``_id`` into the monthly
index of its own ``@timestamp``; shipping the same event again — after a crash, from another
collector, a year later — never duplicates it (a 409 is counted as a duplicate).

The three parts are kept apart, as in ``elasticsearch.helpers``:

- chunking (``shipper.chunks``): the documents added are cut into bodies bounded by bytes and
  count, each item keyed by its source and record ordinal;
- sending (``shipper.sending``): each chunk goes to a worker of a pool of ``in_flight``, which
  retries, counts, dead-letters (``shipper.dead_letters``) and returns a :class:`BatchResult`,
  or raises :class:`ShipError` for refusals that stop the run;
- results: they come back to the caller's thread in the order the documents were added,
  whatever order the requests complete in, through ``on_result``, called from inside the
  sink's own methods (``add*``, ``pass_over``, ``maybe_flush``, ``flush``, ``close``: what was
  answered while the caller was elsewhere waits for its next call). A chunk still in flight
  holds back the results of every later one, and a chunk that failed raises its error in its
  place: nothing after it is ever delivered. So whoever turns results into checkpoints is
  never ahead of what the cluster acknowledged.

Records that made no document are passed with :meth:`BulkSink.pass_over`: they are done once
every document added before them is, and are delivered in order with those.

Memory is flat: at most ``in_flight`` requests are being sent plus one chunk being filled;
adding blocks while every slot is busy.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from elasticsearch import Elasticsearch

from shipper.chunks import Ack, ActionLines, Chunk, Chunker, now_iso, now_parts, stamped
from shipper.dead_letters import DeadLetters
from shipper.envelope import Envelope, FilePath, InputLabels, SourceFields, wrap
from shipper.errors import ClusterError
from shipper.native import document_time, native, native_head
from shipper.sending import AckRange, BatchResult, BulkOptions, Sender, ShipError, SinkStats
from shipper.templates import index_suffix

__all__ = ["AckRange", "BatchResult", "BulkOptions", "BulkSink", "ShipError", "SinkStats", "now_iso"]

_LINE = orjson.OPT_APPEND_NEWLINE


class BulkSink:
    """For one producer thread: ``on_result`` is called on it, never from a worker."""

    def __init__(
        self,
        client: Elasticsearch,
        *,
        options: BulkOptions | None = None,
        dead_letter_path: str | Path | None = None,
        on_result: Callable[[BatchResult], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        envelope: Envelope | None = None,
    ) -> None:
        self.opts = options or BulkOptions()
        if self.opts.max_docs < 1 or self.opts.in_flight < 1 or self.opts.max_bytes < 1:
            raise ValueError("bulk sizes and in-flight requests must be at least 1")
        #: what every event document gets (see ``shipper.envelope``); None: documents as given
        self.envelope = envelope
        self._sources: dict[str, SourceFields] = {}  # per source being shipped
        #: the run's envelope extended by each input's labels, made once per input
        self._extended: dict[tuple[object, ...], Envelope] = {}
        self.dead_letter_path = Path(dead_letter_path) if dead_letter_path else None
        self._dead = DeadLetters(self.dead_letter_path) if self.dead_letter_path else None
        self.on_result = on_result
        self.stats = SinkStats()
        self._sender = Sender(client, self.opts, self.stats, self._dead, sleep)
        self._chunker = Chunker(self.opts.max_bytes, self.opts.max_docs, self._submit)
        self._lines = ActionLines()
        self._slots = threading.BoundedSemaphore(self.opts.in_flight)
        self._pool = ThreadPoolExecutor(max_workers=self.opts.in_flight, thread_name_prefix="bulk")
        #: chunks sent and records passed, in the order they were added, until delivered
        self._order: deque[Future[BatchResult] | BatchResult] = deque()
        self._failed: BaseException | None = None  # the first failure a worker saw
        #: a chunk was answered since the last delivery (set by workers, read without a lock: a
        #: flag missed is seen at the next call, or the next chunk sent)
        self._answered = False
        self._core = native()
        self._closed = False
        #: sees every bulk item as queued (action and document lines, ``event.ingested`` and the
        #: envelope in: the document as it will be indexed), with the record ordinal of the
        #: first; None (the default) costs nothing. The stream detection stage sets it.
        self.observer: Callable[[list[bytes], str, int], None] | None = None

    # ---------------------------------------------------------------- documents in

    def name_source(self, source: str, label: str | None = None, extra: InputLabels | None = None) -> None:
        """``source``'s documents are about to come: their ``log.file.path`` is its absolute
        path, or ``label`` (a file read through a handle after it left its folder), and they
        get the labels and tags of the input that named it (``extra``) besides the run's."""
        env = self.envelope
        if env is None:
            return
        if extra is not None:
            key = (*sorted(extra.labels.items()), None, *extra.tags)
            env = self._extended.get(key) or self._extended.setdefault(key, env.extended(extra))
        self._sources[source] = SourceFields(env, FilePath.of(source, label))

    def forget_source(self, source: str) -> None:
        self._sources.pop(source, None)

    def _fields(self, source: str, envelope: Envelope) -> SourceFields:
        fields = self._sources.get(source)
        return fields if fields is not None else SourceFields(envelope, FilePath.of(source))

    def add(self, doc: dict[str, Any], index: str, doc_id: str, ack: Ack) -> None:
        """Queue one document (``event.ingested`` and the envelope are set here)."""
        self._take_answers()
        if self.envelope is not None:
            fields = self._fields(ack[0], self.envelope)
            fields.envelope.apply(doc, fields.file)
        event = doc.get("event")
        if isinstance(event, dict):
            event["ingested"] = now_iso()
        else:
            doc["event"] = {"ingested": now_iso()}
        item = self._lines(index, doc_id) + orjson.dumps(doc, option=_LINE)
        if self.observer is not None:
            self.observer([item], ack[0], ack[1])
        self._chunker.append(item, ack)

    def add_json(self, doc_json: bytes, index: str, doc_id: str, ack: Ack) -> None:
        """:meth:`add` for a document already serialised by the native core, which always
        starts ``{"@timestamp":"<24 characters>","event":{``: ``event.ingested`` is spliced in
        without decoding it (any other document is decoded and queued by :meth:`add`)."""
        if not native_head(doc_json):
            self.add(orjson.loads(doc_json), index, doc_id, ack)
            return
        self._take_answers()
        if self.envelope is not None:
            fields = self._fields(ack[0], self.envelope)
            doc_json = wrap(doc_json, fields.envelope.tail, fields.file.json)
        item = self._lines(index, doc_id) + stamped(doc_json, now_parts()[2])
        if self.observer is not None:
            self.observer([item], ack[0], ack[1])
        self._chunker.append(item, ack)

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
        the bulk lines of the whole run at once; they are cut into chunks as one by one."""
        self._take_answers()
        items = None
        if self._core is not None:
            tail = log_file = b""
            if self.envelope is not None:
                fields = self._fields(source, self.envelope)
                tail, log_file = fields.envelope.tail, fields.file.json
            items = self._core.bulk_lines(docs, doc_ids, index_head, now_parts()[1], tail, log_file)
        if items is None:  # no core, or not all native documents: one by one, the careful way
            for k, raw in enumerate(docs):
                index = index_head + (index_suffix(document_time(raw)) or "unknown")
                self.add_json(raw, index, doc_ids[k], (source, first_seq + k))
            return
        if self.observer is not None:
            self.observer(items, source, first_seq)
        self._chunker.extend(items, source, first_seq)

    def pass_over(self, source: str, first: int, last: int) -> None:
        """Records ``first`` … ``last`` of ``source`` made no document: they are done once every
        document added before them is, and delivered in order with those."""
        if last < first:
            return
        self._take_answers()
        chunk = self._chunker.chunk
        if chunk.items:
            chunk.passed.append((source, first, last))
        else:  # after everything sent so far: a result of their own, in its place
            self._order.append(BatchResult([AckRange(source, first, last)], requested=False))
            self._deliver(wait=False)

    # ---------------------------------------------------------------- sending and results

    def maybe_flush(self) -> None:
        """Send a partial chunk whose oldest item waited ``flush_interval`` seconds or more, and
        deliver the results that are in."""
        fi = self.opts.flush_interval
        if fi is not None and self._chunker.chunk.items and self._chunker.age() >= fi:
            self._chunker.cut()
        self._deliver(wait=False)

    def flush(self, wait: bool = True) -> None:
        """Send what is buffered; with ``wait``, return once every result is delivered."""
        self._chunker.cut()
        self._deliver(wait)
        self._raise_if_failed()

    def close(self) -> None:
        """Send the rest and deliver every result (up to a failure, which is raised)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._failed is None:
                self._chunker.cut()
            self._deliver(wait=True)
        finally:
            self._pool.shutdown(wait=True)
            if self._dead is not None:
                self._dead.close()
        self._raise_if_failed()

    def __enter__(self) -> BulkSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _submit(self, chunk: Chunk) -> None:
        """The chunker's ``emit``: a chunk to a worker once a slot is free."""
        self._slots.acquire()
        if self._failed is not None:
            self._slots.release()
            self._raise_if_failed()
        fut = self._pool.submit(self._sender.send, chunk)
        fut.add_done_callback(self._done)
        self._order.append(fut)
        self._deliver(wait=False)

    def _done(self, fut: Future[BatchResult]) -> None:
        """(worker thread) A request slot is free; a failure stops further adds at once."""
        if fut.exception() is not None and self._failed is None:
            self._failed = fut.exception()
        self._answered = True
        self._slots.release()

    def _results(self, wait: bool) -> Iterator[BatchResult]:
        """Results in the order added: the ones in (or, ``wait``, all of them); a failed chunk
        raises in its place and stays at the head, so nothing after it ever comes out."""
        order = self._order
        while order:
            head = order[0]
            if isinstance(head, Future):
                if not wait and not head.done():
                    return
                try:
                    result = head.result()
                except ClusterError:
                    raise
                except BaseException as exc:
                    raise ShipError(f"bulk request failed: {exc}") from exc
            else:
                result = head
            order.popleft()
            yield result

    def _take_answers(self) -> None:
        """At every call that adds: stop on a failure, deliver what was answered meanwhile."""
        self._raise_if_failed()
        if self._answered:
            self._deliver(wait=False)

    def _deliver(self, wait: bool) -> None:
        self._answered = False  # (first: an answer from now on sets it again)
        for result in self._results(wait):
            if self.on_result is not None:
                self.on_result(result)

    def _raise_if_failed(self) -> None:
        err = self._failed
        if err is not None:
            if isinstance(err, ClusterError):
                raise err
            raise ShipError(f"bulk request failed: {err}") from err

"""Sources read and mapped in worker processes, yielded exactly as a serial read yields them.

Each worker process takes whole sources from its own task queue, in the order given, and sends
their documents back on its own bounded result queue. A message is a list of ``Segment``s: a
stretch of one source's documents (one orjson array; pickle when a document is not plain JSON)
with the counts of that stretch, the last one with the source's ``SourceEnded``. The parent
reads the sources strictly in order, each from the worker that has it, so a worker that runs
ahead simply blocks on its full queue: memory stays bounded (workers × in-flight × batch) and
order and counts are those of a serial run. Workers ignore SIGINT; the parent stops them when
it ends, however it ends.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue
import signal
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from shipper.errors import InputError
from shipper.native import NativeSession, native_session
from shipper.native import threads_started as native_threads_started
from shipper.parent_watch import die_with_parent
from shipper.pipeline.serial import source_events
from shipper.stats import Stats
from shipper.stream import Item, ReadOptions, SourceEnded, SourceRead, SourceStarted
from shipper.sysmon.psl import warm as warm_public_suffix_list

#: Documents a worker sends per message, and messages each worker may have waiting: together
#: they bound the memory of a parallel run (workers × in-flight × batch documents).
BATCH_DOCUMENTS = 1000
IN_FLIGHT_BATCHES = 4
#: Sources queued ahead on one worker (the parent consumes sources in order).
SOURCES_AHEAD = 16

#: An Item's fields in a worker's message: doc, doc_id, index_suffix, seq, position, end_offset,
#: end_line (its source is the segment's).
Row = tuple[dict[str, Any], str, str, int, str, int | None, int | None]


@dataclass(frozen=True, slots=True)
class Segment:
    index: int  # the source's place in the run
    is_json: bool  # rows as orjson (else pickle)
    rows: bytes
    stats: Stats  # the counts of this stretch
    ended: SourceEnded | None = None  # the source's last segment
    failure: bytes | None = None  # a pickled exception: the source's last segment too

    @property
    def last(self) -> bool:
        return self.ended is not None or self.failure is not None


def _pack(rows: list[Row]) -> tuple[bool, bytes]:
    try:
        return True, orjson.dumps(rows)
    except (TypeError, orjson.JSONEncodeError):
        return False, pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)


def _row(item: Item) -> Row:
    return (item.doc, item.doc_id, item.index_suffix, item.seq, item.position, item.end_offset, item.end_line)


def _pickled(exc: Exception) -> bytes:
    try:
        return pickle.dumps(exc)
    except Exception:
        return pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))


def _worker(tasks: Any, results: Any, options: ReadOptions, parent: int) -> None:
    """Worker process: map every source that arrives on ``tasks`` until ``None``."""
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pending: list[Segment] = []
    size = 0  # documents in ``pending``

    def flush() -> None:
        nonlocal pending, size
        if pending:
            results.put(pending)
            pending, size = [], 0

    def add(index: int, rows: list[Row], st: Stats, **end: Any) -> None:
        nonlocal size
        pending.append(Segment(index, *_pack(rows), st.take(), **end))
        size += len(rows)
        if size >= BATCH_DOCUMENTS or end.get("failure") is not None:
            flush()

    with native_session() as session:  # its own: a session never crosses processes
        _work(tasks, options, flush, add, session)


def _work(tasks: Any, options: ReadOptions, flush: Any, add: Any, session: NativeSession | None) -> None:
    """Map every source that arrives on ``tasks`` until ``None`` (see ``_worker``)."""
    while True:
        if tasks.empty():  # nothing more to do at once: let the parent have what is ready
            flush()
        task = tasks.get()
        if task is None:
            flush()
            return
        index, read = task
        st = Stats()
        rows: list[Row] = []
        try:
            # one thread for the EVTX parser: the workers already use the cores
            for event in source_events(index, read, options, st, evtx_threads=1, native=session):
                if isinstance(event, SourceEnded):
                    add(index, rows, st, ended=event)
                    break
                assert isinstance(event, Item)
                rows.append(_row(event))
                if len(rows) >= BATCH_DOCUMENTS:
                    add(index, rows, st)
                    rows = []
        except Exception as exc:  # sent to the parent, which raises it in order
            add(index, rows, st, failure=_pickled(exc))


def _context() -> Any:
    """``fork`` where it is safe (POSIX, no other thread running, the native core's included:
    the workers then start with the parent's imports and the public suffix list already
    loaded), else ``forkserver`` or ``spawn``."""
    methods = mp.get_all_start_methods()
    others = [t for t in threading.enumerate() if t is not threading.current_thread()]
    # the feeder threads of a previous run's (closed) queues hold nothing a worker would use
    if (
        "fork" in methods
        and all(t.name == "QueueFeederThread" for t in others)
        and not native_threads_started()  # the native core's threads are not Python's
    ):
        warm_public_suffix_list()
        return mp.get_context("fork")
    return mp.get_context("forkserver" if "forkserver" in methods else "spawn")


class _Pool:
    """The worker processes and their queues; sources are assigned in order, up to
    ``SOURCES_AHEAD`` waiting on each worker."""

    def __init__(self, reads: Sequence[SourceRead], options: ReadOptions, count: int) -> None:
        ctx = _context()
        self.reads = reads
        self.tasks = [ctx.Queue() for _ in range(count)]
        self.results = [ctx.Queue(maxsize=IN_FLIGHT_BATCHES) for _ in range(count)]
        self.procs = [
            ctx.Process(
                target=_worker,
                args=(self.tasks[w], self.results[w], options, os.getpid()),
                daemon=True,
                name=f"map-{w}",
            )
            for w in range(count)
        ]
        self.owner: dict[int, int] = {}  # source index → worker
        self.queued = [0] * count  # sources assigned to each worker and not yet consumed
        self.following = 0  # next source to assign
        self.stash: list[deque[Segment]] = [deque() for _ in range(count)]

    def start(self) -> None:
        for proc in self.procs:
            proc.start()
        for _ in range(SOURCES_AHEAD):
            for w in range(len(self.procs)):
                self.assign(w)

    def assign(self, w: int) -> None:
        if self.following < len(self.reads) and self.queued[w] < SOURCES_AHEAD:
            self.tasks[w].put((self.following, self.reads[self.following]))
            self.owner[self.following] = w
            self.queued[w] += 1
            self.following += 1

    def next_segment(self, index: int) -> Segment:
        w = self.owner[index]
        if not self.stash[w]:
            self.stash[w].extend(_receive(self.results[w], self.procs[w], self.reads[index].path))
        segment = self.stash[w].popleft()
        if segment.index != index:  # pragma: no cover - a bug, never a data problem
            raise RuntimeError(f"worker sent source {segment.index} before {index}")
        if segment.last:
            self.queued[w] -= 1
            self.assign(w)
        return segment

    def finish(self) -> None:
        for q in self.tasks:
            q.put(None)
        for proc in self.procs:
            proc.join(timeout=5)

    def close(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
        for proc in self.procs:
            if proc.pid is not None:
                proc.join(timeout=5)
        for q in self.results:
            q.cancel_join_thread()
            q.close()
        clean = all(proc.exitcode == 0 for proc in self.procs)
        for q in self.tasks:
            if not clean:  # a killed worker may have left tasks unread
                q.cancel_join_thread()
            q.close()
            q.join_thread()


def parallel_events(
    reads: Sequence[SourceRead], options: ReadOptions, st: Stats, count: int
) -> Iterator[SourceStarted | Item | SourceEnded]:
    """The stream of ``reads`` mapped by ``count`` worker processes (Items only, never runs)."""
    pool = _Pool(reads, options, count)
    try:
        pool.start()
        loads = orjson.loads
        for index, read in enumerate(reads):
            st.sources += 1
            yield SourceStarted(index, read.path)
            while True:
                segment = pool.next_segment(index)
                rows = loads(segment.rows) if segment.is_json else pickle.loads(segment.rows)
                st.merge(segment.stats)
                source = read.path
                for doc, doc_id, suffix, seq, position, end_offset, end_line in rows:
                    yield Item(doc, doc_id, suffix, source, seq, position, end_offset, end_line)
                if segment.failure is not None:
                    raise pickle.loads(segment.failure)
                if segment.ended is not None:
                    yield segment.ended
                    break
        pool.finish()
    finally:
        pool.close()


def _receive(results: Any, proc: Any, source: str) -> list[Segment]:
    """The next message of a worker; a worker that died without a word is an error."""
    while True:
        try:
            message: list[Segment] = results.get(timeout=1.0)
            return message
        except queue.Empty:
            if not proc.is_alive():
                raise InputError(
                    f"worker process {proc.name} died (exit code {proc.exitcode}) while mapping",
                    source=source,
                ) from None

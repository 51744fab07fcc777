"""Orchestration of a shipping run: sources → pipeline → sink, with checkpoints per source.

For each source the last checkpoint decides what happens (``checkpoint.decide``): finished and
unchanged sources are skipped, partial ones resume after their acknowledged records, rotated or
truncated ones start over. ``from_start`` ignores the checkpoints (the deterministic ``_id`` and
``op_type: create`` keep that free of duplicates).

Acknowledgement is by record ordinal (``Item.seq`` counts every record the reader yields, other
providers included): records that produce no document are acknowledged as soon as the reader has
moved past them, documents when their bulk response is in. The contiguous watermark is what the
checkpoint stores, so a crash at any point resumes at or before the first unacknowledged record.

Line-based sources (JSON lines, event XML, rendered text) also carry each record's end offset:
the checkpoint keeps the offset (and line) of the last document at or below the watermark, and a
resume of the same, not shorter file opens there instead of re-reading the acknowledged prefix
(the few records between that document and the watermark are skipped by count).
"""

from __future__ import annotations

import gc
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from elasticsearch import Elasticsearch

from shipper.checkpoint import (
    Checkpoint,
    CheckpointStore,
    FileIdentity,
    Head,
    Watermark,
    decide,
    resume_point,
)
from shipper.config import ShipperConfig
from shipper.errors import InputError
from shipper.pipeline import STDIN, Item, ItemRun, Stats, effective_workers, iter_runs
from shipper.readers.evtx import PREFETCH_AHEAD, drop_prefetched
from shipper.readers.evtx import prefetch as prefetch_evtx
from shipper.sink import AckRange, BulkOptions, BulkSink
from shipper.templates import events_index

SAVE_EVERY = 1.0  # seconds between checkpoint writes of one source while it is being shipped
#: net container allocations between young-generation collections while shipping (CPython: 700)
GC_YOUNG_THRESHOLD = 50_000


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Rarer cyclic garbage collections while shipping. The acknowledgements of the requests in
    flight (a tuple per document) otherwise trigger a young collection every 700 of them and,
    now and then, a full one over every module, class and function loaded: about 3% of the
    shipper's CPU under ``perf``, half of which this saves (on a collector shared with the node,
    that CPU is taken from indexing). What is loaded when shipping starts is frozen out of the
    collections; cycles are still collected."""
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(old[0], GC_YOUNG_THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


@dataclass
class _Source:
    path: str
    checkpoint: Checkpoint
    mark: Watermark
    total: int | None = None  # records in the source, once read to the end
    last_saved: float = 0.0
    saved_acked: int = -1
    saved_done: bool = False
    #: resume point ``(offset, line, seq)`` at or below the watermark (None: from the start)
    point: tuple[int, int, int] | None = None
    #: ``(first seq, end offsets, end lines)`` of runs of documents sent with known end offsets
    #: (a document sent alone is a run of one), not yet wholly under ``point``
    ends: deque[tuple[int, list[int], list[int]]] = field(default_factory=deque)
    #: False for a source with no checkpoint of its own (standard input, a watched file read
    #: through its open handle after it left the folder)
    persist: bool = True

    @property
    def done(self) -> bool:
        return self.total is not None and self.mark.acked >= self.total

    def advance_point(self, acked: int) -> None:
        """``point`` := the end of the last document sent at or below ``acked``."""
        ends = self.ends
        while ends and ends[0][0] <= acked:
            first, offsets, lines = ends[0]
            k = min(acked - first, len(offsets) - 1)
            self.point = (offsets[k], lines[k], first + k)
            if k < len(offsets) - 1:
                return  # the rest of the run is above the watermark
            ends.popleft()


@dataclass
class _Read:
    """One source that ``_ship_reads`` reads: where it starts and how far it got."""

    st: _Source
    skip: int
    start: tuple[int, int, int] | None
    last: int  # seq of the last record routed (or skipped)
    held: Item | None = None
    held_back: bool = False
    total: int | None = None  # records read in all, once the read ended

    @property
    def base(self) -> int:
        return self.start[2] if self.start is not None else 0


class _Tally(Stats):
    """``Stats`` that also note ``records`` each time the pipeline counts a new source. The
    pipeline counts a source only once every record of the one before is counted (in
    parallel runs too), so the differences are the records of each source of one
    ``iter_documents`` call: where a source ended, trailing records without a document
    included, even when the next source's first document arrives long after."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        super().__init__()

    @property
    def sources(self) -> int:
        return int(self.__dict__.get("_sources", 0))

    @sources.setter
    def sources(self, value: int) -> None:
        if value > self.__dict__.get("_sources", 0):
            self.starts.append(self.records)
        self.__dict__["_sources"] = value

    def counted(self, index: int) -> int:
        """Records counted so far of the ``index``-th source since ``starts`` was cleared."""
        if index >= len(self.starts):
            return 0
        end = self.starts[index + 1] if index + 1 < len(self.starts) else self.records
        return end - self.starts[index]

    def uncounted(self, index: int) -> None:
        """One record of the ``index``-th source was taken back out of ``records``."""
        for i in range(index + 1, len(self.starts)):
            self.starts[i] -= 1


@dataclass
class RunSummary:
    shipped: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    skipped_sources: int = 0
    resumed_sources: int = 0
    sources: int = 0
    documents: int = 0
    errors: int = 0
    retries: int = 0
    elapsed: float = 0.0
    interrupted: bool = False
    dead_letter_file: str | None = None
    pipeline: dict[str, Any] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return (
            (self.shipped + self.duplicates + self.dead_lettered) / self.elapsed if self.elapsed > 0 else 0.0
        )

    def line(self) -> str:
        return (
            f"shipped={self.shipped} duplicates={self.duplicates} dead_lettered={self.dead_lettered} "
            f"skipped_sources={self.skipped_sources} resumed_sources={self.resumed_sources} "
            f"errors={self.errors} retries={self.retries} elapsed={self.elapsed:.1f}s "
            f"events/s={self.events_per_s:.0f}" + (" interrupted" if self.interrupted else "")
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "shipped": self.shipped,
            "duplicates": self.duplicates,
            "dead_lettered": self.dead_lettered,
            "skipped_sources": self.skipped_sources,
            "resumed_sources": self.resumed_sources,
            "sources": self.sources,
            "documents": self.documents,
            "errors": self.errors,
            "retries": self.retries,
            "elapsed": round(self.elapsed, 3),
            "events_per_s": round(self.events_per_s, 1),
            "interrupted": self.interrupted,
            "dead_letter_file": self.dead_letter_file,
            "pipeline": self.pipeline,
        }


class Progress:
    """What the shipper tells a progress display (no-op by default)."""

    def source_started(self, path: str, index: int, total: int) -> None:
        pass

    def advance(self, documents: int) -> None:
        pass

    def close(self) -> None:
        pass


class Shipper:
    def __init__(
        self,
        cfg: ShipperConfig,
        client: Elasticsearch,
        *,
        from_start: bool = False,
        fmt: str | None = None,
        evtx_backend: str = "auto",
        host: str | None = None,
        skip_errors: bool = False,
        flush_interval: float | None = None,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.cfg = cfg
        self.from_start = from_start
        self.fmt = fmt
        self.evtx_backend = evtx_backend
        self.host = host
        self.skip_errors = skip_errors
        self.progress = progress or Progress()
        self.stop = stop or threading.Event()
        self.store = CheckpointStore(cfg.state_dir)
        self.stats = _Tally()
        self.summary = RunSummary(dead_letter_file=cfg.dead_letter_path)
        self._sources: dict[str, _Source] = {}
        self._read_points: dict[str, tuple[int, int, int]] = {}
        self._save_lock = threading.Lock()
        # checkpoints to write, by the writer thread (bulk workers must not wait on the disk)
        self._dirty: dict[str, _Source] = {}
        self._dirty_cv = threading.Condition()
        self._writer: threading.Thread | None = None
        self._writer_stop = False
        self._save_error: Exception | None = None
        self._prefetch_seen: set[str] = set()  # sources _prefetch has already looked at
        self._index_head = events_index(cfg.index_prefix, "")  # + yyyy.MM: a monthly index
        opts: BulkOptions = cfg.bulk
        if flush_interval is not None:
            opts = replace(opts, flush_interval=flush_interval)
        self.sink = BulkSink(client, options=opts, dead_letter_path=cfg.dead_letter_path, on_ack=self._on_ack)
        self._began = time.monotonic()
        self._closed = False

    # ---------------------------------------------------------------- acknowledgements

    def _on_ack(self, ranges: list[AckRange]) -> None:
        now = time.monotonic()
        for source, first, last in ranges:
            st = self._sources.get(source)
            if st is None:
                continue
            st.mark.add(first, last)
            if st.done or now - st.last_saved >= SAVE_EVERY:
                self._want_save(st)

    def _want_save(self, st: _Source) -> None:
        """Have the writer thread save ``st``'s checkpoint soon."""
        if not st.persist:
            return
        with self._dirty_cv:
            self._dirty[st.path] = st
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="checkpoints", daemon=True)
                self._writer.start()
            self._dirty_cv.notify()

    def _write_loop(self) -> None:
        """Write the checkpoints asked for, a round at a time, each round made durable by one
        fsync of the folder rather than two per file (see ``CheckpointStore.save``)."""
        while True:
            with self._dirty_cv:
                while not self._dirty and not self._writer_stop:
                    self._dirty_cv.wait()
                if not self._dirty:
                    return
                batch, self._dirty = self._dirty, {}
            try:
                for st in batch.values():
                    self._save(st)
                self.store.sync()
            except Exception as exc:  # a full disk (or a bug): the run ends with this error
                if self._save_error is None:
                    self._save_error = exc

    def _stop_writer(self) -> None:
        with self._dirty_cv:
            self._writer_stop = True
            self._dirty_cv.notify()
            writer = self._writer
        if writer is not None:
            writer.join()

    def _save(self, st: _Source) -> None:
        """Write ``st``'s checkpoint if it changed (not durably: the caller syncs the folder)."""
        if not st.persist:
            return
        with self._save_lock:
            acked = st.mark.acked
            done = st.done
            if acked == st.saved_acked and done == st.saved_done:
                return
            st.advance_point(acked)
            cp = replace(st.checkpoint, acked=acked, done=done)
            if st.point is not None:
                offset, line, seq = st.point
                cp = replace(cp, offset=offset, offset_line=line, offset_seq=seq)
            self.store.save(cp, sync=False)
            st.saved_acked = acked
            st.saved_done = done
            st.last_saved = time.monotonic()

    def save_all(self) -> None:
        """Every checkpoint written and durable (the writer thread is done first)."""
        self._stop_writer()
        for st in list(self._sources.values()):
            self._save(st)
        self.store.sync()
        if self._save_error is not None:
            raise self._save_error

    # ---------------------------------------------------------------- shipping

    def plan(self, path: str) -> tuple[str, int, FileIdentity | None]:
        """``(decision, records to skip, identity)`` for one source."""
        ident = self._identity(path)
        if ident is None or self.from_start:
            return "new", 0, ident
        previous = self.store.load(path)
        head = previous.head() if previous is not None else None
        changed = previous is not None and (previous.size, previous.mtime_ns) != (ident.size, ident.mtime_ns)
        decision, skip = decide(previous, ident, head_kept=head is None or not changed or head.still(path))
        return decision, skip, ident

    @staticmethod
    def _identity(path: str) -> FileIdentity | None:
        if path == STDIN:
            return None
        try:
            return FileIdentity.of(path)
        except OSError as exc:
            raise InputError(f"cannot stat: {exc.strerror or exc}", source=path) from exc

    def read_point(self, path: str) -> tuple[int, int, int] | None:
        """``(offset, line, seq)``: the end of the last document of ``path`` sent by the last
        ``ship_source`` with a known end offset (or where that read started); None when unknown.
        Watch mode starts the next pass of a grown file there (with ``skip`` its records)."""
        return self._read_points.get(path)

    def ship_source(
        self,
        path: str,
        *,
        skip: int | None = None,
        start: tuple[int, int, int] | None = None,
        hold_last_error: bool = False,
        on_item: Callable[[Item], None] | None = None,
        persist: bool = True,
        label: str | None = None,
    ) -> tuple[int, bool]:
        """Ship one source (resuming per its checkpoint unless ``skip`` is given). Returns
        ``(records read in all, whether the final record was held back)``.

        ``start`` (with ``skip``): ``(offset, line, seq)`` from ``read_point`` — read on from a
        record's end instead of from the start. A ``skip`` given overrides the checkpoint.

        ``hold_last_error`` (watch mode): a read error on the very last record is probably a line
        still being written; it is not shipped nor acknowledged, so the next pass reads it again.

        ``persist`` False: no checkpoint is kept for ``path`` (a handle's ``/proc/self/fd/N``);
        ``label``: what error documents call it then (the name the file had).
        """
        read = self._open(path, skip, start, persist=persist)
        if isinstance(read, int):
            return read, False
        labels = {path: label} if label is not None else None
        return self._ship_reads([read], hold_last_error=hold_last_error, on_item=on_item, labels=labels)[0]

    def _open(
        self, path: str, skip: int | None, start: tuple[int, int, int] | None, persist: bool = True
    ) -> _Read | int:
        """Plan one source: the records of a finished source, which is skipped, or what to read
        (its checkpoint state registered for acknowledgements). A ``skip`` given is the caller's
        decision (watch compares inode, size and head itself, and knows better than a checkpoint
        still being written)."""
        if skip is None and persist:
            decision, planned, ident = self.plan(path)
        else:
            decision, planned, ident = "new", 0, self._identity(path)
        if skip is None:
            if decision == "done":
                self.summary.skipped_sources += 1
                point = resume_point(self.store.load(path), ident) if ident is not None else None
                if point is not None:  # where watch reads on when the file grows
                    self._read_points[path] = point
                return planned
            skip = planned
            start = None
            if decision == "resume" and skip > 0:
                self.summary.resumed_sources += 1
                if ident is not None:
                    start = resume_point(self.store.load(path), ident)
        if start is not None and (ident is None or start[0] > ident.size or not 0 <= start[2] <= skip):
            start = None
        cp = (
            Checkpoint.start(ident)
            if ident is not None
            else Checkpoint(path=STDIN, size=0, mtime_ns=0, inode=0, device=0)
        )
        cp = replace(cp, acked=skip)
        head = Head.of(path) if ident is not None and persist else None  # before the read: see Head
        if head is not None:
            cp = replace(cp, head_length=head.length, head_digest=head.digest)
        if start is not None:
            cp = replace(cp, offset=start[0], offset_line=start[1], offset_seq=start[2])
        prev = self._sources.get(path)
        if prev is not None and not prev.done and (prev.total is None or skip < prev.total):
            # Another content under the same name (rotated, rewritten) while the last read of it
            # waits for answers: those acknowledgements must not land on this read's records.
            self.sink.flush()
        st = _Source(path, cp, Watermark(skip), point=start, persist=persist and ident is not None)
        self._sources[path] = st
        self._read_points.pop(path, None)
        if start is not None:
            self._read_points[path] = start
        self.summary.sources += 1
        return _Read(st, skip, start, last=skip)

    def _ship_reads(
        self,
        reads: list[_Read],
        *,
        workers: int | None = 1,
        hold_last_error: bool = False,
        on_item: Callable[[Item], None] | None = None,
        announce: Callable[[int], None] | None = None,
        labels: dict[str, str] | None = None,
    ) -> list[tuple[int, bool]]:
        """Read ``reads`` with one ``iter_documents`` call and route each item to its source's
        watermark. A source is finished (its trailing records without a document acknowledged,
        its checkpoint marked done) once the pipeline has moved on to the next source or ended;
        ``_Tally`` tells how many records each source had. Returns ``(records read in all,
        final record held back)`` per read, in order. ``announce(index)``: a read begins."""
        if not reads:
            return []
        tally = self.stats
        tally.starts.clear()
        paths = [r.st.path for r in reads]
        current = -1  # index of the read whose items arrive

        def begin(index: int) -> None:
            nonlocal current
            while current < index:
                current += 1
                if current > 0:
                    finish(current - 1, True)
                if announce is not None and current < len(reads):
                    announce(current)

        def finish(index: int, complete: bool) -> None:
            r = reads[index]
            total = r.base + tally.counted(index)
            if r.held is not None:
                held, r.held = r.held, None
                if complete and held.seq == total:
                    r.held_back = True
                    total -= 1  # read it again on the next pass; it was not an error (yet)
                    self._uncount(held)
                    tally.uncounted(index)
                else:
                    self._send(held, r.st)
            r.total = total
            if complete:
                if total > r.last:
                    r.st.mark.add(r.last + 1, total)  # records after the last document
                r.st.total = total
            if r.st.done:
                self._want_save(r.st)

        items = iter_runs(
            paths,
            fmt=self.fmt,
            evtx_backend=self.evtx_backend,
            host=self.host,
            skip_errors=self.skip_errors,
            stats=tally,
            skip={r.st.path: r.skip for r in reads},
            start={r.st.path: r.start for r in reads if r.start is not None} or None,
            workers=workers,
            runs=on_item is None,
            labels=labels,
        )
        stopped = False
        try:
            for item in items:
                index = len(tally.starts) - 1  # the source the pipeline is on
                if item.source != paths[index]:  # pragma: no cover - a pipeline bug
                    raise RuntimeError(f"item of {item.source} while reading {paths[index]}")
                begin(index)
                r = reads[index]
                if r.held is not None:
                    self._send(r.held, r.st)
                    r.held = None
                if isinstance(item, ItemRun):  # native documents: never errors, never held
                    if item.first_seq > r.last + 1:
                        r.st.mark.add(r.last + 1, item.first_seq - 1)  # records that made no document
                    r.last = item.last_seq
                    self._send_run(item, r.st)
                    if self.stop.is_set():
                        stopped = True
                        break
                    continue
                if item.seq > r.last + 1:
                    r.st.mark.add(r.last + 1, item.seq - 1)  # records that made no document
                r.last = item.seq
                if hold_last_error and item.is_error:
                    r.held = item
                else:
                    self._send(item, r.st)
                if on_item is not None:
                    on_item(item)
                if self.stop.is_set():
                    stopped = True
                    break
        except BaseException:
            # the sources before the one that failed were read to their end
            begin(len(tally.starts) - 1)
            raise
        finally:
            if isinstance(items, Generator):
                items.close()  # a parallel pipeline stops its workers at once
        if stopped:
            finish(current, False)
        else:
            begin(len(reads))  # the pipeline ended: every read is finished
        return [(r.total if r.total is not None else r.base, r.held_back) for r in reads]

    def _uncount(self, item: Item) -> None:
        kind = str((item.doc.get("error") or {}).get("type", ""))
        st = self.stats
        st.records -= 1
        st.documents -= 1
        if st.errors.get(kind, 0) > 0:
            st.errors[kind] -= 1
            if not st.errors[kind]:
                del st.errors[kind]
            if st.error_samples and st.error_samples[-1].startswith(f"{item.source} ({item.position})"):
                st.error_samples.pop()

    def _send_run(self, run: ItemRun, st: _Source) -> None:
        ends, end_lines = run.end_offsets, run.end_lines
        if ends is not None and end_lines is not None and run.source != STDIN:
            st.ends.append((run.first_seq, ends, end_lines))
            self._read_points[run.source] = (ends[-1], end_lines[-1], run.last_seq)
        self.sink.add_json_run(run.docs, run.doc_ids, self._index_head, run.source, run.first_seq)

    def _send(self, item: Item, st: _Source | None = None) -> None:
        if (
            st is not None
            and item.end_offset is not None
            and item.end_line is not None
            and item.source != STDIN
        ):
            # before the sink may acknowledge it (from another thread)
            st.ends.append((item.seq, [item.end_offset], [item.end_line]))
            self._read_points[item.source] = (item.end_offset, item.end_line, item.seq)
        index = events_index(self.cfg.index_prefix, item.index_suffix)
        if item.doc_json is not None:
            self.sink.add_json(item.doc_json, index, item.doc_id, (item.source, item.seq))
        else:
            self.sink.add(item.doc, index, item.doc_id, (item.source, item.seq))
        self.progress.advance(1)

    def run(self, paths: Sequence[str], workers: int | None = 1) -> RunSummary:
        """Ship every source in ``paths`` (already expanded), then flush and save.

        ``workers`` other than 1 (None or 0: one per core) plans every source first, then maps
        the ones to read in that many worker processes with one ``iter_documents`` call; the
        documents, checkpoints and summary are those of ``workers=1``. Standard input, or a
        single source, is read in this process."""
        with fewer_collections():
            try:
                if workers == 1 or effective_workers(workers, paths) <= 1:
                    for i, path in enumerate(paths, 1):
                        if self.stop.is_set():
                            break
                        self._prefetch(paths[i : i + PREFETCH_AHEAD - 1])
                        self.progress.source_started(path, i, len(paths))
                        self.ship_source(path)
                else:
                    self._run_planned(paths, workers)
            finally:
                drop_prefetched()
                self.close()
        return self.summary

    def _prefetch(self, upcoming: Sequence[str]) -> None:
        """Let the native core parse the next EVTX sources while this one ships (finished ones
        are not read at all, so they are not prefetched either)."""
        if self.evtx_backend == "python" or self.fmt not in (None, "evtx"):
            return
        for path in upcoming:
            if path == STDIN or path in self._prefetch_seen:
                continue
            self._prefetch_seen.add(path)
            try:
                if self.plan(path)[0] != "done":
                    prefetch_evtx(path)
            except InputError:
                continue  # its own turn reports it

    def _run_planned(self, paths: Sequence[str], workers: int | None) -> None:
        reads: list[_Read] = []
        where: list[int] = []  # position of each read in ``paths``
        for i, path in enumerate(paths, 1):
            if self.stop.is_set():
                return
            read = self._open(path, None, None)
            if isinstance(read, _Read):
                reads.append(read)
                where.append(i)

        def announce(index: int) -> None:
            self.progress.source_started(reads[index].st.path, where[index], len(paths))

        self._ship_reads(reads, workers=workers, announce=announce)

    def close(self) -> None:
        """Flush, wait for every answer, save every checkpoint (also after an error)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.sink.close()
        finally:
            self.save_all()
            self.progress.close()
            self.finish_summary()

    def finish_summary(self) -> RunSummary:
        s = self.summary
        ss = self.sink.stats
        s.shipped, s.duplicates, s.dead_lettered, s.retries = (
            ss.shipped,
            ss.duplicates,
            ss.dead_lettered,
            ss.retries,
        )
        s.documents = self.stats.documents
        s.errors = sum(self.stats.errors.values())
        s.elapsed = time.monotonic() - self._began
        s.interrupted = self.stop.is_set()
        s.pipeline = self.stats.as_dict()
        if not ss.dead_lettered:
            s.dead_letter_file = None
        return s

    def forget_source(self, path: str) -> None:
        """Drop the in-memory state of a finished source (watch mode runs for months). One
        without a checkpoint goes at once: no acknowledgement of it is waited for."""
        st = self._sources.get(path)
        if st is None:
            return
        if not st.persist:
            del self._sources[path]
            self._read_points.pop(path, None)
        elif st.done and st.saved_acked == st.mark.acked:
            del self._sources[path]

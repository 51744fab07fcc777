"""A shipping run: plan each source from its checkpoint, read them as one stream, route it to
the sink, and save the checkpoints.

For each source the last checkpoint decides what happens (``checkpoint.decide``): finished and
unchanged sources are skipped, partial ones resume after their acknowledged records (a
line-based one from its resume point), rotated or truncated ones start over. ``from_start``
ignores the checkpoints (the deterministic ``_id`` and ``op_type: create`` keep that free of
duplicates). Where the stream's events go is ``shipper.routing``; how states become durable
checkpoints, ``shipper.checkpointing``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from elasticsearch import Elasticsearch

from shipper.checkpoint import Checkpoint, CheckpointStore, FileIdentity, Head, ResumePoint, Watermark, decide
from shipper.checkpoint import resume_point as checkpoint_resume_point
from shipper.checkpointing import CheckpointWriter, SourceState
from shipper.config import ShipperConfig
from shipper.detecting import DetectStage
from shipper.envelope import Envelope, InputLabels
from shipper.errors import InputError
from shipper.fewer_gc import fewer_collections
from shipper.inputs import STDIN, SourceLabels
from shipper.native import PREFETCH_AHEAD, NativeSession, native_session
from shipper.pipeline import effective_workers, stream
from shipper.routing import Read, ReadResult, Router
from shipper.sink import BatchResult, BulkOptions, BulkSink
from shipper.stats import Stats
from shipper.stream import Item, ReadOptions, SourceRead
from shipper.summary import Progress, RunSummary

__all__ = ["Progress", "ReadResult", "RunSummary", "Shipper"]


class Shipper:
    def __init__(
        self,
        cfg: ShipperConfig,
        client: Elasticsearch,
        *,
        options: ReadOptions | None = None,
        from_start: bool = False,
        flush_interval: float | None = None,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        source_labels: SourceLabels[InputLabels] | None = None,
        detect: DetectStage | None = None,
    ) -> None:
        self.cfg = cfg
        #: the labels and tags of the configured input that names a source, if it has any
        self.source_labels = source_labels
        self.options = options or ReadOptions()
        self.from_start = from_start
        self.progress = progress or Progress()
        self.stop = stop or threading.Event()
        self.store = CheckpointStore(cfg.state_dir)
        self.writer = CheckpointWriter(self.store)
        self.stats = Stats()
        self.summary = RunSummary(dead_letter_file=cfg.dead_letter_path)
        self._sources: dict[str, SourceState] = {}
        self._read_points: dict[str, ResumePoint] = {}
        self._prefetch_seen: set[str] = set()  # sources _prefetch has already looked at
        self._session: NativeSession | None = None  # the native core's, while ``run`` runs
        opts: BulkOptions = cfg.bulk
        if flush_interval is not None:
            opts = replace(opts, flush_interval=flush_interval)
        self.envelope = Envelope.for_run(
            cfg.state_dir, name=cfg.agent_name, id=cfg.agent_id, labels=cfg.labels, tags=cfg.tags
        )
        self.sink = BulkSink(
            client,
            options=opts,
            dead_letter_path=cfg.dead_letter_path,
            on_result=self._on_result,
            envelope=self.envelope,
        )
        #: stream detection: sees every document queued, writes alerts once they are acknowledged
        self.detect = detect
        if detect is not None:
            self.sink.observer = detect.observe
        self.router = Router(self.sink, self.writer, cfg.index_prefix, self.progress, self._read_points)
        self._began = time.monotonic()
        self._closed = False

    def _on_result(self, result: BatchResult) -> None:
        """The sink's results, on this thread and in the order the records were routed: a
        source's watermark advances straight over them."""
        now = time.monotonic()
        for acked in result.acked:
            st = self._sources.get(acked.source)
            if st is not None:
                self.writer.acked(st, acked.first, acked.last, now)
        if self.detect is not None:
            self.detect.acknowledged(result)

    # ---------------------------------------------------------------- planning

    def plan(self, path: str, through: str | None = None) -> tuple[str, int, FileIdentity | None]:
        """``(decision, records to skip, identity)`` for one source (``through``: see
        ``ship_source``)."""
        ident = self._identity(path, through)
        if ident is None or self.from_start:
            return "new", 0, ident
        previous = self.store.load(path)
        head = previous.head() if previous is not None else None
        changed = previous is not None and (previous.size, previous.mtime_ns) != (ident.size, ident.mtime_ns)
        kept = head is None or not changed or head.still(through or path)
        decision, skip = decide(previous, ident, head_kept=kept)
        return decision, skip, ident

    @staticmethod
    def _identity(path: str, through: str | None = None) -> FileIdentity | None:
        """``path``'s identity, stat'ed through ``through`` when given."""
        if path == STDIN:
            return None
        try:
            return FileIdentity.of_stat(path, os.stat(through or path))
        except OSError as exc:
            raise InputError(f"cannot stat: {exc.strerror or exc}", source=path) from exc

    def read_point(self, path: str) -> ResumePoint | None:
        """The end of the last document of ``path`` sent by the last ``ship_source`` with a
        known end offset (or where that read started); None when unknown. Watch mode starts the
        next pass of a grown file there (with ``skip`` its records)."""
        return self._read_points.get(path)

    def _resume_point(self, path: str, ident: FileIdentity | None) -> ResumePoint | None:
        return checkpoint_resume_point(self.store.load(path), ident) if ident is not None else None

    def _open(
        self,
        path: str,
        skip: int | None,
        start: ResumePoint | None,
        persist: bool = True,
        label: str | None = None,
        through: str | None = None,
    ) -> Read | int:
        """Plan one source: the records of a finished source, which is skipped, or what to read
        (its state registered for acknowledgements). A ``skip`` given is the caller's decision
        (watch compares inode, size and head itself, and knows better than a checkpoint still
        being written)."""
        if skip is None and persist:
            decision, planned, ident = self.plan(path, through)
        else:
            decision, planned, ident = "new", 0, self._identity(path, through)
        if skip is None:
            if decision == "done":
                self.summary.skipped_sources += 1
                point = self._resume_point(path, ident)
                if point is not None:  # where watch reads on when the file grows
                    self._read_points[path] = point
                return planned
            skip, start = planned, None
            if decision == "resume" and skip > 0:
                self.summary.resumed_sources += 1
                start = self._resume_point(path, ident)
        if start is not None and (ident is None or start.offset > ident.size or not 0 <= start.seq <= skip):
            start = None
        acked, point, ends = skip, start, None
        prev = self._sources.get(path)
        if prev is not None and not prev.done:
            if prev.total is not None and skip == prev.total:
                # The same content read on (grown) while the last read waits for answers: those
                # come first, in order, so this read's watermark goes on from where they stand.
                acked, point, ends = prev.mark.acked, prev.point, prev.ends
            else:
                # Another content under the same name (rotated, rewritten): the last read's
                # acknowledgements must not land on this read's records.
                self.sink.flush()
        cp = self._checkpoint(path, ident, acked, point, persist, through)
        st = SourceState(path, cp, Watermark(acked), point=point, persist=persist and ident is not None)
        if ends is not None:
            st.ends = ends  # (shared) the resume points of the last read's documents still waiting
        self._sources[path] = st
        labels = self.source_labels
        self.sink.name_source(path, label, labels.get(label or path) if labels else None)
        self._read_points.pop(path, None)
        if start is not None:
            self._read_points[path] = start
        self.summary.sources += 1
        return Read(st, SourceRead(path, skip, start, label, through), last=skip)

    @staticmethod
    def _checkpoint(
        path: str,
        ident: FileIdentity | None,
        skip: int,
        start: ResumePoint | None,
        persist: bool,
        through: str | None = None,
    ) -> Checkpoint:
        """The checkpoint a read starts from: ``skip`` records acknowledged, and the head of the
        file as it is before the read (see ``Head``)."""
        if ident is None:
            return Checkpoint(path=STDIN, size=0, mtime_ns=0, inode=0, device=0, acked=skip)
        cp = replace(Checkpoint.start(ident), acked=skip)
        head = Head.of(through or path) if persist else None
        if head is not None:
            cp = replace(cp, head_length=head.length, head_digest=head.digest)
        if start is not None:
            cp = replace(cp, offset=start.offset, offset_line=start.line, offset_seq=start.seq)
        return cp

    # ---------------------------------------------------------------- shipping

    def ship_source(
        self,
        path: str,
        *,
        skip: int | None = None,
        start: ResumePoint | None = None,
        hold_last_error: bool = False,
        on_item: Callable[[Item], None] | None = None,
        persist: bool = True,
        label: str | None = None,
        through: str | None = None,
    ) -> ReadResult:
        """Ship one source (resuming per its checkpoint unless ``skip`` is given).

        ``start`` (with ``skip``): a ``read_point`` — read on from a record's end instead of
        from the start. A ``skip`` given overrides the checkpoint.

        ``hold_last_error`` (watch mode): a read error on the very last record is probably a line
        still being written; it is not shipped nor acknowledged, so the next pass reads it again.

        ``persist`` False: no checkpoint is kept for ``path`` (a handle's ``/proc/self/fd/N``);
        ``label``: what error documents call it then (the name the file had).
        ``through``: read (and stat) the file through this, an open handle's ``/proc/self/fd/N``,
        while its checkpoint, acknowledgements and ``log.file.path`` stay ``path``'s: watch reads
        the file it stat'ed even when the name was rotated to another one meanwhile.
        """
        read = self._open(path, skip, start, persist=persist, label=label, through=through)
        if isinstance(read, int):
            return ReadResult(read)
        options = replace(self.options, hold_last_error=True) if hold_last_error else self.options
        return self._ship_reads([read], options, on_item=on_item)[0]

    def _ship_reads(
        self,
        reads: list[Read],
        options: ReadOptions,
        *,
        workers: int | None = 1,
        on_item: Callable[[Item], None] | None = None,
        announce: Callable[[int], None] | None = None,
    ) -> list[ReadResult]:
        """Read ``reads`` as one stream and route it. ``announce(index)``: a read begins."""
        if not reads:
            return []
        specs = [r.spec for r in reads]
        runs = on_item is None
        events = stream(specs, options, self.stats, workers=workers, runs=runs, native=self._session)
        return self.router.route(events, reads, self.stop, on_item=on_item, announce=announce)

    def run(self, paths: Sequence[str], workers: int | None = 1) -> RunSummary:
        """Ship every source in ``paths`` (already expanded), then flush and save.

        ``workers`` other than 1 (None or 0: one per core) plans every source first, then maps
        the ones to read in that many worker processes as one stream; the documents, checkpoints
        and summary are those of ``workers=1``. Standard input, or a single source, is read in
        this process."""
        with fewer_collections(), native_session() as session:
            self._session = session  # one session for the run's streams
            try:
                if workers == 1 or effective_workers(workers, paths) <= 1:
                    for i, path in enumerate(paths, 1):
                        if self.stop.is_set():
                            break
                        self._prefetch(session, paths[i : i + PREFETCH_AHEAD - 1])
                        self.progress.source_started(path, i, len(paths))
                        self.ship_source(path)
                else:
                    self._run_planned(paths, workers)
            finally:
                self._session = None
                self.close()
        return self.summary

    def _prefetch(self, session: NativeSession | None, upcoming: Sequence[str]) -> None:
        """Let the native core parse the next EVTX sources while this one ships (finished ones
        are not read at all, so they are not prefetched either)."""
        if session is None or self.options.evtx_backend == "python" or self.options.fmt not in (None, "evtx"):
            return
        for path in upcoming:
            if path == STDIN or path in self._prefetch_seen:
                continue
            self._prefetch_seen.add(path)
            try:
                if self.plan(path)[0] != "done":
                    session.prefetch(path)
            except InputError:
                continue  # its own turn reports it

    def _run_planned(self, paths: Sequence[str], workers: int | None) -> None:
        reads: list[Read] = []
        where: list[int] = []  # position of each read in ``paths``
        for i, path in enumerate(paths, 1):
            if self.stop.is_set():
                return
            read = self._open(path, None, None)
            if isinstance(read, Read):
                reads.append(read)
                where.append(i)

        def announce(index: int) -> None:
            self.progress.source_started(reads[index].state.path, where[index], len(paths))

        self._ship_reads(reads, self.options, workers=workers, announce=announce)

    # ---------------------------------------------------------------- ending

    def save_all(self) -> None:
        """Every checkpoint written and durable (the writer thread is done first)."""
        self.writer.close(list(self._sources.values()))

    def close(self) -> None:
        """Flush, wait for every answer, save every checkpoint (also after an error)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.sink.close()
            if self.detect is not None:
                self.detect.close()
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
        if self.detect is not None:
            s.detection = self.detect.report()
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
            self.sink.forget_source(path)
        elif st.done and st.saved_acked == st.mark.acked:
            del self._sources[path]
            self.sink.forget_source(path)

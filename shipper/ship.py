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

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from elasticsearch import Elasticsearch

from shipper.checkpoint import Checkpoint, CheckpointStore, FileIdentity, Watermark, decide, resume_point
from shipper.config import ShipperConfig
from shipper.errors import InputError
from shipper.pipeline import STDIN, Item, Stats, iter_documents
from shipper.sink import AckRange, BulkOptions, BulkSink
from shipper.templates import events_index

SAVE_EVERY = 1.0  # seconds between checkpoint writes of one source while it is being shipped


@dataclass
class _Source:
    path: str
    checkpoint: Checkpoint
    mark: Watermark
    total: int | None = None  # records in the source, once read to the end
    last_saved: float = 0.0
    saved_acked: int = -1
    #: resume point ``(offset, line, seq)`` at or below the watermark (None: from the start)
    point: tuple[int, int, int] | None = None
    #: ``(seq, offset, line)`` of documents sent with a known end offset, not yet under ``point``
    ends: deque[tuple[int, int, int]] = field(default_factory=deque)

    @property
    def done(self) -> bool:
        return self.total is not None and self.mark.acked >= self.total


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
        self.stats = Stats()
        self.summary = RunSummary(dead_letter_file=cfg.dead_letter_path)
        self._sources: dict[str, _Source] = {}
        self._read_points: dict[str, tuple[int, int, int]] = {}
        self._save_lock = threading.Lock()
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
                self._save(st)

    def _save(self, st: _Source) -> None:
        if st.path == STDIN:
            return
        with self._save_lock:
            acked = st.mark.acked
            done = st.done
            if acked == st.saved_acked and not done:
                return
            while st.ends and st.ends[0][0] <= acked:
                seq, offset, line = st.ends.popleft()
                st.point = (offset, line, seq)
            cp = replace(st.checkpoint, acked=acked, done=done)
            if st.point is not None:
                offset, line, seq = st.point
                cp = replace(cp, offset=offset, offset_line=line, offset_seq=seq)
            self.store.save(cp)
            st.saved_acked = acked
            st.last_saved = time.monotonic()

    def save_all(self) -> None:
        for st in list(self._sources.values()):
            self._save(st)

    # ---------------------------------------------------------------- shipping

    def plan(self, path: str) -> tuple[str, int, FileIdentity | None]:
        """``(decision, records to skip, identity)`` for one source."""
        if path == STDIN:
            return "new", 0, None
        try:
            ident = FileIdentity.of(path)
        except OSError as exc:
            raise InputError(f"cannot stat: {exc.strerror or exc}", source=path) from exc
        if self.from_start:
            return "new", 0, ident
        decision, skip = decide(self.store.load(path), ident)
        return decision, skip, ident

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
    ) -> tuple[int, bool]:
        """Ship one source (resuming per its checkpoint unless ``skip`` is given). Returns
        ``(records read in all, whether the final record was held back)``.

        ``start`` (with ``skip``): ``(offset, line, seq)`` from ``read_point`` — read on from a
        record's end instead of from the start (ignored when the checkpoint says restart).

        ``hold_last_error`` (watch mode): a read error on the very last record is probably a line
        still being written; it is not shipped nor acknowledged, so the next pass reads it again.
        """
        decision, planned, ident = self.plan(path)
        if skip is None:
            if decision == "done":
                self.summary.skipped_sources += 1
                point = resume_point(self.store.load(path), ident) if ident is not None else None
                if point is not None:  # where watch reads on when the file grows
                    self._read_points[path] = point
                return planned, False
            skip = planned
            start = None
            if decision == "resume" and skip > 0:
                self.summary.resumed_sources += 1
                if ident is not None:
                    start = resume_point(self.store.load(path), ident)
        elif ident is not None and decision == "restart":
            skip = 0
            start = None
        if start is not None and (ident is None or start[0] > ident.size or not 0 <= start[2] <= skip):
            start = None
        cp = (
            Checkpoint.start(ident)
            if ident is not None
            else Checkpoint(path=STDIN, size=0, mtime_ns=0, inode=0, device=0)
        )
        cp = replace(cp, acked=skip)
        if start is not None:
            cp = replace(cp, offset=start[0], offset_line=start[1], offset_seq=start[2])
        st = _Source(path, cp, Watermark(skip), point=start)
        self._sources[path] = st
        self._read_points.pop(path, None)
        if start is not None:
            self._read_points[path] = start
        self.summary.sources += 1
        before = self.stats.records
        base = start[2] if start is not None else 0
        last = skip
        held: Item | None = None
        finished = False
        for item in iter_documents(
            [path],
            fmt=self.fmt,
            evtx_backend=self.evtx_backend,
            host=self.host,
            skip_errors=self.skip_errors,
            stats=self.stats,
            skip={path: skip},
            start={path: start} if start is not None else None,
        ):
            if held is not None:
                self._send(held, st)
                held = None
            if item.seq > last + 1:
                st.mark.add(last + 1, item.seq - 1)  # records that made no document
            last = item.seq
            if hold_last_error and (item.doc.get("event") or {}).get("kind") == "pipeline_error":
                held = item
            else:
                self._send(item, st)
            if on_item is not None:
                on_item(item)
            if self.stop.is_set():
                break
        else:
            finished = True
        total = base + self.stats.records - before
        held_back = False
        if held is not None:
            if finished and held.seq == total:
                held_back = True
                total -= 1  # read it again on the next pass; it was not an error (yet)
                self._uncount(held)
            else:
                self._send(held, st)
        if finished:
            if total > last:
                st.mark.add(last + 1, total)
            st.total = total
        if st.done:
            self._save(st)
        return total, held_back

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

    def _send(self, item: Item, st: _Source | None = None) -> None:
        if (
            st is not None
            and item.end_offset is not None
            and item.end_line is not None
            and item.source != STDIN
        ):
            # before the sink may acknowledge it (from another thread)
            st.ends.append((item.seq, item.end_offset, item.end_line))
            self._read_points[item.source] = (item.end_offset, item.end_line, item.seq)
        self.sink.add(
            item.doc,
            events_index(self.cfg.index_prefix, item.index_suffix),
            item.doc_id,
            (item.source, item.seq),
        )
        self.progress.advance(1)

    def run(self, paths: Sequence[str]) -> RunSummary:
        """Ship every source in ``paths`` (already expanded), then flush and save."""
        try:
            for i, path in enumerate(paths, 1):
                if self.stop.is_set():
                    break
                self.progress.source_started(path, i, len(paths))
                self.ship_source(path)
        finally:
            self.close()
        return self.summary

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
        """Drop the in-memory state of a finished source (watch mode runs for months)."""
        st = self._sources.get(path)
        if st is not None and st.done and st.saved_acked == st.mark.acked:
            del self._sources[path]

"""One source read, filtered and mapped in this process: its documents, counted, then its end.

Everything the reader yields is counted: Sysmon events by ID, other providers (skipped), unknown
event IDs (shipped anyway), and errors by kind with where they happened. Bad records become
``pipeline_error`` documents unless ``skip_errors`` asks to count and drop them.
"""

from __future__ import annotations

import hashlib
import os
from bisect import bisect_left
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from shipper.inputs import STDIN
from shipper.native import MappedBatch, NativeSession, document_time, native_head
from shipper.raw import RawEvent, ReadError
from shipper.readers.registry import closed_after, open_input, read_opened
from shipper.stats import Stats
from shipper.stream import Docs, Item, ItemRun, ReadOptions, SourceEnded, SourceRead
from shipper.sysmon.ecs import error_document, to_ecs_and_id
from shipper.sysmon.events import EVENTS
from shipper.templates import index_suffix


def _fallback_time(source: str) -> str:
    """The time for an error document with no event time of its own: the file's modification
    time (stable when the same file is shipped again), or now for standard input."""
    try:
        ts = os.stat(source).st_mtime if source != STDIN else None
    except OSError:
        ts = None
    when = datetime.fromtimestamp(ts, UTC) if ts is not None else datetime.now(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _locate(doc: dict[str, Any], source: str, where: str) -> None:
    """A mapping-error document says where its record came from, as a read-error one does:
    ``log.file.path`` and ``error.message`` prefixed with ``file (record N | line N)``."""
    if source:
        log = doc.setdefault("log", {})
        if isinstance(log, dict):
            log.setdefault("file", {"path": source})
    error = doc.get("error")
    if isinstance(error, dict) and where:
        message = error.get("message")
        if isinstance(message, str):
            error["message"] = f"{where}: {message}"
        elif isinstance(message, list) and message and isinstance(message[-1], str):
            message[-1] = f"{where}: {message[-1]}"


def _error_id(err: ReadError) -> str:
    material = "\x1f".join(("read-error", os.path.basename(err.source), err.position, err.kind, err.message))
    return hashlib.blake2b(material.encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()


def _counted_runs(rec: MappedBatch, source: str, seq: int, already: int, st: Stats) -> list[ItemRun]:
    """The records of ``rec`` (numbered after ``seq``) counted in ``st``, as runs of the
    documents above ``already``: one run per stretch of records between those of other
    providers, which are only counted."""
    n = len(rec)
    cut = min(max(already - seq, 0), n)  # records skipped
    st.records += n
    others = [k for k, _ in rec.others]  # their record indices, ascending
    below = bisect_left(others, cut)  # others among the skipped records
    st.other_providers.update(provider for _, provider in rec.others[below:])
    eids = rec.event_ids[cut - below :] if cut else rec.event_ids
    st.sysmon_by_id.update(eids)  # (never a Counter cached: a parallel worker swaps them)
    if not EVENTS.keys() >= set(eids):
        st.unknown_ids.update(e for e in eids if e not in EVENTS)
    st.documents += len(eids)
    ends, end_lines = rec.end_offsets, rec.end_lines()
    runs: list[ItemRun] = []
    lo, skipped = cut, below  # the stretch's first record; others before it
    for hi in [*others[below:], n]:
        if hi > lo:  # records lo … hi-1, documents lo-skipped … hi-skipped-1
            whole = lo == 0 and hi == n
            runs.append(
                ItemRun(
                    source,
                    seq + lo + 1,
                    rec.docs if whole else rec.docs[lo - skipped : hi - skipped],
                    rec.doc_ids if whole else rec.doc_ids[lo - skipped : hi - skipped],
                    None if ends is None else ends[lo:hi],
                    None if end_lines is None else end_lines[lo:hi],
                )
            )
        lo, skipped = hi + 1, skipped + 1
    return runs


def _items_of(runs: list[ItemRun], rec: MappedBatch, base: int) -> Iterator[Item]:
    """The documents of ``runs`` (cut from ``rec``, whose first record follows ``base``) one
    Item each."""
    positions = rec.positions()
    # a run's documents mostly share a month: the suffix by the first 22 bytes of a native
    # head (``{"@timestamp":"YYYY-MM``), which decide it
    suffixes: dict[bytes, str] = {}
    for run in runs:
        at = run.first_seq - base - 1  # the run's first record in the batch
        nothing: list[int | None] = [None] * len(run)
        ends: list[int | None] = [*run.end_offsets] if run.end_offsets is not None else nothing
        end_lines: list[int | None] = [*run.end_lines] if run.end_lines is not None else nothing
        first, source, ids = run.first_seq, run.source, run.doc_ids
        for k, raw in enumerate(run.docs):
            suffix = suffixes.get(raw[:22])
            if suffix is None:
                suffix = index_suffix(document_time(raw)) or "unknown"
                if native_head(raw):
                    suffixes[raw[:22]] = suffix
            yield Item(None, ids[k], suffix, source, first + k, positions[at + k], ends[k], end_lines[k], raw)


class _Mapper:
    """The per-source state of mapping one record at a time: the source, the counts, and the
    last event time (what an error document without a time of its own gets)."""

    def __init__(self, source: str, options: ReadOptions, st: Stats) -> None:
        self.source = source
        self.options = options
        self.st = st
        self.last_time: str | None = None

    def read_error(self, rec: ReadError, seq: int) -> Item | None:
        st = self.st
        st.records += 1
        st.error(rec.kind, f"{rec.source} ({rec.position}): {rec.message}")
        if self.options.skip_errors:
            st.errors_skipped += 1
            return None
        when = self.last_time or _fallback_time(self.source)
        doc = error_document(rec.kind, rec.message, rec.source, rec.position, rec.original, when=when)
        st.documents += 1
        suffix = index_suffix(doc.get("@timestamp")) or when[:7].replace("-", ".")
        return Item(doc, _error_id(rec), suffix, self.source, seq, rec.position, rec.end_offset, rec.end_line)

    def event(self, rec: RawEvent, seq: int) -> Item | None:
        st = self.st
        st.records += 1
        if not rec.is_sysmon:
            st.other_providers[rec.provider or "(unknown)"] += 1
            return None
        st.sysmon_by_id[rec.event_id] += 1
        if rec.event_id not in EVENTS:
            st.unknown_ids[rec.event_id] += 1
        doc, doc_id = to_ecs_and_id(rec)
        if (doc.get("event") or {}).get("kind") == "pipeline_error":
            msg = (doc.get("error") or {}).get("message", "mapping error")
            where = f"{rec.source} ({rec.position})" if rec.position else rec.source
            st.error("mapping", f"{where}: {msg}")
            if self.options.skip_errors:
                st.errors_skipped += 1
                return None
            _locate(doc, rec.source, where)
        ts = doc.get("@timestamp")
        suffix = index_suffix(ts)
        if suffix is None:
            ts = self.last_time or _fallback_time(self.source)
            doc["@timestamp"] = ts
            suffix = index_suffix(ts) or "unknown"
        else:
            self.last_time = ts
        st.documents += 1
        return Item(doc, doc_id, suffix, self.source, seq, rec.position, rec.end_offset, rec.end_line)


def source_events(
    index: int,
    read: SourceRead,
    options: ReadOptions,
    st: Stats,
    *,
    evtx_threads: int | None = None,
    runs: bool = False,
    native: NativeSession | None = None,
) -> Iterator[Docs | SourceEnded]:
    """The documents of one source, counted in ``st`` (all but ``sources``), then its
    ``SourceEnded``. ``runs``: documents the native core mapped come as ItemRun, not Items.
    ``native``: the session that reads what the native core can (None: the readers alone)."""
    source, already = read.path, read.skip
    start = read.start
    seq = start.seq if start is not None else 0
    opened = open_input(
        read.opened, options, start=start, evtx_threads=evtx_threads, name=read.label or source
    )
    # the native core reads what it can (EVTX, JSON lines), the readers the rest
    natively = native.read(opened, st) if native is not None else None
    events = read_opened(opened) if natively is None else closed_after(opened, natively)
    mapper = _Mapper(source, options, st)
    held: tuple[ReadError, int] | None = None  # a read error that may be the last record
    for rec in events:
        if held is not None:  # not the last record after all
            error = mapper.read_error(*held)
            held = None
            if error is not None:
                yield error
        if isinstance(rec, MappedBatch):  # read by the native core: documents with a time
            cut = _counted_runs(rec, source, seq, already, st)
            base, seq = seq, seq + len(rec)
            if cut:
                mapper.last_time = document_time(cut[-1].docs[-1])
                yield from cut if runs else _items_of(cut, rec, base)
            continue
        seq += 1
        if seq <= already:
            st.records += 1
            continue
        if isinstance(rec, ReadError):
            if options.hold_last_error:
                held = (rec, seq)
                continue
            item = mapper.read_error(rec, seq)
        else:
            item = mapper.event(rec, seq)
        if item is not None:
            yield item
    if held is not None:
        yield SourceEnded(index, source, seq - 1, held_back=True)
    else:
        yield SourceEnded(index, source, seq)

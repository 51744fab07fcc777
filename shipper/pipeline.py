"""Read → filter Sysmon → map to ECS: the one path that ``convert`` and ``ship`` share.

Everything a reader yields is counted: Sysmon events by ID, other providers (skipped), unknown
event IDs (shipped anyway), and errors by kind with where they happened. Bad records become
``pipeline_error`` documents unless ``skip_errors`` asks to count and drop them.
"""

from __future__ import annotations

import glob
import hashlib
import multiprocessing as mp
import os
import pickle
import queue
import signal
import threading
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import orjson

from shipper.errors import InputError
from shipper.native import document_time
from shipper.native import threads_started as native_threads_started
from shipper.parent_watch import die_with_parent
from shipper.raw import MappedBatch, ReadError
from shipper.readers.evtx import PREFETCH_AHEAD, drop_prefetched
from shipper.readers.evtx import prefetch as prefetch_evtx
from shipper.readers.registry import open_source
from shipper.sysmon.ecs import error_document, to_ecs_and_id
from shipper.sysmon.events import EVENTS
from shipper.sysmon.psl import warm as warm_public_suffix_list
from shipper.templates import index_suffix

STDIN = "-"
MAX_ERROR_SAMPLES = 50
#: File names inside input folders that are never event logs.
_IGNORED_SUFFIXES = (".md", ".tsv", ".zip", ".gz", ".json.sig", ".sha256")


@dataclass
class Stats:
    """Counts of one run; ``summary`` and ``as_dict`` are what people and scripts read."""

    sources: int = 0
    records: int = 0
    documents: int = 0
    sysmon_by_id: Counter[int] = field(default_factory=Counter)
    other_providers: Counter[str] = field(default_factory=Counter)
    unknown_ids: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    errors_skipped: int = 0
    error_samples: list[str] = field(default_factory=list)

    @property
    def sysmon(self) -> int:
        return sum(self.sysmon_by_id.values())

    def error(self, kind: str, where: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(where)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sources": self.sources,
            "records": self.records,
            "documents": self.documents,
            "sysmon_events": self.sysmon,
            "sysmon_by_id": {str(k): v for k, v in sorted(self.sysmon_by_id.items())},
            "other_providers": dict(sorted(self.other_providers.items())),
            "unknown_event_ids": {str(k): v for k, v in sorted(self.unknown_ids.items())},
            "errors": dict(sorted(self.errors.items())),
            "errors_skipped": self.errors_skipped,
            "error_samples": list(self.error_samples),
        }

    def summary(self) -> str:
        by_id = " ".join(f"{k}={v}" for k, v in sorted(self.sysmon_by_id.items())) or "none"
        parts = [
            f"sources={self.sources}",
            f"records={self.records}",
            f"sysmon={self.sysmon}",
            f"documents={self.documents}",
            f"other_providers={sum(self.other_providers.values())}",
            f"unknown_ids={sum(self.unknown_ids.values())}",
            f"errors={sum(self.errors.values())}",
            f"errors_skipped={self.errors_skipped}",
        ]
        return " ".join(parts) + f" by_id: {by_id}"


class Item:
    """One document ready for the sink. ``seq`` is the 1-based ordinal of the record within its
    source, over everything the reader yielded (other providers included), so ``skip`` can
    resume a source after its last acknowledged record. ``end_offset``/``end_line``: the
    record's resume point (see ``RawEvent``; None when unknown), for ``start``.

    A document the native core mapped arrives as its JSON (``doc_json``); ``doc`` decodes it on
    first use, and ``json()`` hands the bytes on untouched when nobody needed the dict."""

    __slots__ = (
        "_doc",
        "doc_id",
        "doc_json",
        "end_line",
        "end_offset",
        "index_suffix",
        "position",
        "seq",
        "source",
    )

    def __init__(
        self,
        doc: dict[str, Any] | None,
        doc_id: str,
        index_suffix: str,
        source: str,
        seq: int,
        position: str,
        end_offset: int | None = None,
        end_line: int | None = None,
        doc_json: bytes | None = None,
    ) -> None:
        if doc is None and doc_json is None:
            raise ValueError("an Item needs its document or its JSON")
        self._doc = doc
        self.doc_id = doc_id
        self.index_suffix = index_suffix
        self.source = source
        self.seq = seq
        self.position = position
        self.end_offset = end_offset
        self.end_line = end_line
        self.doc_json = doc_json if doc is None else None

    @property
    def doc(self) -> dict[str, Any]:
        doc = self._doc
        if doc is None:
            assert self.doc_json is not None
            doc = self._doc = orjson.loads(self.doc_json)
            self.doc_json = None
        return doc

    @property
    def is_error(self) -> bool:
        """A ``pipeline_error`` document (never one the native core mapped)."""
        if self._doc is None:
            return False
        return (self._doc.get("event") or {}).get("kind") == "pipeline_error"

    def json(self) -> bytes:
        """The document serialised (orjson), without a decode/encode round trip when possible."""
        if self._doc is None:
            assert self.doc_json is not None
            return self.doc_json
        return orjson.dumps(self._doc)

    def __repr__(self) -> str:
        where = f"{self.source!r}, seq={self.seq}, {self.position!r}"
        return f"Item({self.doc_id!r}, {self.index_suffix!r}, {where})"


@dataclass(slots=True)
class ItemRun:
    """Consecutive documents of one source the native core mapped (``iter_runs(runs=True)``
    yields these instead of one Item each): records ``first_seq`` … ``first_seq + len - 1``,
    every one a document (never an error), as JSON with its ``_id``, and for line-based sources
    each record's resume point. The shipper hands a run to the sink in one call."""

    source: str
    first_seq: int
    docs: list[bytes]
    doc_ids: list[str]
    end_offsets: list[int] | None
    end_lines: list[int] | None

    def __len__(self) -> int:
        return len(self.docs)

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.docs) - 1


def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Files, folders (recursively, sorted), globs and ``-`` → a list of sources, in order,
    each once. A name that matches nothing is an error naming it."""
    out: list[str] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        key = path if path == STDIN else os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            out.append(path)

    for item in inputs:
        if item == STDIN:
            add(STDIN)
            continue
        p = Path(item)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    if (
                        name.startswith(".")
                        or name.lower().endswith(_IGNORED_SUFFIXES)
                        or name.startswith("LICENSE")
                    ):
                        continue
                    add(os.path.join(root, name))
        elif p.exists():
            add(str(p))
        else:
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise InputError("no such file, folder or glob match", source=item)
            for m in matches:
                if Path(m).is_dir():
                    for sub in expand_inputs([m]):
                        add(sub)
                else:
                    add(m)
    return out


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


def _error_id(err: ReadError) -> str:
    material = "\x1f".join(("read-error", os.path.basename(err.source), err.position, err.kind, err.message))
    return hashlib.blake2b(material.encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()


#: Documents a worker sends per message, and messages each worker may have waiting: together
#: they bound the memory of a parallel run (workers × in-flight × batch documents).
BATCH_DOCUMENTS = 1000
IN_FLIGHT_BATCHES = 4
#: Sources queued ahead on one worker (the parent consumes sources in order).
SOURCES_AHEAD = 16


def iter_documents(
    paths: Sequence[str],
    fmt: str | None = None,
    evtx_backend: str = "auto",
    host: str | None = None,
    skip_errors: bool = False,
    stats: Stats | None = None,
    skip: Mapping[str, int] | None = None,
    workers: int | None = 1,
    start: Mapping[str, tuple[int, int, int]] | None = None,
) -> Iterator[Item]:
    """:func:`iter_runs` with every document an Item (see there)."""
    items = iter_runs(paths, fmt, evtx_backend, host, skip_errors, stats, skip, workers, start, runs=False)
    return cast(Iterator[Item], items)


def iter_runs(
    paths: Sequence[str],
    fmt: str | None = None,
    evtx_backend: str = "auto",
    host: str | None = None,
    skip_errors: bool = False,
    stats: Stats | None = None,
    skip: Mapping[str, int] | None = None,
    workers: int | None = 1,
    start: Mapping[str, tuple[int, int, int]] | None = None,
    runs: bool = False,
    labels: Mapping[str, str] | None = None,
) -> Iterator[Item | ItemRun]:
    """Stream ECS documents from ``paths`` (already expanded), counting everything in ``stats``.

    ``runs``: documents the native core mapped arrive as ItemRun (one object per run of them)
    instead of one Item each, in one process only (``workers`` 1, or a single source).

    ``start``: per source, ``(byte offset, line number, seq base)`` — read a line-based source
    from a record's ``end_offset``/``end_line`` (a mid-file start of any other form is an
    InputError), numbering its records from ``seq base + 1`` (the seq of that record + 1). The
    records before the offset are neither read nor counted. ``skip`` still applies to the seq
    numbers (a skip at or below the base skips nothing more).

    ``workers`` > 1 reads and maps that many sources at once in worker processes (None: one
    per core, when there are several sources). The documents, ids, order and stats are exactly
    those of ``workers=1``: sources are yielded one after the other, each in record order, and
    memory stays bounded. Standard input, or a single source, is always read here.

    ``labels``: per source, what its error documents call it (a source read through this
    process's ``/proc/self/fd/N``, which is why such a read stays in this process)."""
    st = stats if stats is not None else Stats()
    count = 1 if labels else effective_workers(workers, paths)
    if count <= 1:
        ahead = evtx_backend != "python" and fmt in (None, "evtx") and len(paths) > 1
        try:
            for i, source in enumerate(paths):
                st.sources += 1
                if ahead:  # the next EVTX sources are parsed by the native core meanwhile
                    for nxt in paths[i + 1 : i + PREFETCH_AHEAD]:
                        if nxt != STDIN:
                            prefetch_evtx(nxt)
                yield from _source_items(
                    source,
                    fmt,
                    evtx_backend,
                    host,
                    skip_errors,
                    st,
                    (skip or {}).get(source, 0),
                    None,
                    (start or {}).get(source),
                    runs,
                    (labels or {}).get(source),
                )
        finally:
            if ahead:
                drop_prefetched()
        return
    yield from _parallel(paths, fmt, evtx_backend, host, skip_errors, st, skip or {}, count, start or {})


def effective_workers(workers: int | None, paths: Sequence[str]) -> int:
    """How many worker processes ``iter_documents`` uses for ``paths`` (1: none)."""
    if STDIN in paths or len(paths) < 2:
        return 1
    wanted = (os.cpu_count() or 1) if workers is None or workers <= 0 else workers
    return max(1, min(wanted, len(paths)))


def _source_items(
    source: str,
    fmt: str | None,
    evtx_backend: str,
    host: str | None,
    skip_errors: bool,
    st: Stats,
    already: int,
    evtx_threads: int | None,
    start: tuple[int, int, int] | None = None,
    runs: bool = False,
    label: str | None = None,
) -> Iterator[Item | ItemRun]:
    """The documents of one source, counted in ``st`` (all but ``sources``); ``label``: what
    its error documents call it (see ``open_source``)."""
    last_time: str | None = None
    offset, line, seq = start if start is not None else (0, 1, 0)
    events = open_source(
        source,
        fmt,
        evtx_backend=evtx_backend,  # type: ignore[arg-type]
        host=host,
        evtx_threads=evtx_threads,
        start_offset=offset,
        start_line=line,
        premapped=True,
        name=label,
    )
    for rec in events:
        if isinstance(rec, MappedBatch):  # read by the native core: documents with a time
            runs_of = _counted_runs(rec, source, seq, already, st)
            base, seq = seq, seq + len(rec)
            if not runs_of:
                continue
            last_time = document_time(runs_of[-1].docs[-1])
            if runs:
                yield from runs_of
                continue
            positions = rec.positions()
            for run in runs_of:
                at = run.first_seq - base - 1  # the run's first record in the batch
                nothing: list[int | None] = [None] * len(run)
                ends: list[int | None] = [*run.end_offsets] if run.end_offsets is not None else nothing
                end_lines: list[int | None] = [*run.end_lines] if run.end_lines is not None else nothing
                for k, raw in enumerate(run.docs):
                    yield Item(
                        None,
                        run.doc_ids[k],
                        index_suffix(document_time(raw)) or "unknown",
                        source,
                        run.first_seq + k,
                        positions[at + k],
                        ends[k],
                        end_lines[k],
                        doc_json=raw,
                    )
            continue
        seq += 1
        st.records += 1
        if seq <= already:
            continue
        if isinstance(rec, ReadError):
            where = f"{rec.source} ({rec.position}): {rec.message}"
            st.error(rec.kind, where)
            if skip_errors:
                st.errors_skipped += 1
                continue
            when = last_time or _fallback_time(source)
            doc = error_document(rec.kind, rec.message, rec.source, rec.position, rec.original, when=when)
            st.documents += 1
            yield Item(
                doc,
                _error_id(rec),
                index_suffix(doc.get("@timestamp")) or when[:7].replace("-", "."),
                source,
                seq,
                rec.position,
                rec.end_offset,
                rec.end_line,
            )
            continue
        if not rec.is_sysmon:
            st.other_providers[rec.provider or "(unknown)"] += 1
            continue
        st.sysmon_by_id[rec.event_id] += 1
        if rec.event_id not in EVENTS:
            st.unknown_ids[rec.event_id] += 1
        doc, doc_id = to_ecs_and_id(rec)
        event = doc.get("event") or {}
        if event.get("kind") == "pipeline_error":
            msg = (doc.get("error") or {}).get("message", "mapping error")
            where = f"{rec.source} ({rec.position})" if rec.position else rec.source
            st.error("mapping", f"{where}: {msg}")
            if skip_errors:
                st.errors_skipped += 1
                continue
            _locate(doc, rec.source, where)
        ts = doc.get("@timestamp")
        suffix = index_suffix(ts)
        if suffix is None:
            ts = last_time or _fallback_time(source)
            doc["@timestamp"] = ts
            suffix = index_suffix(ts) or "unknown"
        else:
            last_time = ts
        st.documents += 1
        yield Item(doc, doc_id, suffix, source, seq, rec.position, rec.end_offset, rec.end_line)


# --------------------------------------------------------------------------- parallel mapping
#
# Each worker process takes whole sources from its own task queue, in the order given, and
# sends their documents back on its own bounded result queue. A message is a list of segments
# ``(index, is_json, rows, stats, done, failure)``: a stretch of one source's documents (one
# orjson array; pickle when a document is not plain JSON) with the stats of that stretch; a
# message holds the segments of several small sources, or part of a large one. The parent
# reads the sources strictly in order, each from the worker that has it, so a worker that
# runs ahead simply blocks on its full queue: memory stays bounded (workers × in-flight ×
# batch) and order and counts are those of a serial run. Workers ignore SIGINT; the parent
# stops them when it ends, however it ends.

Segment = tuple[int, bool, bytes, Stats, bool, bytes | None]


def _merge(into: Stats, part: Stats) -> None:
    """Add the counts of ``part`` (a later stretch of the same run) to ``into``."""
    into.records += part.records
    into.documents += part.documents
    into.sysmon_by_id.update(part.sysmon_by_id)
    into.other_providers.update(part.other_providers)
    into.unknown_ids.update(part.unknown_ids)
    into.errors.update(part.errors)
    into.errors_skipped += part.errors_skipped
    room = MAX_ERROR_SAMPLES - len(into.error_samples)
    if room > 0:
        into.error_samples.extend(part.error_samples[:room])


def _take(st: Stats) -> Stats:
    """The counts gathered in ``st`` so far, as a new Stats; ``st`` starts again from zero
    (in place: the generator that fills it keeps the same object)."""
    part = Stats(
        records=st.records,
        documents=st.documents,
        sysmon_by_id=st.sysmon_by_id,
        other_providers=st.other_providers,
        unknown_ids=st.unknown_ids,
        errors=st.errors,
        errors_skipped=st.errors_skipped,
        error_samples=st.error_samples,
    )
    st.records = st.documents = st.errors_skipped = 0
    st.sysmon_by_id, st.other_providers, st.unknown_ids, st.errors = (
        Counter(),
        Counter(),
        Counter(),
        Counter(),
    )
    st.error_samples = []
    return part


Row = tuple[dict[str, Any], str, str, int, str, int | None, int | None]


def _pack(rows: list[Row]) -> tuple[bool, bytes]:
    try:
        return True, orjson.dumps(rows)
    except (TypeError, orjson.JSONEncodeError):
        return False, pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)


def _worker(tasks: Any, results: Any, options: tuple[Any, ...], parent: int) -> None:
    """Worker process: map every source that arrives on ``tasks`` until ``None``."""
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fmt, evtx_backend, host, skip_errors = options
    pending: list[Segment] = []
    size = 0  # documents in ``pending``

    def flush() -> None:
        nonlocal pending, size
        if pending:
            results.put(pending)
            pending, size = [], 0

    def add(index: int, rows: list[Row], st: Stats, done: bool, failure: bytes | None = None) -> None:
        nonlocal size
        pending.append((index, *_pack(rows), _take(st), done, failure))
        size += len(rows)
        if size >= BATCH_DOCUMENTS or failure is not None:
            flush()

    while True:
        if tasks.empty():  # nothing more to do at once: let the parent have what is ready
            flush()
        task = tasks.get()
        if task is None:
            flush()
            return
        index, source, already, start = task
        st = Stats()
        rows: list[Row] = []
        try:
            # one thread for the EVTX parser: the workers already use the cores
            items = _source_items(source, fmt, evtx_backend, host, skip_errors, st, already, 1, start)
            for item in cast(Iterator[Item], items):
                rows.append(
                    (
                        item.doc,
                        item.doc_id,
                        item.index_suffix,
                        item.seq,
                        item.position,
                        item.end_offset,
                        item.end_line,
                    )
                )
                if len(rows) >= BATCH_DOCUMENTS:
                    add(index, rows, st, False)
                    rows = []
        except Exception as exc:  # sent to the parent, which raises it in order
            try:
                blob = pickle.dumps(exc)
            except Exception:
                blob = pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
            add(index, rows, st, True, blob)
            continue
        add(index, rows, st, True)


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


def _parallel(
    paths: Sequence[str],
    fmt: str | None,
    evtx_backend: str,
    host: str | None,
    skip_errors: bool,
    st: Stats,
    skip: Mapping[str, int],
    count: int,
    start: Mapping[str, tuple[int, int, int]],
) -> Iterator[Item]:
    ctx = _context()
    options = (fmt, evtx_backend, host, skip_errors)
    tasks = [ctx.Queue() for _ in range(count)]
    results = [ctx.Queue(maxsize=IN_FLIGHT_BATCHES) for _ in range(count)]
    procs = [
        ctx.Process(
            target=_worker, args=(tasks[w], results[w], options, os.getpid()), daemon=True, name=f"map-{w}"
        )
        for w in range(count)
    ]
    owner: dict[int, int] = {}  # source index → worker
    queued = [0] * count  # sources assigned to each worker and not yet consumed
    following = 0  # next source to assign

    def assign(w: int) -> None:
        nonlocal following
        if following < len(paths) and queued[w] < SOURCES_AHEAD:
            source = paths[following]
            begin = start.get(source)
            tasks[w].put((following, source, skip.get(source, 0), tuple(begin) if begin else None))
            owner[following] = w
            queued[w] += 1
            following += 1

    try:
        for proc in procs:
            proc.start()
        for _ in range(SOURCES_AHEAD):
            for w in range(count):
                assign(w)
        loads = orjson.loads
        stash: list[deque[Segment]] = [deque() for _ in range(count)]
        for index, source in enumerate(paths):
            st.sources += 1
            w = owner[index]
            done = False
            while not done:
                if not stash[w]:
                    stash[w].extend(_receive(results[w], procs[w], source))
                segment_index, is_json, blob, part, done, failure = stash[w].popleft()
                if segment_index != index:  # pragma: no cover - a bug, never a data problem
                    raise RuntimeError(f"worker sent source {segment_index} before {index}")
                rows = loads(blob) if is_json else pickle.loads(blob)
                _merge(st, part)
                for doc, doc_id, suffix, seq, position, end_offset, end_line in rows:
                    yield Item(doc, doc_id, suffix, source, seq, position, end_offset, end_line)
                if failure is not None:
                    raise pickle.loads(failure)
            queued[w] -= 1
            assign(w)
        for q in tasks:
            q.put(None)
        for proc in procs:
            proc.join(timeout=5)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            if proc.pid is not None:
                proc.join(timeout=5)
        for q in results:
            q.cancel_join_thread()
            q.close()
        clean = all(proc.exitcode == 0 for proc in procs)
        for q in tasks:
            if not clean:  # a killed worker may have left tasks unread
                q.cancel_join_thread()
            q.close()
            q.join_thread()


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

"""Read → filter Sysmon → map to ECS: the one path that ``convert`` and ``ship`` share.

:func:`stream` yields, per source in order, ``SourceStarted``, its documents and
``SourceEnded`` (see ``shipper.stream``); ``serial`` reads a source in this process and
``parallel`` reads several in worker processes with the same result.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import nullcontext

from shipper.checkpoint import ResumePoint
from shipper.inputs import STDIN, expand_inputs
from shipper.native import PREFETCH_AHEAD, NativeSession, native_session
from shipper.pipeline.parallel import parallel_events
from shipper.pipeline.serial import source_events
from shipper.readers.evtx import EvtxBackend
from shipper.stats import MAX_ERROR_SAMPLES, Stats
from shipper.stream import Event, Item, ItemRun, ReadOptions, SourceEnded, SourceRead, SourceStarted

__all__ = [
    "MAX_ERROR_SAMPLES",
    "STDIN",
    "Item",
    "ItemRun",
    "SourceEnded",
    "SourceStarted",
    "Stats",
    "effective_workers",
    "expand_inputs",
    "iter_documents",
    "stream",
]


def effective_workers(workers: int | None, paths: Sequence[str]) -> int:
    """How many worker processes a stream of ``paths`` uses (1: none)."""
    if STDIN in paths or len(paths) < 2:
        return 1
    wanted = (os.cpu_count() or 1) if workers is None or workers <= 0 else workers
    return max(1, min(wanted, len(paths)))


def stream(
    reads: Sequence[SourceRead],
    options: ReadOptions,
    stats: Stats | None = None,
    *,
    workers: int | None = 1,
    runs: bool = False,
    native: NativeSession | None = None,
) -> Iterator[Event]:
    """The stream of ``reads``, counting everything in ``stats``.

    ``runs``: documents the native core mapped arrive as ItemRun (one object per run of them)
    instead of one Item each, in one process only (``workers`` 1, or a single source).

    A read with a ``start`` reads a line-based source from that resume point (a mid-file start
    of any other form is an InputError), numbering its records on from the point's seq; the
    records before it are neither read nor counted. Its ``skip`` still applies to the seq
    numbers (a skip at or below the point's seq skips nothing more).

    ``workers`` > 1 reads and maps that many sources at once in worker processes (None: one per
    core, when there are several sources). The documents, ids, order and stats are exactly those
    of ``workers=1``, and memory stays bounded. Standard input, a single source, or a source
    read through a handle (``label`` or ``through``: this process's ``/proc/self/fd/N``) is read
    here."""
    st = stats if stats is not None else Stats()
    paths = [r.path for r in reads]
    count = 1 if any(r.label or r.through for r in reads) else effective_workers(workers, paths)
    if count > 1:
        yield from parallel_events(reads, options, st, count)
        return
    ahead = options.evtx_backend != "python" and options.fmt in (None, "evtx") and len(paths) > 1
    # the run's session (a shipping run's spans its streams), else one for this stream
    with nullcontext(native) if native is not None else native_session() as session:
        for i, read in enumerate(reads):
            st.sources += 1
            if ahead and session is not None:  # the next EVTX sources are parsed meanwhile
                for nxt in paths[i + 1 : i + PREFETCH_AHEAD]:
                    if nxt != STDIN:
                        session.prefetch(nxt)
            yield SourceStarted(i, read.path)
            yield from source_events(i, read, options, st, runs=runs, native=session)


def iter_documents(
    paths: Sequence[str],
    fmt: str | None = None,
    evtx_backend: EvtxBackend = "auto",
    host: str | None = None,
    skip_errors: bool = False,
    stats: Stats | None = None,
    skip: Mapping[str, int] | None = None,
    workers: int | None = 1,
    start: Mapping[str, ResumePoint] | None = None,
) -> Iterator[Item]:
    """The documents of :func:`stream` over ``paths``, one Item each (what ``convert`` writes):
    the source boundaries dropped, ``skip`` and ``start`` given per path."""
    options = ReadOptions(fmt=fmt, evtx_backend=evtx_backend, host=host, skip_errors=skip_errors)
    reads = [SourceRead(p, (skip or {}).get(p, 0), (start or {}).get(p)) for p in paths]
    for event in stream(reads, options, stats, workers=workers):
        if isinstance(event, Item):
            yield event

"""The native core for one stream or shipping run: opening sources with it, and parsing the
next EVTX sources ahead while the current one is read.

Small files are the common case in an archive, and handing one file to a thread and waiting for
it costs more than the file itself: with a few files in flight the reader rarely waits. What
is parsed ahead belongs to the session and is dropped when it closes (the core's workers for
those files stop).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType, TracebackType
from typing import Any

from shipper.native.batch import MappedBatch
from shipper.native.core import native
from shipper.native.evtx import read_evtx_native
from shipper.native.jsonl import read_json_native
from shipper.raw import RawEvent, ReadError
from shipper.readers.evtx import rejected_file
from shipper.readers.registry import Opened
from shipper.stats import Stats

#: EVTX files held parsed ahead at most: the current source's and the next ones.
PREFETCH_AHEAD = 4


class NativeSession:
    """Reads sources with the native core ``core``; see the module doc. Close it (or use it as
    a context manager) when the stream or run ends."""

    def __init__(self, core: ModuleType) -> None:
        self.core = core
        self._ahead: dict[tuple[str, int], Any] = {}  # (path, threads) → its EvtxDocuments

    def read(self, opened: Opened, stats: Stats) -> Iterator[RawEvent | MappedBatch | ReadError] | None:
        """The records of ``opened`` read by the core — EVTX (unless the python backend is
        asked for) and JSON — or None for any other form (its reader reads it). Why the core
        left records to Python is counted in ``stats.native_fallbacks``."""
        if opened.form == "evtx" and opened.evtx_backend != "python" and opened.path is not None:
            fallback = opened.evtx_backend == "auto"
            return self._evtx(str(opened.path), opened.source, opened.evtx_threads, stats, fallback)
        if opened.form == "json":
            return read_json_native(
                self.core,
                opened.stream,
                opened.source,
                stats,
                start_offset=opened.start_offset,
                start_line=opened.start_line,
                codec=opened.codec,
            )
        return None

    def _evtx(
        self, path: str, source: str, threads: int | None, stats: Stats, fallback: bool
    ) -> Iterator[RawEvent | MappedBatch | ReadError]:
        try:
            records = self._ahead.pop((path, threads or 0), None)
            records = records or self.core.EvtxDocuments(path, threads or 0)
        except (RuntimeError, OSError, ValueError) as exc:
            yield from rejected_file(exc, path, source, fallback)
            return
        yield from read_evtx_native(self.core, records, path, source, stats, fallback=fallback)

    def prefetch(self, path: str, threads: int | None = None) -> None:
        """Start parsing the EVTX file at ``path`` now, in the core's own threads, so that its
        read finds records waiting. A no-op for any other file; only the latest
        ``PREFETCH_AHEAD`` are kept (bounded memory: the core buffers a few batches per file,
        then waits)."""
        key = (path, threads or 0)
        if key in self._ahead:
            return
        while len(self._ahead) > PREFETCH_AHEAD:  # an unused one is dropped, and its worker stops
            del self._ahead[next(iter(self._ahead))]
        try:  # the core reads the file header itself and refuses anything that is not EVTX
            self._ahead[key] = self.core.EvtxDocuments(path, threads or 0)
        except (RuntimeError, OSError, ValueError):
            return  # its read will meet the same problem and report it

    def close(self) -> None:
        """Drop every file parsed ahead (their workers stop)."""
        self._ahead.clear()

    def __enter__(self) -> NativeSession:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@contextmanager
def native_session() -> Iterator[NativeSession | None]:
    """A session for a stream or run, closed when it ends; None without the native core."""
    core = native()
    if core is None:
        yield None
        return
    with NativeSession(core) as session:
        yield session

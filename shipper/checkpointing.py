"""What a shipping run knows of each source it sends, and the thread that saves it.

``SourceState`` is a source's acknowledgement state: the watermark of its records the cluster
acknowledged, its record count once read to its end, and the resume point of the last document
at or below the watermark. ``CheckpointWriter`` writes those states as checkpoints from its own
thread (the shipper's thread, which takes the sink's results, must not wait on the disk), a
round at a time, each round made durable by one fsync of the folder. A checkpoint is never
ahead of what the cluster acknowledged.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace

from shipper.checkpoint import Checkpoint, CheckpointStore, ResumePoint, Watermark

SAVE_EVERY = 1.0  # seconds between checkpoint writes of one source while it is being shipped


@dataclass
class SourceState:
    path: str
    checkpoint: Checkpoint
    mark: Watermark
    total: int | None = None  # records in the source, once read to the end
    last_saved: float = 0.0
    saved_acked: int = -1
    saved_done: bool = False
    #: resume point at or below the watermark (None: from the start)
    point: ResumePoint | None = None
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
            self.point = ResumePoint(offsets[k], lines[k], first + k)
            if k < len(offsets) - 1:
                return  # the rest of the run is above the watermark
            ends.popleft()


class CheckpointWriter:
    """Saves the states it is asked to, from a thread of its own; ``close`` saves them all."""

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._dirty: dict[str, SourceState] = {}
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._error: Exception | None = None

    def acked(self, st: SourceState, first: int, last: int, now: float) -> None:
        """Records ``first`` … ``last`` of ``st`` are acknowledged (the sink's results, in order)."""
        st.mark.add(first, last)
        if st.done or now - st.last_saved >= SAVE_EVERY:
            self.want(st)

    def want(self, st: SourceState) -> None:
        """Have the writer thread save ``st``'s checkpoint soon."""
        if not st.persist:
            return
        with self._cv:
            self._dirty[st.path] = st
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="checkpoints", daemon=True)
                self._thread.start()
            self._cv.notify()

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._dirty and not self._stopping:
                    self._cv.wait()
                if not self._dirty:
                    return
                batch, self._dirty = self._dirty, {}
            try:
                for st in batch.values():
                    self.save(st)
                self.store.sync()
            except Exception as exc:  # a full disk (or a bug): the run ends with this error
                if self._error is None:
                    self._error = exc

    def save(self, st: SourceState) -> None:
        """Write ``st``'s checkpoint if it changed (not durably: the caller syncs the folder)."""
        if not st.persist:
            return
        with self._lock:
            acked = st.mark.acked
            done = st.done
            if acked == st.saved_acked and done == st.saved_done:
                return
            st.advance_point(acked)
            cp = replace(st.checkpoint, acked=acked, done=done)
            if st.point is not None:
                cp = replace(cp, offset=st.point.offset, offset_line=st.point.line, offset_seq=st.point.seq)
            self.store.save(cp, sync=False)
            st.saved_acked = acked
            st.saved_done = done
            st.last_saved = time.monotonic()

    def close(self, states: list[SourceState]) -> None:
        """Every checkpoint of ``states`` written and durable (the thread is done first)."""
        with self._cv:
            self._stopping = True
            self._cv.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        for st in states:
            self.save(st)
        self.store.sync()
        if self._error is not None:
            raise self._error

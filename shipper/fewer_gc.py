"""Rarer cyclic garbage collections around work that allocates millions of short-lived
containers: shipping (an acknowledgement tuple per document in flight) and the detectors'
passes (a dict per key of every hit parsed). CPython collects the young generation every 700
net allocations, and now and then a full collection walks everything loaded (with every Sigma
rule compiled, millions of objects); see bench/RESULTS.md."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: net container allocations between young-generation collections (CPython: 700)
GC_YOUNG_THRESHOLD = 50_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] = (700, 10, 10)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """What is loaded when the block starts is frozen out of the collections and the young
    threshold is raised; cycles are still collected. Nested or concurrent blocks share the
    settings of the first one; the last to end restores what was there before."""
    global _depth, _saved
    with _lock:
        _depth += 1
        if _depth == 1:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(max(_saved[0], GC_YOUNG_THRESHOLD), *_saved[1:])
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()

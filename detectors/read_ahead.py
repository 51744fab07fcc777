"""Pages read one ahead on a thread of their own: while this process matches a page, the node
already serves the next (its search and this process's matching then share the machine's cores
instead of taking turns)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar, cast

T = TypeVar("T")

_END = object()
#: seconds between looks at whether the reader was abandoned, while a page waits to be taken
_POLL = 0.1


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def read_ahead(pages: Iterator[T], ahead: int = 1) -> Generator[T, None, None]:
    """``pages`` as they come, with up to ``ahead`` read before they are asked for. An error
    raised by ``pages`` is raised here, in order. Leaving the loop early closes ``pages`` (on its
    thread: a point in time it holds is closed) before this generator ends."""
    box: queue.Queue[object] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in pages:
                if not put(page):
                    return
            put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = box.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield cast(T, item)
    finally:
        stop.set()
        worker.join()

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from detectors.read_ahead import read_ahead


def test_pages_come_in_order_and_all() -> None:
    assert list(read_ahead(iter(range(50)))) == list(range(50))
    assert list(read_ahead(iter([]))) == []


def test_the_next_page_is_read_while_this_one_is_used() -> None:
    asked: list[int] = []

    def pages() -> Iterator[int]:
        for i in range(3):
            asked.append(i)
            yield i

    it = read_ahead(pages(), ahead=1)
    assert next(it) == 0
    deadline = time.monotonic() + 5
    while len(asked) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert asked[:2] == [0, 1]  # page 1 was asked for before the consumer wanted it
    assert list(it) == [1, 2]


def test_an_error_is_raised_in_order() -> None:
    def pages() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("shard failed")

    got: list[int] = []
    with pytest.raises(ValueError, match="shard failed"):
        for page in read_ahead(pages()):
            got.append(page)
    assert got == [1, 2]


def test_leaving_early_closes_the_pages_on_their_thread() -> None:
    closed = threading.Event()

    def pages() -> Iterator[int]:
        try:
            yield from range(1000)
        finally:
            closed.set()  # where iter_pages closes its point in time

    it = read_ahead(pages(), ahead=2)
    assert next(it) == 0
    it.close()
    assert closed.is_set()
    assert not any(t.name == "read-ahead" for t in threading.enumerate())

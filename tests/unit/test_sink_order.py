"""The sink's results come back in the order the documents were added, on the caller's thread,
whatever order the requests complete in; a chunk in flight or failed holds back every later
one (a fake client whose answers the test releases one by one)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import orjson
import pytest

from shipper.sending import BatchResult
from shipper.sink import BulkOptions, BulkSink, ShipError

WAIT = 10.0  # seconds a test waits for a worker before failing


class _Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body


class GatedClient:
    """Holds each bulk request until the test opens the gate of its chunk (named by the first
    ``_id`` in it); ``answers`` picks the item statuses per chunk (201 by default)."""

    def __init__(self, answers: dict[str, list[Any]] | None = None) -> None:
        self.gates: dict[str, threading.Event] = {}
        self.answered: dict[str, threading.Event] = {}
        self.answers = answers or {}
        self.outstanding = 0
        self.most_outstanding = 0
        self._lock = threading.Lock()

    def _gate(self, name: str, table: dict[str, threading.Event]) -> threading.Event:
        with self._lock:
            return table.setdefault(name, threading.Event())

    def release(self, name: str) -> None:
        self._gate(name, self.gates).set()

    def wait_answered(self, name: str) -> None:
        assert self._gate(name, self.answered).wait(WAIT), name

    def bulk(self, *, operations: bytes, **_kw: Any) -> _Response:
        lines = operations.split(b"\n")
        name = orjson.loads(lines[0])["create"]["_id"]
        with self._lock:
            self.outstanding += 1
            self.most_outstanding = max(self.most_outstanding, self.outstanding)
        try:
            assert self._gate(name, self.gates).wait(WAIT), f"gate {name} never opened"
            statuses = self.answers.get(name) or [201] * (len(lines) // 2)
            items = [{"create": s if isinstance(s, dict) else {"status": s}} for s in statuses]
            errors = any(i["create"]["status"] != 201 for i in items)
            return _Response({"errors": errors, "items": items})
        finally:
            with self._lock:
                self.outstanding -= 1
            self._gate(name, self.answered).set()


def _doc(i: int) -> dict[str, Any]:
    return {"@timestamp": "2024-03-05T10:00:00.000Z", "n": i}


class Collect:
    def __init__(self) -> None:
        self.results: list[BatchResult] = []
        self.threads: set[int] = set()

    def __call__(self, result: BatchResult) -> None:
        self.results.append(result)
        self.threads.add(threading.get_ident())

    def ranges(self) -> list[list[tuple[str, int, int]]]:
        return [[tuple(r) for r in res.acked] for res in self.results]  # type: ignore[misc]


def _settled(sink: BulkSink, n: int) -> None:
    """Wait until ``n`` of the chunks not yet delivered are done (their futures complete just
    after the client answers)."""
    deadline = time.monotonic() + WAIT
    while sum(isinstance(t, Future) and t.done() for t in sink._order) < n:
        assert time.monotonic() < deadline
        time.sleep(0.002)


def _sink(client: GatedClient, got: Collect, tmp_path: Path | None = None, **opts: Any) -> BulkSink:
    options = BulkOptions(**{"max_docs": 10, "in_flight": 4, **opts})
    dead = tmp_path / "dead.ndjson" if tmp_path is not None else None
    return BulkSink(client, options=options, on_result=got, dead_letter_path=dead, sleep=lambda _s: None)  # type: ignore[arg-type]


def test_answers_out_of_order_come_back_in_order_on_the_callers_thread() -> None:
    client, got = GatedClient(), Collect()
    sink = _sink(client, got)
    for i in range(1, 41):  # four chunks of ten, all four in flight at once
        sink.add(_doc(i), "p-events-2024.03", f"id-{i}", ("src", i))
    for n, first in enumerate((31, 21, 11), 1):  # the later chunks are answered first
        client.release(f"id-{first}")
        _settled(sink, n)
        sink.maybe_flush()
        assert got.results == []  # chunk 1 is still in flight: nothing after it comes out
    client.release("id-1")
    sink.close()
    assert got.ranges() == [[("src", 1, 10)], [("src", 11, 20)], [("src", 21, 30)], [("src", 31, 40)]]
    assert [r.shipped for r in got.results] == [10] * 4
    assert got.threads == {threading.get_ident()}
    assert client.most_outstanding == 4  # the concurrency is kept


def test_a_failed_chunk_holds_back_every_later_one() -> None:
    refused = {"status": 403, "error": {"type": "security_exception", "reason": "no"}}
    client, got = GatedClient({"id-11": [refused] * 10}), Collect()
    sink = _sink(client, got, in_flight=3)
    for i in range(1, 31):
        sink.add(_doc(i), "p-events-2024.03", f"id-{i}", ("src", i))
    for first in (21, 11, 1):  # chunk 3 is in, then chunk 2 is refused, then chunk 1 is in
        client.release(f"id-{first}")
        client.wait_answered(f"id-{first}")
    with pytest.raises(ShipError, match="refuses writes"):
        sink.close()
    assert got.ranges() == [[("src", 1, 10)]]  # chunk 3 was acknowledged, and never delivered
    assert sink.stats.shipped == 20  # (counted all the same)


def test_adding_stops_at_once_when_a_chunk_failed() -> None:
    client, got = GatedClient({"id-1": [400] * 10}), Collect()  # no dead-letter file: fails
    sink = _sink(client, got)
    for i in range(1, 11):
        sink.add(_doc(i), "p-events-2024.03", f"id-{i}", ("src", i))
    client.release("id-1")
    _settled(sink, 1)
    with pytest.raises(ShipError, match="rejected by the cluster"):
        sink.add(_doc(11), "p-events-2024.03", "id-11", ("src", 11))
    with pytest.raises(ShipError):
        sink.close()
    assert got.results == []


def test_records_without_a_document_wait_for_the_documents_before_them() -> None:
    client, got = GatedClient(), Collect()
    sink = _sink(client, got, max_docs=5)
    for i in range(1, 6):  # a full chunk: sent, held at the gate
        sink.add(_doc(i), "p-events-2024.03", f"id-{i}", ("src", i))
    sink.pass_over("src", 6, 8)  # nothing being filled: a result of its own, after chunk 1
    sink.pass_over("other", 1, 4)  # a source without documents yet
    sink.add(_doc(9), "p-events-2024.03", "id-9", ("src", 9))
    sink.pass_over("src", 10, 10)  # goes with the chunk being filled
    sink.maybe_flush()
    assert got.results == []
    client.release("id-1")
    _settled(sink, 1)
    sink.maybe_flush()
    assert got.ranges() == [[("src", 1, 5)], [("src", 6, 8)], [("other", 1, 4)]]
    assert [r.requested for r in got.results] == [True, False, False]
    client.release("id-9")
    sink.close()
    assert got.ranges()[3:] == [[("src", 9, 10)]]


def test_without_anything_in_flight_passed_records_are_done_at_once() -> None:
    client, got = GatedClient(), Collect()
    sink = _sink(client, got)
    sink.pass_over("src", 1, 3)
    assert got.ranges() == [[("src", 1, 3)]]
    sink.close()


def test_duplicates_dead_letters_and_retries_all_end_in_one_result(tmp_path: Path) -> None:
    mapping = {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "bad"}}
    answers = {"id-1": [201, 409, mapping, 429], "id-4": [201]}  # the retry of the 429 goes alone
    client, got = GatedClient(answers), Collect()
    sink = _sink(client, got, tmp_path, max_docs=4)
    for i in range(1, 5):
        sink.add(_doc(i), "p-events-2024.03", f"id-{i}", ("src", i))
    client.release("id-1")
    client.wait_answered("id-1")
    sink.maybe_flush()
    assert got.results == []  # the 429 is not in yet
    client.release("id-4")
    sink.close()
    assert len(got.results) == 1
    result = got.results[0]
    assert got.ranges() == [[("src", 1, 4)]]  # the dead letter counts as done
    assert (result.shipped, result.duplicates, result.dead_lettered) == (2, 1, 1)
    assert (sink.stats.shipped, sink.stats.duplicates, sink.stats.dead_lettered) == (2, 1, 1)
    letters = [orjson.loads(line) for line in (tmp_path / "dead.ndjson").read_bytes().splitlines()]
    assert [(d["_id"], d["seq"], d["error"]["type"]) for d in letters] == [
        ("id-3", 3, "mapper_parsing_exception")
    ]

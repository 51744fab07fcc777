"""BulkSink batching: requests bounded by bytes and by count (a recording fake client; the sink
against a real node is covered by the integration tests)."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest

from shipper.sink import BatchResult, BulkOptions, BulkSink


class _Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body


class RecordingClient:
    """Answers every bulk request with 201 per item and keeps every body it was sent."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()

    def bulk(self, *, operations: bytes, **_kw: Any) -> _Response:
        assert isinstance(operations, bytes)
        with self._lock:
            self.bodies.append(operations)
        n = operations.count(b"\n") // 2
        return _Response({"errors": False, "items": [{"create": {"status": 201}}] * n})


def _docs(n: int, pad: int = 100) -> list[dict[str, Any]]:
    return [{"@timestamp": "2024-03-05T10:00:00.000Z", "n": i, "pad": "x" * pad} for i in range(n)]


def _ship(docs: list[dict[str, Any]], opts: BulkOptions) -> tuple[RecordingClient, BulkSink, list[Any]]:
    client = RecordingClient()
    acked: list[Any] = []
    lock = threading.Lock()

    def on_result(result: BatchResult) -> None:
        with lock:
            acked.extend(result.acked)

    sink = BulkSink(client, options=opts, on_result=on_result)  # type: ignore[arg-type]
    with sink:
        for i, doc in enumerate(docs, 1):
            sink.add(doc, "p-events-2024.03", f"id-{i}", ("src", i))
    return client, sink, acked


def _items(body: bytes) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    lines = body.split(b"\n")
    assert lines[-1] == b""  # NDJSON ends with a newline
    lines = lines[:-1]
    assert len(lines) % 2 == 0
    return [(orjson.loads(lines[i]), orjson.loads(lines[i + 1])) for i in range(0, len(lines), 2)]


def _sent_in_order(client: RecordingClient) -> list[int]:
    # in_flight=1 keeps the request order deterministic
    return [doc["n"] for body in client.bodies for _, doc in _items(body)]


def test_max_bytes_splits_a_batch_and_bounds_every_body() -> None:
    docs = _docs(50)
    one = len(orjson.dumps({"create": {"_index": "p-events-2024.03", "_id": "id-10"}})) + len(
        orjson.dumps(docs[10] | {"event": {"ingested": "2024-03-05T10:00:00.000Z"}})
    )
    limit = 4 * one + 20  # room for four documents, not five
    client, sink, acked = _ship(docs, BulkOptions(max_bytes=limit, max_docs=1000, in_flight=1))
    assert len(client.bodies) > 1
    assert all(len(body) <= limit for body in client.bodies)
    # the bound is used, not undercut: all but the last request hold four documents
    sizes = [len(_items(b)) for b in client.bodies]
    assert sizes[:-1] == [4] * (len(sizes) - 1)
    assert sum(sizes) == 50
    assert _sent_in_order(client) == list(range(50))
    assert sink.stats.shipped == 50
    assert sink.stats.requests == len(client.bodies)
    assert sink.stats.bytes_sent == sum(len(b) for b in client.bodies)
    assert sorted(seq for _, first, last in acked for seq in range(first, last + 1)) == list(range(1, 51))


def test_every_action_is_create_with_its_index_and_id() -> None:
    client, _, _ = _ship(_docs(7), BulkOptions(max_bytes=600, in_flight=1))
    actions = [a for body in client.bodies for a, _ in _items(body)]
    assert actions == [{"create": {"_index": "p-events-2024.03", "_id": f"id-{i}"}} for i in range(1, 8)]
    # the sink stamps event.ingested on every document
    assert all("ingested" in d["event"] for body in client.bodies for _, d in _items(body))


def test_a_document_larger_than_the_bound_goes_alone() -> None:
    docs = [*_docs(3, pad=50), {"@timestamp": "2024-03-05T10:00:00.000Z", "n": 3, "pad": "y" * 5000}]
    docs += _docs(3, pad=50)
    for i, d in enumerate(docs):
        d["n"] = i
    limit = 1000
    client, sink, _ = _ship(docs, BulkOptions(max_bytes=limit, in_flight=1))
    over = [b for b in client.bodies if len(b) > limit]
    assert len(over) == 1
    assert [d["n"] for _, d in _items(over[0])] == [3]  # the big one, alone
    assert all(len(b) <= limit for b in client.bodies if b is not over[0])
    assert _sent_in_order(client) == list(range(7))
    assert sink.stats.shipped == 7


def test_max_docs_bounds_the_count_per_request() -> None:
    client, sink, _ = _ship(_docs(10), BulkOptions(max_bytes=10 * 1024 * 1024, max_docs=3, in_flight=1))
    assert [len(_items(b)) for b in client.bodies] == [3, 3, 3, 1]
    assert _sent_in_order(client) == list(range(10))
    assert sink.stats.requests == 4


def test_both_bounds_whichever_comes_first() -> None:
    docs = _docs(20)
    one = len(orjson.dumps({"create": {"_index": "p-events-2024.03", "_id": "id-10"}})) + len(
        orjson.dumps(docs[10] | {"event": {"ingested": "2024-03-05T10:00:00.000Z"}})
    )
    # bytes allow five documents, count allows three: count wins
    client, _, _ = _ship(docs, BulkOptions(max_bytes=5 * one + 30, max_docs=3, in_flight=1))
    assert [len(_items(b)) for b in client.bodies] == [3] * 6 + [2]
    # count allows ten, bytes allow two: bytes win
    client, _, _ = _ship(_docs(20), BulkOptions(max_bytes=2 * one + 30, max_docs=10, in_flight=1))
    assert [len(_items(b)) for b in client.bodies] == [2] * 10
    assert all(len(b) <= 2 * one + 30 for b in client.bodies)


def test_bounds_hold_with_several_requests_in_flight() -> None:
    client, sink, acked = _ship(_docs(200), BulkOptions(max_bytes=2000, max_docs=7, in_flight=3))
    assert all(len(b) <= 2000 for b in client.bodies)
    assert all(len(_items(b)) <= 7 for b in client.bodies)
    assert sorted(_sent_in_order(client)) == list(range(200))  # each once
    assert sink.stats.shipped == 200
    assert sorted(seq for _, first, last in acked for seq in range(first, last + 1)) == list(range(1, 201))


def _native_doc(i: int, month: str = "2024-03") -> bytes:
    return orjson.dumps(
        {
            "@timestamp": f"{month}-05T10:00:00.{i % 1000:03d}Z",
            "event": {"kind": "event"},
            "n": i,
            "pad": "é" * 90,
        }
    )


def _run_bodies(native: bool, docs: list[bytes], opts: BulkOptions) -> tuple[list[Any], list[Any]]:
    client = RecordingClient()
    acked: list[Any] = []
    sink = BulkSink(client, options=opts, on_result=lambda r: acked.extend(r.acked))  # type: ignore[arg-type]
    if not native:
        sink._core = None
    with sink:
        half = len(docs) // 2
        sink.add_json_run(docs[:half], [f"id-{i}" for i in range(half)], "p-events-", "src", 1)
        sink.add_json_run(
            docs[half:], [f'id-"{i}' for i in range(half, len(docs))], "p-events-", "src", half + 1
        )
    items = [pair for body in client.bodies for pair in _items(body)]
    return items, sorted(acked)


def _bodies_of(native: bool, docs: list[bytes], opts: BulkOptions) -> list[list[str]]:
    """Per request, the _ids it carried."""
    client = RecordingClient()
    sink = BulkSink(client, options=opts)  # type: ignore[arg-type]
    if not native:
        sink._core = None
    with sink:
        sink.add_json_run(docs, [f"id-{i}" for i in range(len(docs))], "p-events-", "src", 1)
    return [[a["create"]["_id"] for a, _ in _items(body)] for body in client.bodies]


def test_native_runs_make_the_bodies_the_python_way_makes() -> None:
    """The core's bulk lines for a run (``bulk_lines``) are the sink's own, cut at the same
    bounds: indices by month, ids escaped, ``event.ingested`` first in ``event``."""
    pytest.importorskip("sysmon_native")
    docs = [_native_doc(i, "2024-03" if i % 3 else "2023-12") for i in range(250)]
    docs[100] = docs[100].replace(b'"n":100', b'"n":100,"big":"' + b"x" * 12_000 + b'"')  # alone
    opts = BulkOptions(max_docs=40, max_bytes=9_000, in_flight=1)
    got, got_acks = _run_bodies(True, docs, opts)
    want, want_acks = _run_bodies(False, docs, opts)
    assert len(got) == 250 and got_acks == want_acks
    assert _bodies_of(True, docs, opts) == _bodies_of(False, docs, opts)  # the same cuts
    assert sorted(seq for _, a, b in got_acks for seq in range(a, b + 1)) == list(range(1, 251))
    for (ga, gd), (wa, wd) in zip(got, want, strict=True):
        assert ga == wa
        assert gd.pop("event")["ingested"].endswith("Z")
        assert wd.pop("event")["ingested"].endswith("Z")
        assert gd == wd
    assert {a["create"]["_index"] for a, _ in got} == {"p-events-2024.03", "p-events-2023.12"}
    assert got[-1][0]["create"]["_id"] == 'id-"249'
    # a run with a document of another shape is taken the careful way, whole
    odd = [*docs[:5], orjson.dumps({"event": {"kind": "event"}, "@timestamp": "2024-03-05T10:00:00.000Z"})]
    got, _ = _run_bodies(True, odd, opts)
    want, _ = _run_bodies(False, odd, opts)
    assert [a for a, _ in got] == [a for a, _ in want] and len(got) == 6

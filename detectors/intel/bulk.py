"""The NDJSON bulk writer of the intel indices, and deletes by known ids."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any, cast

import orjson
from elasticsearch import Elasticsearch, helpers

BULK_BYTES = 8 << 20
BULK_DOCS = 20_000


class Bulk:
    """NDJSON bulk writer (orjson), flushing by bytes and by count; retries 429s."""

    def __init__(self, es: Elasticsearch, *, max_bytes: int = BULK_BYTES, max_docs: int = BULK_DOCS) -> None:
        self.es = es
        self.max_bytes = max_bytes
        self.max_docs = max_docs
        self.pending: list[tuple[bytes, bytes | None]] = []
        self.size = 0
        self.errors: list[tuple[str, str]] = []  # (_id, reason)
        self.written = 0

    def index(self, index: str, doc_id: str, doc: dict[str, Any]) -> None:
        self._add(orjson.dumps({"index": {"_index": index, "_id": doc_id}}), orjson.dumps(doc))

    def delete(self, index: str, doc_id: str) -> None:
        self._add(orjson.dumps({"delete": {"_index": index, "_id": doc_id}}), None)

    def _add(self, action: bytes, source: bytes | None) -> None:
        self.pending.append((action, source))
        self.size += len(action) + (len(source) if source else 0) + 2
        if self.size >= self.max_bytes or len(self.pending) >= self.max_docs:
            self.flush()

    def flush(self) -> None:
        batch, self.pending, self.size = self.pending, [], 0
        for attempt in range(4):
            if not batch:
                return
            body = b"".join(a + b"\n" + (s + b"\n" if s is not None else b"") for a, s in batch)
            resp = self.es.bulk(operations=cast(Any, body), filter_path="errors,items.*.error,items.*.status")
            if not resp.get("errors"):
                self.written += len(batch)
                return
            retry: list[tuple[bytes, bytes | None]] = []
            for (action, source), item in zip(batch, resp["items"], strict=True):
                result = next(iter(item.values()))
                status = int(result.get("status", 200))
                if status == 429 and attempt < 3:
                    retry.append((action, source))
                elif "error" in result and not (status == 404 and source is None):
                    op = orjson.loads(action)
                    doc_id = str(next(iter(op.values())).get("_id"))
                    err = result["error"]
                    self.errors.append((doc_id, f"{err.get('type')}: {err.get('reason')}"))
                else:
                    self.written += 1
            batch = retry
            if batch:
                time.sleep(0.5 * 2**attempt)


def delete_ids(es: Elasticsearch, index: str, ids: Iterable[str]) -> int:
    bulk = Bulk(es)
    count = 0
    for doc_id in ids:
        bulk.delete(index, doc_id)
        count += 1
    bulk.flush()
    return count


def scan_ids(es: Elasticsearch, index: str, query: dict[str, Any]) -> Iterator[str]:
    for hit in helpers.scan(
        es.options(ignore_status=404), index=index, query={"query": query, "_source": False}, size=5_000
    ):
        yield str(hit["_id"])

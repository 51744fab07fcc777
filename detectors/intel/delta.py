"""What a load changed: for an intel feed the values it added (the new generation's values less
the previous generation's), for an allowlist the values it removed, per type.

They are written as lookup chunks of their own (``<feed>:<generation id>:<role>:<type>:<n>``,
``role`` ``added`` or ``removed``, in ``<prefix>-intel-lookup``) before the manifest flip, and
the flip lists them under ``retro_pending`` in the same write, so a load that went live always
has its retro-hunt queued (:mod:`detectors.retro` hunts them and then deletes them). Values an
intel feed removed are in no such list (a removal never raises an alert), nor are entries an
allowlist added (they can only suppress alerts).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

from .bulk import Bulk

_MGET_CHUNKS = 4  # chunk documents per mget (up to 50,000 values each)


@dataclass(frozen=True, slots=True)
class Added:
    """The added values' chunk ids and counts, by indicator type."""

    chunks: dict[str, list[str]]
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def chunk_ids(self) -> list[str]:
        return [c for ids in self.chunks.values() for c in ids]

    def entry(
        self, role: str, generation: int, generation_id: str, at: str, window: float | None
    ) -> dict[str, Any] | None:
        """The manifest's ``retro_pending`` entry for these chunks (None when empty)."""
        if not self.total:
            return None
        return {
            "role": role,
            "generation": generation,
            "generation_id": generation_id,
            "listed_at": at,
            "chunks": self.chunks,
            "counts": self.counts,
            "window_seconds": None if window is None else int(window),
        }


def delta_chunk_id(feed: str, generation_id: str, role: str, type_: str, number: int) -> str:
    return f"{feed}:{generation_id}:{role}:{type_}:{number}"


def chunk_values(es: Elasticsearch, index: str, ids: Sequence[str]) -> Iterator[str]:
    """Every value of the given lookup chunks, a few chunks per request."""
    for start in range(0, len(ids), _MGET_CHUNKS):
        resp = es.mget(index=index, ids=list(ids[start : start + _MGET_CHUNKS]), source_includes=["values"])
        for doc in resp["docs"]:
            yield from (doc.get("_source") or {}).get("values", [])


def write_added(
    es: Elasticsearch,
    bulk: Bulk,
    *,
    index: str,
    feed: str,
    generation: int,
    generation_id: str,
    old: dict[str, list[str]],
    new: dict[str, list[str]],
    chunk_size: int,
    role: str = "added",
    kind: str = "intel",
) -> Added:
    """Write the values of chunks ``new`` that chunks ``old`` lack, type by type (one type's
    old values in memory at a time), as ``role`` chunks through ``bulk`` (flushed). For the
    values a load removed, pass the generations the other way round."""
    chunks: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for type_ in sorted(new):
        before = set(chunk_values(es, index, old.get(type_, [])))
        batch: list[str] = []
        for value in chunk_values(es, index, new[type_]):
            if value in before:
                continue
            batch.append(value)
            counts[type_] = counts.get(type_, 0) + 1
            if len(batch) >= chunk_size:
                _write(bulk, index, (feed, kind, role), generation, generation_id, type_, batch, chunks)
                batch = []
        if batch:
            _write(bulk, index, (feed, kind, role), generation, generation_id, type_, batch, chunks)
    bulk.flush()
    return Added(chunks, counts)


def _write(
    bulk: Bulk,
    index: str,
    what: tuple[str, str, str],  # feed, kind, role
    generation: int,
    generation_id: str,
    type_: str,
    values: list[str],
    chunks: dict[str, list[str]],
) -> None:
    feed, kind, role = what
    ids = chunks.setdefault(type_, [])
    cid = delta_chunk_id(feed, generation_id, role, type_, len(ids))
    doc: dict[str, Any] = {
        "feed": feed,
        "kind": kind,
        "role": role,
        "type": type_,
        "generation": generation,
        "generation_id": generation_id,
        "chunk": len(ids),
        "count": len(values),
        "values": values,
    }
    bulk.index(index, cid, doc)
    ids.append(cid)

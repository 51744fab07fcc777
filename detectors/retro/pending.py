"""The retro-hunt queue and its progress.

The queue is in each feed's manifest (``retro_pending``, written by the load's flip: see
:mod:`detectors.intel.delta`): one entry per load that added indicators. Progress is in
``<prefix>-state``, one document per entry (``hunt:<feed>:<generation id>``): the units done
(rule × events index), the counts, the status. When every unit is done the entry leaves the
manifest (read-modify-write) and its added-indicator chunks are deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from detectors.intel.bulk import delete_ids
from detectors.intel.indices import feeds_index, lookup_index
from detectors.intel.manifest import IntelLoadError, read_state, write_state
from detectors.query import iso
from detectors.state import parse_time, state_index

HUNT_KIND = "hunt"


@dataclass(frozen=True, slots=True)
class Pending:
    """One load's change, waiting to be hunted: the indicators an intel feed added (``role``
    ``added``) or the entries an allowlist removed (``removed``)."""

    feed: str
    generation: int
    generation_id: str
    listed_at: datetime
    chunks: dict[str, list[str]]
    counts: dict[str, int]
    window: timedelta | None = None  # how far before ``listed_at`` events are hunted
    role: str = "added"

    @property
    def id(self) -> str:
        return f"hunt:{self.feed}:{self.generation_id}"

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def chunk_ids(self) -> list[str]:
        return [c for ids in self.chunks.values() for c in ids]

    @property
    def since(self) -> datetime | None:
        """The earliest ``@timestamp`` hunted (None: every retained event)."""
        return None if self.window is None else self.listed_at - self.window

    @classmethod
    def from_doc(cls, feed: str, d: dict[str, Any]) -> Pending:
        listed = parse_time(str(d["listed_at"]))
        assert listed is not None
        seconds = d.get("window_seconds")
        return cls(
            feed=feed,
            generation=int(d["generation"]),
            generation_id=str(d["generation_id"]),
            listed_at=listed,
            chunks={str(k): [str(c) for c in v] for k, v in (d.get("chunks") or {}).items()},
            counts={str(k): int(v) for k, v in (d.get("counts") or {}).items()},
            window=None if seconds is None else timedelta(seconds=int(seconds)),
            role=str(d.get("role") or "added"),
        )


def pending_hunts(es: Elasticsearch, prefix: str, feeds: list[str] | None = None) -> list[Pending]:
    """Every queued hunt, oldest load first (of the given feeds only, when given)."""
    resp = es.options(ignore_status=404).search(
        index=feeds_index(prefix),
        size=10_000,
        query={"match_all": {}},
        source_includes=["feed", "retro_pending"],
    )
    out: list[Pending] = []
    for hit in resp.get("hits", {}).get("hits", []):
        src = hit["_source"]
        if feeds is not None and src.get("feed") not in feeds:
            continue
        out += [Pending.from_doc(str(src["feed"]), d) for d in src.get("retro_pending") or []]
    return sorted(out, key=lambda p: (p.listed_at, p.feed))


@dataclass(slots=True)
class Progress:
    """A hunt's progress document."""

    units_done: list[str] = field(default_factory=list)
    hits: int = 0
    alerts: int = 0
    duplicates: int = 0
    unlisted: int = 0
    status: str = "running"
    started: str | None = None

    def to_doc(self, p: Pending, now: datetime) -> dict[str, Any]:
        return {
            "kind": HUNT_KIND,
            "rule_id": f"retro:{p.feed}",
            "feed": p.feed,
            "generation": p.generation,
            "generation_id": p.generation_id,
            "listed_at": iso(p.listed_at),
            "indicators": p.total,
            "units_done": self.units_done,
            "hits": self.hits,
            "alerts": self.alerts,
            "duplicates": self.duplicates,
            "unlisted": self.unlisted,
            "status": self.status,
            "started": self.started,
            "last_run": iso(now),
        }


def read_progress(es: Elasticsearch, prefix: str, p: Pending) -> Progress:
    try:
        src = es.get(index=state_index(prefix), id=p.id)["_source"]
    except NotFoundError:
        return Progress()
    return Progress(
        units_done=list(src.get("units_done") or []),
        hits=int(src.get("hits") or 0),
        alerts=int(src.get("alerts") or 0),
        duplicates=int(src.get("duplicates") or 0),
        unlisted=int(src.get("unlisted") or 0),
        status=str(src.get("status") or "running"),
        started=src.get("started"),
    )


def save_progress(es: Elasticsearch, prefix: str, p: Pending, progress: Progress, now: datetime) -> None:
    """Written by the hunt's lease holder only (so no concurrency token is needed)."""
    es.index(index=state_index(prefix), id=p.id, document=progress.to_doc(p, now), refresh=True)


def finish(es: Elasticsearch, prefix: str, p: Pending) -> None:
    """Take the entry off the feed's queue (read-modify-write: a load may flip meanwhile), then
    delete its added-indicator chunks. A feed removed meanwhile took its chunks with it."""
    for _attempt in range(5):
        state = read_state(es, p.feed, prefix=prefix)
        if state is None:
            return
        doc = dict(state.doc)
        doc["retro_pending"] = [
            d for d in doc.get("retro_pending") or [] if d.get("generation_id") != p.generation_id
        ]
        try:
            write_state(es, prefix, p.feed, doc, state)
            break
        except ConflictError:
            continue
    else:
        raise IntelLoadError(f"feed {p.feed}: the manifest kept changing under us", source=p.feed)
    delete_ids(es, lookup_index(prefix), p.chunk_ids)

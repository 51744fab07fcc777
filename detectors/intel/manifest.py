"""A feed's manifest and state document in ``<prefix>-intel-feeds``: read, written with
``if_seq_no``/``if_primary_term`` (read-modify-write, no scripts), failures recorded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from shipper.errors import SysmonError

from .indices import feeds_index


class IntelLoadError(SysmonError):
    """A feed could not be loaded into Elasticsearch."""


def utc_now() -> datetime:
    return datetime.now(tz=UTC)


def iso_ms(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class FeedState:
    """A feed's manifest document with the concurrency tokens it was read with."""

    doc: dict[str, Any]
    seq_no: int
    primary_term: int


def read_state(es: Elasticsearch, feed: str, *, prefix: str = "sysmon") -> FeedState | None:
    try:
        resp = es.get(index=feeds_index(prefix), id=feed)
    except NotFoundError:
        return None
    return FeedState(dict(resp["_source"]), int(resp["_seq_no"]), int(resp["_primary_term"]))


def list_states(es: Elasticsearch, *, prefix: str = "sysmon") -> list[dict[str, Any]]:
    """Every feed's manifest/state document, sorted by name."""
    resp = es.options(ignore_status=404).search(
        index=feeds_index(prefix), size=10_000, query={"match_all": {}}, sort=[{"feed": "asc"}]
    )
    return [dict(h["_source"]) for h in resp.get("hits", {}).get("hits", [])]


def write_state(
    es: Elasticsearch, prefix: str, feed: str, doc: dict[str, Any], old: FeedState | None
) -> None:
    """Write the manifest; raises ConflictError if it changed since ``old`` was read."""
    if old is None:
        es.create(index=feeds_index(prefix), id=feed, document=doc, refresh=True)
    else:
        es.index(
            index=feeds_index(prefix),
            id=feed,
            document=doc,
            if_seq_no=old.seq_no,
            if_primary_term=old.primary_term,
            refresh=True,
        )


def update_state(
    es: Elasticsearch, prefix: str, feed: str, change: Callable[[dict[str, Any]], None], kind: str
) -> None:
    """Read-modify-write of the manifest (no scripts on the node), retried on conflicts."""
    for _attempt in range(5):
        old = read_state(es, feed, prefix=prefix)
        doc = dict(old.doc) if old else {"feed": feed, "kind": kind, "generation": 0, "chunks": {}}
        change(doc)
        try:
            write_state(es, prefix, feed, doc, old)
            return
        except ConflictError:
            continue
    raise IntelLoadError(f"feed {feed}: the manifest kept changing under us", source=feed)


def record_failure(
    es: Elasticsearch,
    feed: str,
    kind: str,
    error: str,
    *,
    prefix: str = "sysmon",
    source: dict[str, Any] | None = None,
    attempted: int | None = None,
) -> None:
    """Note a failed attempt in the feed's state; its current generation stays as it is.
    ``attempted``: the generation number the failed load wrote with (never reused)."""
    now = iso_ms(utc_now())

    def change(doc: dict[str, Any]) -> None:
        doc.update(status="failed", last_attempt=now, last_error=error)
        if attempted is not None:
            doc["attempted_generation"] = max(attempted, int(doc.get("attempted_generation") or 0))
        if source:
            doc["source"] = {**doc.get("source", {}), **source}

    update_state(es, prefix, feed, change, kind)

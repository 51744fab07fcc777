"""Feeds into the intel indices: fetch, parse and load one (each load is a new generation,
swapped in atomically: :mod:`detectors.intel.generation`), refresh the due ones, remove one."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from shipper.errors import SysmonError
from shipper.redact import mask_text

from .bulk import delete_ids, scan_ids
from .config import FeedConfig, FeedKind
from .generation import MAX_ISSUES_KEPT, LoadResult, LoadStatus, Progress, load_items, safe_record
from .guard import DEFAULT_MIN_RATIO, CoverageGuard
from .indices import DEFAULT_CHUNK_SIZE, feeds_index, indicators_index, lookup_index
from .manifest import (
    FeedState,
    IntelLoadError,
    iso_ms,
    list_states,
    parse_iso,
    read_state,
    record_failure,
    update_state,
    utc_now,
)
from .model import IndicatorType
from .sources import FeedCache, FetchResult, fetch, read_feed
from .sweep import DEFAULT_GRACE

log = logging.getLogger(__name__)


def feed_from_location(
    location: str,
    *,
    name: str | None = None,
    format: str = "auto",
    kind: FeedKind = "intel",
    types: tuple[IndicatorType, ...] = (),
    confidence: int | None = None,
    retries: int = 3,
    timeout: float = 30.0,
    min_ratio: float | None = None,
    retro_window: float | None = None,
) -> FeedConfig:
    """A one-off feed configuration for a file or URL (``name`` defaults to the file name stem)."""
    if name is None:
        stem = Path(location.split("?", 1)[0].rstrip("/")).name.split(".", 1)[0]
        name = stem or "feed"
    return FeedConfig(
        name=name,
        location=location,
        format=format,
        types=types,
        confidence=confidence,
        kind=kind,
        retries=retries,
        timeout=timeout,
        min_ratio=DEFAULT_MIN_RATIO if min_ratio is None else min_ratio,
        retro_window=None if retro_window is None else timedelta(seconds=retro_window),
    )


def default_cache_dir() -> Path:
    env = os.environ.get("SYSMON_INTEL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sysmon-detect" / "intel"


def load_feed(
    es: Elasticsearch,
    feed: FeedConfig,
    *,
    prefix: str = "sysmon",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    cache_dir: str | os.PathLike[str] | None = None,
    grace: float = DEFAULT_GRACE,
    force: bool = False,
    progress: Progress | None = None,
    fetch_kwargs: dict[str, Any] | None = None,
) -> LoadResult:
    """Fetch, parse and load one feed. Never raises for a problem of the feed (or the cluster):
    the result says ``failed`` with the error, which is also recorded in the feed's state, and
    the feed's previous generation stays in place.

    A ``304 Not Modified`` (the cached body is current) re-indexes nothing when the feed already
    has a generation in Elasticsearch (unless ``force``).
    """
    started = time.monotonic()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    result = LoadResult(feed=feed.name, kind=feed.kind, status="failed")
    try:
        fetched = fetch(feed, cache, **(fetch_kwargs or {}))
        source = _source_info(feed, fetched, cache)
        if fetched.status == "failed":
            result.error = fetched.error or "fetch failed"
            record_failure(es, feed.name, feed.kind, result.error, prefix=prefix, source=source)
        elif fetched.status == "not_modified" and not force and _has_generation(es, feed.name, prefix):
            now = iso_ms(utc_now())

            def change(doc: dict[str, Any]) -> None:
                doc.update(status="not_modified", last_attempt=now, last_error=None)
                doc["source"] = {**doc.get("source", {}), **source}

            update_state(es, prefix, feed.name, change, feed.kind)
            state = read_state(es, feed.name, prefix=prefix)
            result.status = "not_modified"
            if state:
                result.generation = state.doc.get("generation")
                result.counts = dict(state.doc.get("counts", {}))
        else:
            result = load_items(
                es,
                read_feed(feed, fetched, deadline_at=started + feed.deadline),
                name=feed.name,
                kind=feed.kind,
                prefix=prefix,
                chunk_size=chunk_size,
                grace=grace,
                source=source,
                refresh_seconds=feed.refresh.total_seconds(),
                progress=progress,
                guard=CoverageGuard(min_ratio=feed.min_ratio),
                force=force,
                retro_window=None if feed.retro_window is None else feed.retro_window.total_seconds(),
            )
    except Exception as exc:  # a feed's trouble never stops the caller's other feeds
        if isinstance(exc, SysmonError):
            log.error("intel feed %s: load failed: %s", feed.name, mask_text(str(exc)))
        else:
            log.exception("intel feed %s: load failed", feed.name)
        result.status = "failed"
        error = str(exc) if isinstance(exc, SysmonError) else f"{type(exc).__name__}: {exc}"
        result.error = mask_text(error)
        safe_record(es, feed.name, feed.kind, result.error, prefix)
    result.duration = time.monotonic() - started
    return result


def _has_generation(es: Elasticsearch, feed: str, prefix: str) -> bool:
    state = read_state(es, feed, prefix=prefix)
    return bool(state and state.doc.get("generation_id"))


def _source_info(feed: FeedConfig, fetched: FetchResult, cache: Path) -> dict[str, Any]:
    info: dict[str, Any] = {
        "location": feed.display_location,
        "format": feed.format,
        "fetch_status": fetched.status,
        "http_status": fetched.http_status,
        "fetched_at": fetched.fetched_at,
    }
    if feed.is_remote:
        meta = FeedCache(cache).read_meta(feed.name)
        if meta is not None:
            info.update(etag=meta.etag, last_modified=meta.last_modified, sha256=meta.sha256, size=meta.size)
    return info


def is_due(
    es: Elasticsearch, feed: FeedConfig, *, prefix: str = "sysmon", now: datetime | None = None
) -> bool:
    """Whether ``feed.refresh`` has passed since its last attempt recorded in Elasticsearch."""
    state = read_state(es, feed.name, prefix=prefix)
    last = state.doc.get("last_attempt") if state else None
    if not last:
        return True
    return (now or utc_now()) - parse_iso(str(last)) >= feed.refresh


def refresh_feeds(
    es: Elasticsearch,
    feeds: Iterable[FeedConfig],
    *,
    prefix: str = "sysmon",
    cache_dir: str | os.PathLike[str] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    force: bool = False,
    grace: float = DEFAULT_GRACE,
    on_result: Callable[[LoadResult], None] | None = None,
) -> list[LoadResult]:
    """Load every enabled feed that is due (all of them with ``force``), one after the other;
    a failing feed is recorded and the next one goes on."""
    results: list[LoadResult] = []
    for feed in feeds:
        if not feed.enabled:
            continue
        try:
            due = force or is_due(es, feed, prefix=prefix)
        except Exception as exc:
            due, err = False, f"{type(exc).__name__}: {exc}"
            res = LoadResult(feed=feed.name, kind=feed.kind, status="failed", error=err)
        else:
            if due:
                res = load_feed(
                    es,
                    feed,
                    prefix=prefix,
                    cache_dir=cache_dir,
                    chunk_size=chunk_size,
                    force=force,
                    grace=grace,
                )
            else:
                res = LoadResult(feed=feed.name, kind=feed.kind, status="skipped")
        results.append(res)
        if on_result is not None:
            on_result(res)
    return results


def remove_feed(es: Elasticsearch, feed: str, *, prefix: str = "sysmon") -> int:
    """Remove a feed: its manifest first (readers stop using it), then its chunks and indicator
    documents. Returns the number of documents deleted; 0 when the feed was unknown."""
    state = read_state(es, feed, prefix=prefix)
    deleted = 0
    chunk_ids: list[str] = []
    if state is not None:
        es.options(ignore_status=404).delete(index=feeds_index(prefix), id=feed, refresh=True)
        deleted += 1
        chunk_ids = [c for ids in state.doc.get("chunks", {}).values() for c in ids]
        chunk_ids += [c for gen in state.doc.get("retired", []) for c in gen.get("chunks", [])]
    leftover = scan_ids(es, lookup_index(prefix), {"term": {"feed": feed}})
    deleted += delete_ids(es, lookup_index(prefix), dict.fromkeys([*chunk_ids, *leftover]))
    ids = scan_ids(es, indicators_index(prefix), {"term": {"intel.feed": feed}})
    deleted += delete_ids(es, indicators_index(prefix), ids)
    es.options(ignore_status=404).indices.refresh(index=f"{indicators_index(prefix)},{lookup_index(prefix)}")
    return deleted


__all__ = [
    "DEFAULT_GRACE",
    "MAX_ISSUES_KEPT",
    "FeedState",
    "IntelLoadError",
    "LoadResult",
    "LoadStatus",
    "Progress",
    "default_cache_dir",
    "feed_from_location",
    "is_due",
    "list_states",
    "load_feed",
    "load_items",
    "read_state",
    "record_failure",
    "refresh_feeds",
    "remove_feed",
]

"""Loading feeds into the intel indices, with an atomic swap per feed.

A load of feed F writes generation N (``N`` = the manifest's generation + 1, with a random token
in ``generation_id`` so two loaders never share chunk ids):

1. stream the parsed items: dedupe per (type, value); bulk-index one indicator document per
   indicator (deterministic id, so it overwrites the previous generation's document in place,
   now carrying ``intel.generation = N``); append the value to its type's term list and write a
   chunk document to ``<prefix>-intel-lookup`` each time a list reaches ``chunk_size``;
2. refresh the two indices;
3. **flip** the manifest (``<prefix>-intel-feeds``, id F) to list generation N's chunk ids, written
   with ``if_seq_no``/``if_primary_term`` (a concurrent loader of the same feed loses and cleans
   up its own chunks); the previous generation goes to the manifest's ``retired`` list;
4. delete, by their known ids, the chunks of retired generations *other than the one just
   retired* once they have been retired for ``grace`` seconds, and the indicator documents of F
   whose generation is below N (found with a scroll; no ``_delete_by_query`` needed).

A reader that built its clause from the old manifest still finds generation N-1's chunks: they
live until the refresh after next and at least ``grace`` seconds after they were retired. Readers
of indicator documents (:mod:`detectors.intel.lookup`) only accept documents whose generation is
at least the manifest's, so removed indicators vanish at the flip.

Every failure of a feed (fetch, parse, Elasticsearch) is recorded in its manifest
(``last_error``) and returned in its :class:`LoadResult`; the previous generation stays in place.
So does a load the :class:`~detectors.intel.guard.CoverageGuard` refuses (empty, mostly invalid,
or far smaller than the last good generation): its chunks are deleted before any flip. The
generation number a failed load used is recorded (``attempted_generation``) and never reused, so
the indicator documents it rewrote are swept by the next good load's cleanup.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast

import orjson
from elasticsearch import ConflictError, Elasticsearch, NotFoundError, helpers

from shipper.errors import SysmonError
from shipper.redact import mask_text

from .config import FeedConfig, FeedKind
from .guard import DEFAULT_MIN_RATIO, CoverageGuard
from .indices import (
    DEFAULT_CHUNK_SIZE,
    MAX_TERMS_COUNT,
    chunk_id,
    feeds_index,
    indicator_id,
    indicators_index,
    lookup_index,
)
from .model import Indicator, IndicatorType, ParseIssue, ParseItem
from .sources import FeedCache, FetchResult, fetch, read_feed

log = logging.getLogger(__name__)

LoadStatus = Literal["loaded", "not_modified", "failed", "skipped"]
DEFAULT_GRACE = 120.0  # seconds a retired generation outlives its retirement (besides N-1)
MAX_ISSUES_KEPT = 200
BULK_BYTES = 8 << 20
BULK_DOCS = 20_000
Progress = Callable[[int], None]


class IntelLoadError(SysmonError):
    """A feed could not be loaded into Elasticsearch."""


@dataclass(slots=True)
class LoadResult:
    """What a load did. ``counts``: indicators by type (after dedupe); ``issues``: the first
    :data:`MAX_ISSUES_KEPT` parse issues (``issue_count`` counts them all)."""

    feed: str
    kind: str
    status: LoadStatus
    generation: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    issues: list[ParseIssue] = field(default_factory=list)
    issue_count: int = 0
    duration: float = 0.0
    error: str | None = None
    chunks: int = 0
    deleted: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def summary(self) -> str:
        counts = ",".join(f"{k}={v}" for k, v in sorted(self.counts.items())) or "-"
        text = (
            f"feed={self.feed} kind={self.kind} status={self.status} generation={self.generation} "
            f"indicators={self.total} types={counts} issues={self.issue_count} chunks={self.chunks} "
            f"deleted={self.deleted} seconds={self.duration:.2f}"
        )
        if self.error:
            text += f" error={self.error!r}"
        return text


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------------------------
# manifest / state


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


def _write_state(
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


def _update_state(
    es: Elasticsearch, prefix: str, feed: str, change: Callable[[dict[str, Any]], None], kind: str
) -> None:
    """Read-modify-write of the manifest (no scripts on the node), retried on conflicts."""
    for _attempt in range(5):
        old = read_state(es, feed, prefix=prefix)
        doc = dict(old.doc) if old else {"feed": feed, "kind": kind, "generation": 0, "chunks": {}}
        change(doc)
        try:
            _write_state(es, prefix, feed, doc, old)
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
    now = _iso(_now())

    def change(doc: dict[str, Any]) -> None:
        doc.update(status="failed", last_attempt=now, last_error=error)
        if attempted is not None:
            doc["attempted_generation"] = max(attempted, int(doc.get("attempted_generation") or 0))
        if source:
            doc["source"] = {**doc.get("source", {}), **source}

    _update_state(es, prefix, feed, change, kind)


# ---------------------------------------------------------------------------------------------
# bulk


class _Bulk:
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


# ---------------------------------------------------------------------------------------------
# loading


def _indicator_doc(ind: Indicator, feed: str, kind: str, generation: int, stamp: str) -> dict[str, Any]:
    doc = ind.ecs()
    doc["@timestamp"] = stamp
    intel = doc["intel"]
    intel.update(feed=feed, kind=kind, generation=generation)
    threat = doc["threat"]
    threat.setdefault("feed", {})["name"] = feed
    return doc


def _new_generation(state: FeedState | None) -> tuple[int, str]:
    last = 0
    if state:
        last = max(int(state.doc.get("generation") or 0), int(state.doc.get("attempted_generation") or 0))
    gen = last + 1
    return gen, f"{gen}-{secrets.token_hex(4)}"


class _GenerationWriter:
    """Writes one generation of a feed: indicator documents deduplicated per (type, value), and
    each type's values as lookup chunks of at most ``chunk_size``."""

    def __init__(
        self,
        es: Elasticsearch,
        result: LoadResult,
        *,
        prefix: str,
        generation_id: str,
        chunk_size: int,
        progress: Progress | None,
    ) -> None:
        self.result = result
        self.name, self.kind = result.feed, result.kind
        self.generation = int(result.generation or 0)
        self.generation_id = generation_id
        self.chunk_size = chunk_size
        self.progress = progress
        self.stamp = _iso(_now())
        self.bulk = _Bulk(es)
        self.ind_index, self.lk_index = indicators_index(prefix), lookup_index(prefix)
        self.seen: dict[bytes, bool] = {}  # key digest -> derived
        self.lists: dict[str, list[str]] = {}
        self.chunks: dict[str, list[str]] = {}
        self.chunk_counts: dict[str, list[int]] = {}
        self.invalid = 0

    @property
    def indices(self) -> tuple[str, str]:
        return self.ind_index, self.lk_index

    def chunk_ids(self) -> list[str]:
        return [c for ids in self.chunks.values() for c in ids]

    def write(self, items: Iterable[ParseItem]) -> None:
        """Every item, then the partial chunks; everything sent."""
        for item in items:
            if isinstance(item, ParseIssue):
                self._issue(item)
            else:
                self._indicator(item)
        for type_ in list(self.lists):
            self._write_chunk(type_)
        self.bulk.flush()

    def _issue(self, issue: ParseIssue) -> None:
        result = self.result
        result.issue_count += 1
        self.invalid += issue.kind == "invalid"
        if len(result.issues) < MAX_ISSUES_KEPT:
            result.issues.append(issue)

    def _indicator(self, item: Indicator) -> None:
        doc_id = indicator_id(self.name, item.type, item.value)
        key = doc_id.encode()
        previous = self.seen.get(key)
        if previous is not None and not (previous and not item.derived):
            return  # a duplicate (a listed value wins over one derived from a URL)
        self.seen[key] = item.derived
        doc = _indicator_doc(item, self.name, self.kind, self.generation, self.stamp)
        self.bulk.index(self.ind_index, doc_id, doc)
        if previous is not None:
            return  # the listed value replaced the derived one: already counted and listed
        counts = self.result.counts
        counts[item.type] = counts.get(item.type, 0) + 1
        bucket = self.lists.setdefault(item.type, [])
        bucket.append(item.value)
        if len(bucket) >= self.chunk_size:
            self._write_chunk(item.type)
        if self.progress is not None and len(self.seen) % 10_000 == 0:
            self.progress(len(self.seen))

    def _write_chunk(self, type_: str) -> None:
        values = self.lists.pop(type_)
        number = len(self.chunks.setdefault(type_, []))
        cid = chunk_id(self.name, self.generation_id, type_, number)
        doc = {
            "feed": self.name,
            "kind": self.kind,
            "type": type_,
            "generation": self.generation,
            "generation_id": self.generation_id,
            "chunk": number,
            "count": len(values),
            "values": values,
        }
        self.bulk.index(self.lk_index, cid, doc)
        self.chunks[type_].append(cid)
        self.chunk_counts.setdefault(type_, []).append(len(values))

    def take_rejections(self) -> None:
        """A rejected chunk fails the load (its list would be incomplete); a rejected indicator
        document is only an issue (lookups read the chunks)."""
        chunk_ids = set(self.chunk_ids())
        chunk_errors = [e for e in self.bulk.errors if e[0] in chunk_ids]
        if chunk_errors:
            raise IntelLoadError(
                f"Elasticsearch rejected lookup chunk {chunk_errors[0][0]}: {chunk_errors[0][1]}"
            )
        result = self.result
        for doc_id, reason in self.bulk.errors:
            result.issue_count += 1
            if len(result.issues) < MAX_ISSUES_KEPT:
                result.issues.append(
                    ParseIssue(0, f"indicator document {doc_id} rejected: {reason}", source=self.name)
                )


def load_items(
    es: Elasticsearch,
    items: Iterable[ParseItem],
    *,
    name: str,
    kind: FeedKind | str = "intel",
    prefix: str = "sysmon",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    grace: float = DEFAULT_GRACE,
    source: dict[str, Any] | None = None,
    refresh_seconds: float | None = None,
    progress: Progress | None = None,
    guard: CoverageGuard | None = None,
    force: bool = False,
) -> LoadResult:
    """Write ``items`` as the new generation of feed ``name`` and flip its manifest.

    ``guard`` (default :class:`CoverageGuard`) refuses a load that would shrink the feed's
    coverage; ``force`` accepts it anyway. A refused load fails with the guard's reason.

    Raises :class:`IntelLoadError` (after recording it) when Elasticsearch rejects the lookup
    chunks or the manifest changed under us; the previous generation stays current then.
    """
    if not 1 <= chunk_size <= MAX_TERMS_COUNT:
        raise ValueError(f"chunk_size must be between 1 and {MAX_TERMS_COUNT} (index.max_terms_count)")
    started = time.monotonic()
    state = read_state(es, name, prefix=prefix)
    generation, generation_id = _new_generation(state)
    result = LoadResult(feed=name, kind=str(kind), status="loaded", generation=generation)
    writer = _GenerationWriter(
        es, result, prefix=prefix, generation_id=generation_id, chunk_size=chunk_size, progress=progress
    )
    try:
        writer.write(items)
        if not force:
            guard_ = guard or CoverageGuard()
            _refuse_if_shrinking(es, guard_, result, writer.invalid, state, writer.chunks, writer.indices)
        writer.take_rejections()
        es.indices.refresh(index=",".join(writer.indices))
        manifest = _next_manifest(state, writer, started, source, refresh_seconds)
        _flip(es, prefix, manifest, state, writer)
        result.chunks = sum(len(v) for v in writer.chunks.values())
        result.deleted = _cleanup(es, prefix, name, kind, generation, grace)
    except IntelLoadError as exc:
        result.status, result.error = "failed", exc.message
        _safe_record(es, name, str(kind), exc.message, prefix, attempted=generation)
    except Exception:
        # the parse or the cluster failed mid-load: the manifest was not flipped; drop this
        # generation's chunks (best effort) and let the caller record the error
        try:
            _delete_ids(es, writer.lk_index, writer.chunk_ids())
        except Exception:
            log.exception("intel feed %s: could not delete the chunks of a failed load", name)
        raise
    result.duration = time.monotonic() - started
    return result


def _next_manifest(
    state: FeedState | None,
    writer: _GenerationWriter,
    started: float,
    source: dict[str, Any] | None,
    refresh_seconds: float | None,
) -> dict[str, Any]:
    """The manifest listing the new generation; the current one goes to ``retired``."""
    result = writer.result
    now = _now()
    retired: list[dict[str, Any]] = list(state.doc.get("retired", [])) if state else []
    if state and state.doc.get("generation_id"):
        retired.append(
            {
                "generation": state.doc.get("generation"),
                "generation_id": state.doc["generation_id"],
                "retired_at": _iso(now),
                "chunks": [c for ids in state.doc.get("chunks", {}).values() for c in ids],
            }
        )
    manifest: dict[str, Any] = dict(state.doc) if state else {}
    manifest.update(
        feed=result.feed,
        kind=result.kind,
        generation=writer.generation,
        generation_id=writer.generation_id,
        chunks=writer.chunks,
        chunk_counts=writer.chunk_counts,
        counts=result.counts,
        total=result.total,
        issues=result.issue_count,
        retired=retired,
        status="loaded",
        last_refresh=_iso(now),
        last_attempt=_iso(now),
        last_error=None,
        duration_seconds=round(time.monotonic() - started, 3),
    )
    if source:
        manifest["source"] = {**manifest.get("source", {}), **source}
    if refresh_seconds is not None:
        manifest["refresh_seconds"] = int(refresh_seconds)
    return manifest


def _flip(
    es: Elasticsearch,
    prefix: str,
    manifest: dict[str, Any],
    state: FeedState | None,
    writer: _GenerationWriter,
) -> None:
    """Make the new generation current; a loader that flipped first wins and ours is dropped."""
    name = writer.name
    try:
        _write_state(es, prefix, name, manifest, state)
    except ConflictError:
        _delete_ids(es, writer.lk_index, writer.chunk_ids())
        raise IntelLoadError(
            f"feed {name} was loaded by someone else meanwhile; this load was discarded", source=name
        ) from None


def _refuse_if_shrinking(
    es: Elasticsearch,
    guard: CoverageGuard,
    result: LoadResult,
    invalid: int,
    state: FeedState | None,
    chunks: dict[str, list[str]],
    indices: tuple[str, str],
) -> None:
    ind_index, lk_index = indices
    previous = int(state.doc.get("total") or 0) if state and state.doc.get("generation_id") else 0
    problem = guard.problem(total=result.total, invalid=invalid, previous_total=previous)
    if problem is None:
        return
    _delete_ids(es, lk_index, [c for ids in chunks.values() for c in ids])
    _drop_new_indicators(es, result.feed, int(result.generation or 0), state, ind_index, lk_index)
    kept = f"generation {state.doc.get('generation')} stays" if previous and state else "nothing was loaded"
    raise IntelLoadError(f"refused: {problem}; {kept} (--force accepts it)", source=result.feed)


def _drop_new_indicators(
    es: Elasticsearch, feed: str, generation: int, state: FeedState | None, index: str, lk_index: str
) -> None:
    """Delete the indicator documents a refused load wrote whose value the live generation does
    not list, so enrichment and ``intel check`` never see them; the rest hold live values."""
    live: set[tuple[str, str]] = set()
    for ids in (state.doc.get("chunks", {}) if state else {}).values():
        for doc in es.mget(index=lk_index, ids=list(ids))["docs"]:
            src = doc.get("_source") or {}
            live.update((str(src.get("type")), v) for v in src.get("values", []))
    query = {"bool": {"filter": [{"term": {"intel.feed": feed}}, {"term": {"intel.generation": generation}}]}}
    es.indices.refresh(index=index)
    stale = [
        str(hit["_id"])
        for hit in helpers.scan(
            es, index=index, query={"query": query, "_source": ["intel.type", "intel.value"]}, size=5_000
        )
        if (str(hit["_source"]["intel"]["type"]), str(hit["_source"]["intel"]["value"])) not in live
    ]
    _delete_ids(es, index, stale)
    es.indices.refresh(index=index)


def _safe_record(
    es: Elasticsearch, feed: str, kind: str, error: str, prefix: str, attempted: int | None = None
) -> None:
    try:
        record_failure(es, feed, kind, error, prefix=prefix, attempted=attempted)
    except Exception:  # the cluster may be what failed: the result still carries the error
        log.exception("intel feed %s: could not record the failure", feed)


def _delete_ids(es: Elasticsearch, index: str, ids: Iterable[str]) -> int:
    bulk = _Bulk(es)
    count = 0
    for doc_id in ids:
        bulk.delete(index, doc_id)
        count += 1
    bulk.flush()
    return count


def _scan_ids(es: Elasticsearch, index: str, query: dict[str, Any]) -> Iterator[str]:
    for hit in helpers.scan(
        es.options(ignore_status=404), index=index, query={"query": query, "_source": False}, size=5_000
    ):
        yield str(hit["_id"])


def _cleanup(
    es: Elasticsearch, prefix: str, feed: str, kind: FeedKind | str, generation: int, grace: float
) -> int:
    """After the flip to ``generation``: delete stale indicator documents and the chunks of old
    retired generations (all but the newest retired one, after ``grace`` seconds)."""
    stale = {
        "bool": {
            "filter": [{"term": {"intel.feed": feed}}, {"range": {"intel.generation": {"lt": generation}}}]
        }
    }
    deleted = _delete_ids(es, indicators_index(prefix), _scan_ids(es, indicators_index(prefix), stale))
    state = read_state(es, feed, prefix=prefix)
    if state is None:
        return deleted
    retired = list(state.doc.get("retired", []))
    limit = _now() - timedelta(seconds=grace)
    keep, drop = [], []
    for i, gen in enumerate(retired):
        newest = i == len(retired) - 1
        if newest or _parse_iso(str(gen["retired_at"])) > limit:
            keep.append(gen)
        else:
            drop.append(gen)
    if drop:
        deleted += _delete_ids(es, lookup_index(prefix), (c for gen in drop for c in gen.get("chunks", [])))

        def change(doc: dict[str, Any]) -> None:
            gone = {g["generation_id"] for g in drop}
            doc["retired"] = [g for g in doc.get("retired", []) if g["generation_id"] not in gone]

        _update_state(es, prefix, feed, change, str(kind))
    if deleted:
        es.indices.refresh(index=f"{indicators_index(prefix)},{lookup_index(prefix)}")
    return deleted


# ---------------------------------------------------------------------------------------------
# feeds


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
            now = _iso(_now())

            def change(doc: dict[str, Any]) -> None:
                doc.update(status="not_modified", last_attempt=now, last_error=None)
                doc["source"] = {**doc.get("source", {}), **source}

            _update_state(es, prefix, feed.name, change, feed.kind)
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
            )
    except Exception as exc:  # a feed's trouble never stops the caller's other feeds
        if isinstance(exc, SysmonError):
            log.error("intel feed %s: load failed: %s", feed.name, mask_text(str(exc)))
        else:
            log.exception("intel feed %s: load failed", feed.name)
        result.status = "failed"
        error = str(exc) if isinstance(exc, SysmonError) else f"{type(exc).__name__}: {exc}"
        result.error = mask_text(error)
        _safe_record(es, feed.name, feed.kind, result.error, prefix)
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
    return (now or _now()) - _parse_iso(str(last)) >= feed.refresh


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
    leftover = _scan_ids(es, lookup_index(prefix), {"term": {"feed": feed}})
    deleted += _delete_ids(es, lookup_index(prefix), dict.fromkeys([*chunk_ids, *leftover]))
    ids = _scan_ids(es, indicators_index(prefix), {"term": {"intel.feed": feed}})
    deleted += _delete_ids(es, indicators_index(prefix), ids)
    es.options(ignore_status=404).indices.refresh(index=f"{indicators_index(prefix)},{lookup_index(prefix)}")
    return deleted

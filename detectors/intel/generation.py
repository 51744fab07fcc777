"""One load of a feed into the intel indices: a new generation, swapped in atomically.

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
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from elasticsearch import ConflictError, Elasticsearch

from .bulk import Bulk, delete_ids
from .config import FeedKind
from .delta import Added, write_added
from .guard import CoverageGuard
from .indices import (
    DEFAULT_CHUNK_SIZE,
    MAX_TERMS_COUNT,
    chunk_id,
    indicator_id,
    indicators_index,
    lookup_index,
)
from .manifest import FeedState, IntelLoadError, iso_ms, read_state, record_failure, utc_now, write_state
from .model import Indicator, ParseIssue, ParseItem
from .sweep import DEFAULT_GRACE, cleanup, drop_new_indicators

log = logging.getLogger(__name__)

LoadStatus = Literal["loaded", "not_modified", "failed", "skipped"]
MAX_ISSUES_KEPT = 200
Progress = Callable[[int], None]


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
    #: indicators this load added to the feed (queued for the retro-hunt); None for allowlists
    added: int | None = None

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
            f"deleted={self.deleted} added={'-' if self.added is None else self.added} "
            f"seconds={self.duration:.2f}"
        )
        if self.error:
            text += f" error={self.error!r}"
        return text


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
        self.stamp = iso_ms(utc_now())
        self.bulk = Bulk(es)
        self.ind_index, self.lk_index = indicators_index(prefix), lookup_index(prefix)
        self.seen: dict[bytes, bool] = {}  # key digest -> derived
        self.lists: dict[str, list[str]] = {}
        self.chunks: dict[str, list[str]] = {}
        self.chunk_counts: dict[str, list[int]] = {}
        self.added_ids: list[str] = []
        self.invalid = 0

    @property
    def indices(self) -> tuple[str, str]:
        return self.ind_index, self.lk_index

    def chunk_ids(self) -> list[str]:
        """Every lookup chunk this load wrote (the added-indicator chunks included)."""
        return [c for ids in self.chunks.values() for c in ids] + self.added_ids

    def write_delta(self, old: dict[str, list[str]], role: str) -> Added:
        """The chunks of the values this generation adds to ``old`` (``role`` ``added``), or of
        those it drops from it (``removed``)."""
        added = write_added(
            self.bulk.es,
            self.bulk,
            index=self.lk_index,
            feed=self.name,
            generation=self.generation,
            generation_id=self.generation_id,
            old=old if role == "added" else self.chunks,
            new=self.chunks if role == "added" else old,
            chunk_size=self.chunk_size,
            role=role,
            kind=self.kind,
        )
        self.added_ids = added.chunk_ids()
        mine = set(self.added_ids)  # rejected indicator documents are issues, counted elsewhere
        rejected = [e for e in self.bulk.errors if e[0] in mine]
        if rejected:
            doc_id, reason = rejected[0]
            raise IntelLoadError(f"Elasticsearch rejected lookup chunk {doc_id}: {reason}")
        return added

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
    retro_window: float | None = None,
) -> LoadResult:
    """Write ``items`` as the new generation of feed ``name`` and flip its manifest.

    ``guard`` (default :class:`CoverageGuard`) refuses a load that would shrink the feed's
    coverage; ``force`` accepts it anyway. A refused load fails with the guard's reason.
    An intel feed's added indicators are queued for the retro-hunt in the flip itself
    (``retro_pending``; ``retro_window``: seconds before the load the hunt looks back, None: all).

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
        pending = _queue_delta(writer, state, retro_window)
        es.indices.refresh(index=",".join(writer.indices))
        manifest = _next_manifest(state, writer, started, source, refresh_seconds)
        if pending is not None:
            manifest["retro_pending"] = [*manifest.get("retro_pending", []), pending]
        _flip(es, prefix, manifest, state, writer)
        result.chunks = sum(len(v) for v in writer.chunks.values())
        result.deleted = cleanup(es, prefix, name, kind, generation, grace)
    except IntelLoadError as exc:
        result.status, result.error = "failed", exc.message
        safe_record(es, name, str(kind), exc.message, prefix, attempted=generation)
    except Exception:
        # the parse or the cluster failed mid-load: the manifest was not flipped; drop this
        # generation's chunks (best effort) and let the caller record the error
        try:
            delete_ids(es, writer.lk_index, writer.chunk_ids())
        except Exception:
            log.exception("intel feed %s: could not delete the chunks of a failed load", name)
        raise
    result.duration = time.monotonic() - started
    return result


def _queue_delta(
    writer: _GenerationWriter, state: FeedState | None, retro_window: float | None
) -> dict[str, Any] | None:
    """Write the chunks of what the retro-hunt must look at — the values an intel feed added,
    the entries an allowlist removed — and return the ``retro_pending`` entry that lists them
    (None when there are none)."""
    old: dict[str, list[str]] = dict(state.doc.get("chunks") or {}) if state else {}
    role = "added" if writer.kind == "intel" else "removed"
    if role == "removed" and not old:
        return None
    delta = writer.write_delta(old, role)
    if role == "added":
        writer.result.added = delta.total
    return delta.entry(role, writer.generation, writer.generation_id, iso_ms(utc_now()), retro_window)


def _next_manifest(
    state: FeedState | None,
    writer: _GenerationWriter,
    started: float,
    source: dict[str, Any] | None,
    refresh_seconds: float | None,
) -> dict[str, Any]:
    """The manifest listing the new generation; the current one goes to ``retired``."""
    result = writer.result
    now = utc_now()
    retired: list[dict[str, Any]] = list(state.doc.get("retired", [])) if state else []
    if state and state.doc.get("generation_id"):
        retired.append(
            {
                "generation": state.doc.get("generation"),
                "generation_id": state.doc["generation_id"],
                "retired_at": iso_ms(now),
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
        last_refresh=iso_ms(now),
        last_attempt=iso_ms(now),
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
        write_state(es, prefix, name, manifest, state)
    except ConflictError:
        delete_ids(es, writer.lk_index, writer.chunk_ids())
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
    delete_ids(es, lk_index, [c for ids in chunks.values() for c in ids])
    drop_new_indicators(es, result.feed, int(result.generation or 0), state, ind_index, lk_index)
    kept = f"generation {state.doc.get('generation')} stays" if previous and state else "nothing was loaded"
    raise IntelLoadError(f"refused: {problem}; {kept} (--force accepts it)", source=result.feed)


def safe_record(
    es: Elasticsearch, feed: str, kind: str, error: str, prefix: str, attempted: int | None = None
) -> None:
    try:
        record_failure(es, feed, kind, error, prefix=prefix, attempted=attempted)
    except Exception:  # the cluster may be what failed: the result still carries the error
        log.exception("intel feed %s: could not record the failure", feed)

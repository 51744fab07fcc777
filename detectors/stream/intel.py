"""Intel and allowlists in memory for the stream stage: the same answers as the scheduled
engine's ``terms`` lookups (:func:`detectors.intel.lookup.lookup_clause`), without a query.

:class:`IntelMemory` is one immutable snapshot of every feed's current generation, built from
the lookup chunks its manifest names — the very lists the ``terms`` lookups read, so there is
nothing to re-derive. :class:`IntelCache` polls the manifests and swaps in a new snapshot when a
feed's generation changes (feeds whose generation did not change are carried over as they are);
a reader holding the old snapshot keeps a consistent view, and a failed load keeps the old one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from elasticsearch import Elasticsearch

from detectors.intel.indices import lookup_index
from detectors.intel.lookup import CASELESS_TYPES, FIELD_TYPES, manifests
from shipper.errors import SysmonError
from shipper.templates import KEYWORD_IGNORE_ABOVE

from .fields import field_spec
from .lists import ListBuilder, TypeList, parse_addr
from .values import java_lower, utf16_len

log = logging.getLogger(__name__)

Kind = Literal["intel", "allow"]
CHUNKS_PER_GET = 1  # lookup chunks per mget: one response (<= 50,000 values) held at a time


class IntelMemoryError(SysmonError):
    """The intel lists could not be read into memory."""


@dataclass(frozen=True, slots=True, eq=False)
class FeedLists:
    """One feed's current generation: its lists by indicator type."""

    feed: str
    kind: str
    generation_id: str
    lists: Mapping[str, TypeList]

    @property
    def count(self) -> int:
        return sum(t.count for t in self.lists.values())


def _mapped(field_: str) -> bool:
    """Whether the event mapping indexes the field (``dynamic: false``: others are only kept)."""
    return field_spec(field_).kind not in ("unmapped", "unindexed", "object")


def _caseless_field(field_: str) -> bool:
    return field_spec(f"{field_}.caseless").lowercase


def _types_for(field_: str, types: Sequence[str] | None) -> tuple[str, ...]:
    if types is not None:
        return tuple(types)
    try:
        return FIELD_TYPES[field_]
    except KeyError:  # as lookup_clause: a field intel cannot be matched on is a rule's error
        raise ValueError(f"no indicator types known for field {field_!r}; pass types=") from None


@dataclass(frozen=True, slots=True, eq=False)
class IntelMemory:
    """One immutable snapshot of every current intel list and allowlist."""

    feeds: Mapping[str, FeedLists]
    generations: dict[str, str]
    _by_type: dict[tuple[str, str], tuple[tuple[str, TypeList], ...]] = field(repr=False)
    # filled by has(); the snapshot is immutable, so an entry never goes stale
    _plans: dict[tuple[str, str, Any, Any], _Plan] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, feeds: Sequence[FeedLists]) -> IntelMemory:
        by_type: dict[tuple[str, str], list[tuple[str, TypeList]]] = {}
        for f in sorted(feeds, key=lambda f: f.feed):
            for t, lst in f.lists.items():
                by_type.setdefault((f.kind, t), []).append((f.feed, lst))
        return cls(
            feeds={f.feed: f for f in feeds},
            generations={f.feed: f.generation_id for f in feeds},
            _by_type={k: tuple(v) for k, v in by_type.items()},
        )

    @property
    def count(self) -> int:
        """Indicators and allowlist entries held, over every feed."""
        return sum(f.count for f in self.feeds.values())

    def nbytes(self) -> int:
        """Bytes in the packed lists (object headers aside)."""
        return sum(t.nbytes() for f in self.feeds.values() for t in f.lists.values())

    def _plan(
        self, kind: str, field: str, feeds: tuple[str, ...] | None, types: tuple[str, ...] | None
    ) -> _Plan:
        wanted = _types_for(field, types)
        if not _mapped(field):
            return _Plan(False, (), ())

        def lists(t: str) -> list[TypeList]:
            return [lst for feed, lst in self._by_type.get((kind, t), ()) if feeds is None or feed in feeds]

        if field_spec(field).kind == "ip":
            # only ip and cidr values are ip terms (others would make the scheduled query fail)
            return _Plan(True, tuple(x for t in wanted if t in ("ip", "cidr") for x in lists(t)), ())
        exact = tuple(x for t in wanted if t not in CASELESS_TYPES for x in lists(t))
        # caseless types match <field>.caseless, where there is one: lower-cased on both sides
        caseless = tuple(x for t in wanted if t in CASELESS_TYPES for x in lists(t))
        return _Plan(False, exact, caseless if _caseless_field(field) else ())

    def has(
        self,
        kind: Kind,
        field: str,
        value: str,
        feeds: tuple[str, ...] | None,
        types: tuple[str, ...] | None,
    ) -> bool:
        """Whether ``lookup_clause(field, kind=kind, feeds=feeds, types=types)`` matches an event
        whose ``field`` holds ``value`` (as indexed). ``types`` None: the field's ``FIELD_TYPES``
        (ValueError for a field without, as ``lookup_clause``)."""
        key = (kind, field, feeds, types)
        plan = self._plans.get(key)
        if plan is None:  # once per (kind, field, feeds, types): the lists to look in
            plan = self._plans[key] = self._plan(kind, field, feeds, types)
        if plan.ip:
            addr = parse_addr(value) if plan.exact else None
            return addr is not None and any(lst.has_addr(addr) for lst in plan.exact)
        if not (plan.exact or plan.caseless) or utf16_len(value) > KEYWORD_IGNORE_ABOVE:
            return False  # nothing to look in, or a keyword too long to be indexed
        if any(lst.has_text(value) for lst in plan.exact):
            return True
        if plan.caseless:
            lowered = java_lower(value)
            return any(lst.has_text(lowered) for lst in plan.caseless)
        return False


@dataclass(frozen=True, slots=True)
class _Plan:
    """Where ``has`` looks for one (kind, field, feeds, types): ``ip`` the field is an ip field
    (``exact`` compared as addresses); else ``exact`` compared as strings, ``caseless`` lower-cased."""

    ip: bool
    exact: tuple[TypeList, ...]
    caseless: tuple[TypeList, ...]


def iter_chunks(es: Elasticsearch, prefix: str, feed: str, ids: Sequence[str]) -> Iterator[list[str]]:
    """The ``values`` of the lookup chunks ``ids`` of ``feed``, one chunk at a time, in order
    (one chunk a request: only one response is ever held); a missing one is an error."""
    for start in range(0, len(ids), CHUNKS_PER_GET):
        batch = list(ids[start : start + CHUNKS_PER_GET])
        resp = es.mget(index=lookup_index(prefix), ids=batch, source_includes=["values"])
        for doc in resp["docs"]:
            if not doc.get("found"):
                raise IntelMemoryError(
                    f"lookup chunk {doc.get('_id')} named by the manifest is missing", source=f"feed {feed}"
                )
            yield [str(v) for v in doc["_source"].get("values") or ()]
        del resp


def read_chunk_values(es: Elasticsearch, prefix: str, feed: str, ids: list[str]) -> list[str]:
    """The ``values`` of the lookup chunks ``ids`` of ``feed``, in order, in one list."""
    return [v for chunk in iter_chunks(es, prefix, feed, ids) for v in chunk]


def load_feed(es: Elasticsearch, prefix: str, manifest: Mapping[str, Any]) -> FeedLists:
    """The lists of the generation ``manifest`` names, built chunk by chunk from its lookup
    chunks (a chunk's strings are dropped once they are keys)."""
    feed = str(manifest["feed"])
    lists: dict[str, TypeList] = {}
    for type_, ids in sorted(dict(manifest.get("chunks") or {}).items()):
        builder = ListBuilder(type_, caseless=type_ in CASELESS_TYPES)
        for values in iter_chunks(es, prefix, feed, [str(i) for i in ids]):
            builder.add(values)
        lists[type_] = builder.build()
    return FeedLists(feed, str(manifest.get("kind") or ""), str(manifest["generation_id"]), lists)


def _key(manifest: Mapping[str, Any]) -> tuple[str, str]:
    return str(manifest.get("kind") or ""), str(manifest["generation_id"])


def load_memory(
    es: Elasticsearch,
    prefix: str,
    previous: IntelMemory | None = None,
    found: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[IntelMemory, list[str]]:
    """A snapshot of every feed's current generation (``found``: the manifests, read if None),
    and the feeds read for it; feeds whose kind and generation are those of ``previous`` are
    carried over without reading them."""
    if found is None:
        found = manifests(es, prefix=prefix)
    feeds: list[FeedLists] = []
    read: list[str] = []
    for m in found:
        old = previous.feeds.get(str(m["feed"])) if previous is not None else None
        if old is not None and (old.kind, old.generation_id) == _key(m):
            feeds.append(old)
            continue
        feeds.append(load_feed(es, prefix, m))
        read.append(str(m["feed"]))
    return IntelMemory.of(feeds), read


def _unchanged(memory: IntelMemory | None, found: Sequence[Mapping[str, Any]]) -> bool:
    if memory is None:
        return False
    now = {str(m["feed"]): _key(m) for m in found}
    return now == {f.feed: (f.kind, f.generation_id) for f in memory.feeds.values()}


class IntelCache:
    """The current :class:`IntelMemory`, refreshed by :meth:`poll`."""

    def __init__(self, es: Elasticsearch, prefix: str, *, poll_seconds: float = 30.0) -> None:
        self.es = es
        self.prefix = prefix
        self.poll_seconds = poll_seconds
        self.error: str | None = None
        self._memory: IntelMemory | None = None
        self._polled: float | None = None
        self._lock = threading.Lock()  # one rebuild at a time; readers never take it

    def current(self) -> IntelMemory | None:
        """The latest snapshot; None until a load succeeded."""
        return self._memory

    def poll_soon(self) -> None:
        """:meth:`poll` on a thread of its own when one is due: a rebuild (seconds for a million
        indicators) never holds up the caller, who keeps matching with the current snapshot."""
        due = self._polled is None or time.monotonic() - self._polled >= self.poll_seconds
        if due and not self._lock.locked():
            threading.Thread(target=self.poll, name="intel-poll", daemon=True).start()

    def poll(self, force: bool = False) -> bool:
        """When ``poll_seconds`` passed since the last poll (or ``force``): read the manifests
        and, if a feed's generation changed or a feed came or went, build a new snapshot and
        swap it in. True if swapped. Never raises: a failure keeps the old snapshot and sets
        :attr:`error` (cleared by the next successful poll)."""
        if not self._lock.acquire(blocking=force):
            return False  # another thread is polling right now
        try:
            started = time.monotonic()
            if not force and self._polled is not None and started - self._polled < self.poll_seconds:
                return False
            self._polled = started
            try:
                found = manifests(self.es, prefix=self.prefix)
                if _unchanged(self._memory, found):
                    self.error = None
                    return False
                memory, read = load_memory(self.es, self.prefix, self._memory, found)
            except Exception as exc:  # detection degrades, shipping goes on
                self.error = f"intel could not be loaded from {self.prefix}-intel-*: {exc}"
                log.warning("%s", self.error)
                return False
            self._memory = memory  # one reference assignment: readers see old or new, whole
            self.error = None
            log.info("intel in memory: %d entries, feeds re-read: %s", memory.count, ", ".join(read) or "-")
            return True
        finally:
            self._lock.release()

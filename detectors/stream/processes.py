"""Process ancestry for stream alerts: a bounded cache of the process-creation events (Sysmon
event 1) seen in the stream, (host, process.entity_id) → :class:`~detectors.ancestry.Link`,
with the cluster as fallback for what it does not hold.

The chain of an alert is walked in the cache first; the links found pre-seed
:func:`~detectors.ancestry.build_chains`, which queries the cluster only for the first process
the cache lacks (and its parents), so the chain, broken or truncated, is the one the scheduled
engine writes for the same event. Before it asks the cluster, the events indices are refreshed
(at most once a second): a shipper restarted after a kill looks up processes that the run before
it had indexed less than a refresh interval ago, which a search does not see yet.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from elasticsearch import Elasticsearch

from detectors.ancestry import DEFAULT_DEPTH, Chain, Link, build_chains, fetch_creations, link_from_source
from detectors.query import events_pattern, get_path

Key = tuple[str, str]  # (host.name, process.entity_id)
DEFAULT_SIZE = 100_000
#: seconds between two refreshes of the events indices before a cluster lookup
REFRESH_EVERY = 1.0


def process_key(doc: dict[str, Any]) -> Key | None:
    host, eid = get_path(doc, "host.name"), get_path(doc, "process.entity_id")
    return (str(host), str(eid)) if host and eid else None


class ProcessCache:
    """The ``size`` most recently seen process creations (least recently seen go first)."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._links: OrderedDict[Key, Link] = OrderedDict()
        self._refreshed = -REFRESH_EVERY  # monotonic time of the last refresh

    def __len__(self) -> int:
        return len(self._links)

    def see(self, doc: dict[str, Any]) -> None:
        """Remember ``doc`` if it is a process creation (as indexed: the shipper's ECS dict)."""
        if self.size <= 0 or get_path(doc, "event.code") != "1":
            return
        key = process_key(doc)
        if key is None:
            return
        self._links[key] = link_from_source(doc)
        self._links.move_to_end(key)
        if len(self._links) > self.size:
            self._links.popitem(last=False)

    def get(self, key: Key) -> Link | None:
        return self._links.get(key)

    def known(self, start: Key, depth: int) -> dict[Key, Link]:
        """The links of ``start``'s chain the cache holds, up to the first it lacks."""
        out: dict[Key, Link] = {}
        key: Key | None = start
        while key is not None and key not in out and len(out) < depth:
            link = self._links.get(key)
            if link is None:
                break
            out[key] = link
            key = (key[0], link.parent_entity_id) if link.parent_entity_id else None
        return out

    def chains(
        self,
        es: Elasticsearch,
        prefix: str,
        starts: Sequence[Key],
        *,
        depth: int = DEFAULT_DEPTH,
        seed: dict[Key, Link] | None = None,
    ) -> dict[Key, Chain]:
        """The chain of every start: cached links first, the cluster for the rest. ``seed``:
        creation links known otherwise (the alerts' own event-1 documents, as the scheduled
        engine seeds them)."""
        known: dict[Key, Link] = dict(seed or {})
        for s in starts:
            for k, link in self.known(s, depth).items():
                known.setdefault(k, link)
        return build_chains(es, prefix, starts, depth=depth, known=known, fetch=self._fetch)

    def _fetch(self, es: Elasticsearch, prefix: str, keys: Iterable[Key]) -> dict[Key, Link]:
        """:func:`fetch_creations`, after a refresh of the events indices (at most once a second)."""
        now = time.monotonic()
        if now - self._refreshed >= REFRESH_EVERY:
            self._refreshed = now
            with contextlib.suppress(Exception):  # the lookup goes on with what is searchable
                es.options(ignore_status=404).indices.refresh(index=events_pattern(prefix))
        return fetch_creations(es, prefix, keys)

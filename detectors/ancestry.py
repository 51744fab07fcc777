"""Process ancestry, rebuilt from process-creation events (Sysmon event 1).

For a batch of (host, entity id) starting points, each level is one ``terms`` query on
``process.entity_id`` for every id still being followed (not one query per alert). A process's
creation event gives its executable, command line, pid, start time and its parent's entity id,
which is the next level. Where the creation event of a process was never shipped, the chain is
*broken* and the result says which entity id is missing. Entity ids are matched on the same host.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch

from detectors.query import events_pattern, get_path, iter_pages

DEFAULT_DEPTH = 8
_SOURCE = [
    "@timestamp",
    "host.name",
    "process.entity_id",
    "process.executable",
    "process.command_line",
    "process.pid",
    "process.parent.entity_id",
    "user.name",
    "user.domain",
]


@dataclass(slots=True)
class Link:
    entity_id: str
    executable: str | None
    command_line: str | None
    pid: int | None
    start: str | None
    parent_entity_id: str | None
    user: str | None = None

    def to_doc(self) -> dict[str, Any]:
        d: dict[str, Any] = {"entity_id": self.entity_id}
        for k in ("executable", "command_line", "pid", "start", "user"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        return d


@dataclass(slots=True)
class Chain:
    """``links[0]`` is the process itself (when its creation event is known), then its parent,
    grandparent… ``broken`` when a creation event is missing (``missing_entity_id`` names it);
    ``truncated`` when ``depth`` was reached with more parents to follow."""

    host: str
    entity_id: str
    links: list[Link] = field(default_factory=list)
    broken: bool = False
    missing_entity_id: str | None = None
    truncated: bool = False

    def to_doc(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "host": self.host,
            "entity_id": self.entity_id,
            "depth": len(self.links),
            "chain": [link.to_doc() for link in self.links],
            "broken": self.broken,
            "truncated": self.truncated,
        }
        if self.missing_entity_id:
            d["missing_entity_id"] = self.missing_entity_id
        if self.links:
            d["text"] = " ← ".join(
                (link.executable or link.entity_id).rsplit("\\", 1)[-1] for link in self.links
            )
        return d


def link_from_source(src: dict[str, Any]) -> Link:
    domain, name = get_path(src, "user.domain"), get_path(src, "user.name")
    return Link(
        entity_id=str(get_path(src, "process.entity_id")),
        executable=get_path(src, "process.executable"),
        command_line=get_path(src, "process.command_line"),
        pid=get_path(src, "process.pid"),
        start=get_path(src, "@timestamp"),
        parent_entity_id=get_path(src, "process.parent.entity_id"),
        user=f"{domain}\\{name}" if domain and name else name,
    )


def fetch_creations(
    es: Elasticsearch, prefix: str, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Link]:
    """(host, entity id) → its process-creation link, in one logical query (PIT-paged)."""
    wanted = set(keys)
    if not wanted:
        return {}
    ids = sorted({e for _, e in wanted})
    query = {"bool": {"filter": [{"term": {"event.code": "1"}}, {"terms": {"process.entity_id": ids}}]}}
    out: dict[tuple[str, str], Link] = {}
    for page in iter_pages(es, events_pattern(prefix), query, source=_SOURCE):
        for hit in page:
            src = hit["_source"]
            host = get_path(src, "host.name")
            eid = get_path(src, "process.entity_id")
            key = (str(host), str(eid))
            if key in wanted and key not in out:
                out[key] = link_from_source(src)
    return out


#: how :func:`build_chains` looks up creation links: (es, prefix, keys) → links found
Fetch = Callable[[Elasticsearch, str, Iterable[tuple[str, str]]], dict[tuple[str, str], Link]]


def build_chains(
    es: Elasticsearch,
    prefix: str,
    starts: Iterable[tuple[str, str]],
    *,
    depth: int = DEFAULT_DEPTH,
    known: dict[tuple[str, str], Link] | None = None,
    fetch: Fetch | None = None,
) -> dict[tuple[str, str], Chain]:
    """Chains for every (host, entity id) in ``starts``, one query per level for all of them (at
    most ``depth`` queries: a chain that reaches ``depth`` links with a parent left is
    ``truncated``, whether or not that parent's creation event was shipped).
    ``known`` may pre-seed creation links (e.g. from the alerts' own event-1 sources); ``fetch``
    looks up the links it lacks (default :func:`fetch_creations`)."""
    chains = {k: Chain(host=k[0], entity_id=k[1]) for k in set(starts)}
    cache: dict[tuple[str, str], Link] = dict(known or {})
    # chain key → the (host, entity id) it waits for at this level
    pending: dict[tuple[str, str], tuple[str, str]] = {k: k for k in chains}
    level = 0
    while pending:
        if level == depth:  # parents left to follow: truncated, without a query to fetch them
            for ck in pending:
                chains[ck].truncated = True
            break
        need = {v for v in pending.values() if v not in cache}
        if need:
            cache.update((fetch or fetch_creations)(es, prefix, need))
        nxt: dict[tuple[str, str], tuple[str, str]] = {}
        for ck, want in pending.items():
            chain = chains[ck]
            link = cache.get(want)
            if link is None:
                chain.broken = True
                chain.missing_entity_id = want[1]
                continue
            if any(lk.entity_id == link.entity_id for lk in chain.links):
                continue  # a cycle in bad data: stop here
            chain.links.append(link)
            if link.parent_entity_id:
                nxt[ck] = (want[0], link.parent_entity_id)
        pending = nxt
        level += 1
    return chains

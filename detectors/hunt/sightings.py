"""``hunt hash HASH``: every sighting of a hash across hosts in time order, patient zero marked.

A sighting is any event holding the hash: ``related.hash`` (every digest the shipper parsed,
imphash included) or the algorithm's ``process.hash.*`` / ``file.hash.*`` field (events of other
shippers may lack ``related.hash``). The first sighting per host comes from a composite
aggregation by host with a ``top_hits`` of the earliest event (any number of hosts), so it never
depends on ``--limit``. Patient zero is the ``spread`` rule's: the earliest host of the first
``window`` that holds ``min_hosts`` hosts (:func:`detectors.builders.spread.spread_window`), so
a lone sighting long before the spread does not hide where it began; when no window holds
enough hosts, the earliest host.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch

# the spread rule's own definition of patient zero, so the CLI and the alert agree
from detectors.builders.spread import spread_window
from detectors.hunt.scope import Scope
from detectors.hunt.timeline import SOURCE, event_row, events_in_time_order
from detectors.loader import BUILTIN_DIR, load_rules
from detectors.model import SpreadParams
from detectors.query import events_pattern, get_path, iter_composite

SPREAD_RULE = "bad-hash-spread"
FALLBACK_WINDOW = 7 * 86400
FALLBACK_MIN_HOSTS = 2
_HEX = re.compile(r"[0-9a-f]+")
ALGORITHMS: dict[int, str] = {32: "md5", 40: "sha1", 64: "sha256", 96: "sha384", 128: "sha512"}


def spread_defaults() -> tuple[int, int]:
    """The built-in spread rule's ``window`` and ``min_hosts``."""
    for rule in load_rules([BUILTIN_DIR]).rules:
        if rule.id == SPREAD_RULE and isinstance(rule.params, SpreadParams):
            return rule.params.window, rule.params.min_hosts
    return FALLBACK_WINDOW, FALLBACK_MIN_HOSTS


def hash_clause(value: str) -> dict[str, Any]:
    """The events holding ``value`` (hex; its length names the algorithm; any case)."""
    digest = value.strip().lower()
    algo = ALGORITHMS.get(len(digest))
    if not _HEX.fullmatch(digest) or algo is None:
        raise ValueError(
            f"{value!r} is not a hash: expected hex digits of an MD5 / imphash (32), SHA1 (40), "
            "SHA256 (64), SHA384 (96) or SHA512 (128)"
        )
    fields = ["related.hash", f"process.hash.{algo}", f"file.hash.{algo}"]
    if algo == "md5":
        fields += ["process.pe.imphash", "file.pe.imphash"]
    return {"bool": {"should": [{"term": {f: digest}} for f in fields], "minimum_should_match": 1}}


@dataclass(frozen=True, slots=True)
class HashRequest:
    value: str
    scope: Scope = field(default_factory=Scope)
    limit: int | None = None
    first_only: bool = False
    window: int = FALLBACK_WINDOW
    min_hosts: int = FALLBACK_MIN_HOSTS


@dataclass(slots=True)
class Spread:
    """The first sighting per host (time order), patient zero, and whether it spread."""

    hosts: list[dict[str, Any]] = field(default_factory=list)
    patient_zero: dict[str, Any] | None = None
    spread_hosts: int = 0
    spread: bool = False

    def summary(self) -> str:
        head = f"summary: sightings={sum(h['count'] for h in self.hosts)} hosts={len(self.hosts)}"
        pz = self.patient_zero
        if pz is None:
            return head
        return (
            f"{head} patient_zero={pz['name']} first_seen={pz['first_seen']} "
            f"spread={'yes' if self.spread else 'no'} hosts_in_window={self.spread_hosts}"
        )


def first_sightings(es: Elasticsearch, prefix: str, req: HashRequest) -> Spread:
    query = req.scope.query([hash_clause(req.value)])
    top = {"top_hits": {"size": 1, "sort": [{"@timestamp": {"order": "asc"}}], "_source": list(SOURCE)}}
    hosts: list[dict[str, Any]] = []
    sources = [{"h": {"terms": {"field": "host.name"}}}]
    for b in iter_composite(es, events_pattern(prefix), query, sources, {"first": top}):
        hit = b["first"]["hits"]["hits"][0]
        hosts.append(
            {
                "name": str(b["key"]["h"]),
                "first_seen": hit["_source"].get("@timestamp"),
                "count": int(b["doc_count"]),
                "_hit": hit,
            }
        )
    hosts.sort(key=lambda h: (str(h["first_seen"]), h["name"]))
    out = Spread(hosts=hosts)
    if hosts:
        window = spread_window(hosts, req.window, req.min_hosts)
        out.patient_zero = window[0] if window else hosts[0]
        out.spread_hosts = len(window)
        out.spread = len(window) >= req.min_hosts
    return out


def _marked(hit: dict[str, Any], spread: Spread, firsts: set[str]) -> dict[str, Any]:
    row = event_row(hit, "first on host" if hit["_id"] in firsts else "")
    pz = spread.patient_zero
    if pz is not None and hit["_id"] == pz["_hit"]["_id"]:
        row["relation"] = "PATIENT ZERO"
    row["first_on_host"] = hit["_id"] in firsts
    row["patient_zero"] = pz is not None and hit["_id"] == pz["_hit"]["_id"]
    row["file"] = get_path(hit["_source"], "file.path")
    return row


def sighting_rows(
    es: Elasticsearch, prefix: str, req: HashRequest, spread: Spread
) -> Iterator[dict[str, Any]]:
    """Every sighting in time order (or only each host's first), patient zero marked."""
    firsts = {h["_hit"]["_id"] for h in spread.hosts}
    if req.first_only:
        chosen = spread.hosts if req.limit is None else spread.hosts[: req.limit]
        for h in chosen:
            row = _marked(h["_hit"], spread, firsts)
            row["count"] = h["count"]
            yield row
        return
    query = req.scope.query([hash_clause(req.value)])
    for hit in events_in_time_order(es, prefix, query, req.limit):
        yield _marked(hit, spread, firsts)

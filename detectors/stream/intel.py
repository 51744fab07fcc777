# STAND-IN: replaced by the full module at merge
"""Intel lists in memory for the stream stage's tests: exact values (hashes lower-cased), IPs
and CIDRs; no parent domains."""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from elasticsearch import Elasticsearch

from detectors.intel.indices import indicators_index
from detectors.intel.lookup import CASELESS_TYPES, FIELD_TYPES, manifests
from detectors.query import iter_pages

Key = tuple[str, str, str]  # (kind, feed, type)


@dataclass(frozen=True)
class IntelMemory:
    values: dict[Key, frozenset[str]] = field(default_factory=dict)
    nets: dict[Key, tuple[Any, ...]] = field(default_factory=dict)
    generations: dict[str, str] = field(default_factory=dict)

    def has(
        self,
        kind: Literal["intel", "allow"],
        field: str,
        value: str,
        feeds: tuple[str, ...] | None,
        types: tuple[str, ...] | None,
    ) -> bool:
        wanted = types if types is not None else FIELD_TYPES.get(field, ())
        try:
            addr: Any = ipaddress.ip_address(value)
        except ValueError:
            addr = None
        for (k, feed, t), vals in self.values.items():
            if k != kind or t not in wanted or (feeds is not None and feed not in feeds):
                continue
            if t == "ip":
                if addr is not None and str(addr) in vals:
                    return True
            elif value in vals or (
                (t in CASELESS_TYPES or t in ("md5", "sha1", "sha256")) and value.lower() in vals
            ):
                return True
        for (k, feed, t), nets in self.nets.items():
            if addr is None or k != kind or t not in wanted or (feeds is not None and feed not in feeds):
                continue
            if any(addr.version == n.version and addr in n for n in nets):
                return True
        return False


class IntelCache:
    def __init__(self, es: Elasticsearch, prefix: str, *, poll_seconds: float = 30.0) -> None:
        self.es, self.prefix, self.poll_seconds = es, prefix, poll_seconds
        self.error: str | None = None
        self._current: IntelMemory | None = None
        self._last = float("-inf")
        self._lock = threading.Lock()

    def current(self) -> IntelMemory | None:
        return self._current

    def poll(self, force: bool = False) -> bool:
        if not force and time.monotonic() - self._last < self.poll_seconds:
            return False
        self._last = time.monotonic()
        try:
            found = manifests(self.es, prefix=self.prefix)
            gens = {str(m["feed"]): str(m["generation_id"]) for m in found}
            if self._current is not None and gens == self._current.generations:
                self.error = None
                return False
            snap = self._build(found, gens)
        except Exception as exc:  # the shipper goes on; the schedule covers the window
            self.error = f"intel not loaded: {type(exc).__name__}: {exc}"
            return False
        with self._lock:
            self._current, self.error = snap, None
        return True

    def _build(self, found: list[dict[str, Any]], gens: dict[str, str]) -> IntelMemory:
        kinds = {str(m["feed"]): str(m.get("kind", "intel")) for m in found}
        values: dict[Key, set[str]] = {}
        nets: dict[Key, list[Any]] = {}
        if found:
            should = [
                {"bool": {"filter": [{"term": {"intel.feed": m["feed"]}},
                                     {"range": {"intel.generation": {"gte": int(m["generation"])}}}]}}
                for m in found
            ]  # fmt: skip
            query = {"bool": {"should": should, "minimum_should_match": 1}}
            for page in iter_pages(self.es, indicators_index(self.prefix), query, source=["intel"]):
                for h in page:
                    i = h["_source"]["intel"]
                    key = (kinds.get(i["feed"], "intel"), str(i["feed"]), str(i["type"]))
                    if i["type"] == "cidr":
                        nets.setdefault(key, []).append(ipaddress.ip_network(str(i["value"]), strict=False))
                    else:
                        values.setdefault(key, set()).add(str(i["value"]))
        return IntelMemory(
            {k: frozenset(v) for k, v in values.items()}, {k: tuple(v) for k, v in nets.items()}, gens
        )

"""The hashes to enrich: distinct values of the events' hash fields that no feed and no
allowlist lists, read with a composite aggregation paged by ``after_key``.

Feeds written by enrichment itself (``enrich-*``) do not count as knowing a hash: whether their
verdicts still hold is the verdict cache's business (age-out), not the events query's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from detectors.intel.lookup import Kind, lookup_clause, manifests
from detectors.intel.model import HASH_LENGTHS
from detectors.query import events_pattern, iso, iter_composite

from .cache import FEED_PREFIX

DEFAULT_FIELDS = ("process.hash.sha256", "file.hash.sha256")
_HEX = re.compile(r"[0-9a-f]+")


KINDS: tuple[Kind, ...] = ("intel", "allow")


def _other_feeds(es: Elasticsearch, prefix: str, kind: Kind) -> list[str]:
    return [
        str(m["feed"])
        for m in manifests(es, kind=kind, prefix=prefix)
        if not str(m["feed"]).startswith(FEED_PREFIX)
    ]


def unknown_query(
    es: Elasticsearch, prefix: str, field: str, *, since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    """Events holding ``field`` (within the time range) whose value no intel feed and no
    allowlist (other than enrichment's own) lists."""
    filters: list[dict[str, Any]] = [{"exists": {"field": field}}]
    if since is not None or until is not None:
        span: dict[str, str] = {}
        if since is not None:
            span["gte"] = iso(since)
        if until is not None:
            span["lt"] = iso(until)
        filters.append({"range": {"@timestamp": span}})
    must_not = [
        lookup_clause(es, field, kind=kind, feeds=_other_feeds(es, prefix, kind), prefix=prefix)
        for kind in KINDS
    ]
    return {"bool": {"filter": filters, "must_not": [c for c in must_not if "match_none" not in c]}}


def unknown_hashes(
    es: Elasticsearch,
    prefix: str,
    *,
    fields: Sequence[str] = DEFAULT_FIELDS,
    since: timedelta | None = None,
    now: datetime,
    page: int = 1000,
) -> Iterator[str]:
    """Each distinct unknown hash once (lower-case), field after field; values that are not an
    MD5, SHA-1 or SHA-256 are left out."""
    seen: set[str] = set()
    start = now - since if since is not None else None
    for field in fields:
        query = unknown_query(es, prefix, field, since=start, until=None)
        sources = [{"h": {"terms": {"field": field}}}]
        for bucket in iter_composite(es, events_pattern(prefix), query, sources, page_size=page):
            value = str(bucket["key"]["h"]).strip().lower()
            if value not in seen and len(value) in HASH_LENGTHS and _HEX.fullmatch(value):
                seen.add(value)
                yield value

"""The verdict cache in ``<prefix>-intel-enrich`` and the feeds built from it.

A verdict is one document per (service, hash), id ``verdict:<service>:<hash>``, overwritten by
each new lookup; it is *fresh* while younger than the age-out (``max_age``; ``unknown_max_age``
for "the service does not know it", which changes sooner as new samples are submitted).

Each service's malicious verdicts are one intel feed, ``enrich-<service>``, and its known-good
verdicts one allowlist, ``enrich-<service>-allow``, loaded with the feed loader
(:func:`detectors.intel.generation.load_items`: generations, atomic flip), so the intel_match
rules and the allowlist exceptions use them like any other feed. Every verdict ever given stays in
its feed until a newer lookup of the hash says otherwise. A feed is reloaded only when its
content changed (a digest in the manifest's ``source``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from detectors.intel.bulk import Bulk
from detectors.intel.generation import LoadResult, load_items
from detectors.intel.indices import enrich_index
from detectors.intel.manifest import parse_iso, read_state
from detectors.intel.model import HASH_LENGTHS, Indicator

from .model import Verdict, VerdictKind

FEED_PREFIX = "enrich-"
_PAGE = 1000
_FEED_VERDICT: dict[str, VerdictKind] = {"intel": "malicious", "allow": "known_good"}


def verdict_id(service: str, h: str) -> str:
    return f"verdict:{service}:{h}"


def feed_name(service: str, kind: str) -> str:
    return f"{FEED_PREFIX}{service}" if kind == "intel" else f"{FEED_PREFIX}{service}-allow"


def cached(es: Elasticsearch, prefix: str, service: str, hashes: Sequence[str]) -> dict[str, Verdict]:
    if not hashes:
        return {}
    resp = es.mget(index=enrich_index(prefix), ids=[verdict_id(service, h) for h in hashes])
    return {d["_source"]["hash"]: Verdict.from_doc(d["_source"]) for d in resp["docs"] if d.get("found")}


def is_fresh(v: Verdict, now: datetime, max_age: timedelta, unknown_max_age: timedelta) -> bool:
    age = now - parse_iso(v.checked_at)
    return age < (unknown_max_age if v.verdict == "unknown" else max_age)


def save(es: Elasticsearch, prefix: str, verdicts: Sequence[Verdict]) -> None:
    bulk = Bulk(es)
    for v in verdicts:
        bulk.index(enrich_index(prefix), verdict_id(v.service, v.hash), v.doc())
    bulk.flush()
    if bulk.errors:
        doc_id, reason = bulk.errors[0]
        raise RuntimeError(f"Elasticsearch rejected verdict {doc_id}: {reason}")


def verdicts_of(es: Elasticsearch, prefix: str, service: str, verdict: VerdictKind) -> Iterator[Verdict]:
    """Every cached verdict of ``service`` saying ``verdict``, by hash (search_after paging)."""
    after: list[Any] | None = None
    while True:
        kwargs: dict[str, Any] = {"search_after": after} if after else {}
        resp = es.search(
            index=enrich_index(prefix),
            size=_PAGE,
            query={"bool": {"filter": [{"term": {"service": service}}, {"term": {"verdict": verdict}}]}},
            sort=[{"hash": "asc"}],
            **kwargs,
        )
        hits = resp["hits"]["hits"]
        for h in hits:
            yield Verdict.from_doc(h["_source"])
        if len(hits) < _PAGE:
            return
        after = hits[-1]["sort"]


def indicator(v: Verdict, provider: str, line: int) -> Indicator:
    extra = (*v.detail, ("checked_at", v.checked_at), ("service", v.service))
    return Indicator(
        type=HASH_LENGTHS[len(v.hash)],
        value=v.hash,
        line=line,
        first_seen=v.first_seen,
        last_seen=v.last_seen,
        confidence=v.score,
        description=v.description,
        malware=v.malware,
        reference=v.reference,
        provider=provider,
        extra=tuple(sorted(extra)),
    )


def publish(es: Elasticsearch, prefix: str, service: str, provider: str, kind: str) -> LoadResult | None:
    """Load the service's verdicts of ``kind``'s sort as its feed when they changed; None when
    nothing changed (or there is nothing and never was)."""
    name = feed_name(service, kind)
    digest, count = hashlib.sha256(), 0
    for v in verdicts_of(es, prefix, service, _FEED_VERDICT[kind]):  # a first pass: memory stays flat
        digest.update(json.dumps(v.doc(), sort_keys=True).encode() + b"\n")
        count += 1
    state = read_state(es, name, prefix=prefix)
    if state is None and not count:
        return None
    if state is not None and (state.doc.get("source") or {}).get("digest") == digest.hexdigest():
        return None
    items = (
        indicator(v, provider, i + 1)
        for i, v in enumerate(verdicts_of(es, prefix, service, _FEED_VERDICT[kind]))
    )
    source = {"location": f"enrich:{service}", "format": "enrich", "digest": digest.hexdigest()}
    # our own verdicts, not a download that could come back truncated: an empty list is real
    return load_items(es, items, name=name, kind=kind, prefix=prefix, source=source, force=True)

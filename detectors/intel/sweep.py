"""What a load leaves behind and deletes: indicator documents below the new generation,
retired generations' chunks past their grace, and a refused load's new indicators."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from elasticsearch import Elasticsearch, helpers

from .bulk import delete_ids, scan_ids
from .config import FeedKind
from .indices import indicators_index, lookup_index
from .manifest import FeedState, parse_iso, read_state, update_state, utc_now

DEFAULT_GRACE = 120.0  # seconds a retired generation outlives its retirement (besides N-1)


def cleanup(
    es: Elasticsearch, prefix: str, feed: str, kind: FeedKind | str, generation: int, grace: float
) -> int:
    """After the flip to ``generation``: delete stale indicator documents and the chunks of old
    retired generations (all but the newest retired one, after ``grace`` seconds)."""
    stale = {
        "bool": {
            "filter": [{"term": {"intel.feed": feed}}, {"range": {"intel.generation": {"lt": generation}}}]
        }
    }
    deleted = delete_ids(es, indicators_index(prefix), scan_ids(es, indicators_index(prefix), stale))
    state = read_state(es, feed, prefix=prefix)
    if state is None:
        return deleted
    retired = list(state.doc.get("retired", []))
    limit = utc_now() - timedelta(seconds=grace)
    keep, drop = [], []
    for i, gen in enumerate(retired):
        newest = i == len(retired) - 1
        if newest or parse_iso(str(gen["retired_at"])) > limit:
            keep.append(gen)
        else:
            drop.append(gen)
    if drop:
        deleted += delete_ids(es, lookup_index(prefix), (c for gen in drop for c in gen.get("chunks", [])))

        def change(doc: dict[str, Any]) -> None:
            gone = {g["generation_id"] for g in drop}
            doc["retired"] = [g for g in doc.get("retired", []) if g["generation_id"] not in gone]

        update_state(es, prefix, feed, change, str(kind))
    if deleted:
        es.indices.refresh(index=f"{indicators_index(prefix)},{lookup_index(prefix)}")
    return deleted


def drop_new_indicators(
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
    delete_ids(es, index, stale)
    es.indices.refresh(index=index)

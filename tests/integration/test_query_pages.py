"""Paging through a query's hits (detectors.query.iter_pages) on the real node."""

from __future__ import annotations

import pytest
from elasticsearch import ApiError, Elasticsearch

from detectors.query import iter_pages


def test_a_shard_that_fails_raises_instead_of_leaving_its_hits_out(es: Elasticsearch, prefix: str) -> None:
    # the same field mapped as keyword in one index and long in another: a term that is not a
    # number fails on the long index's shard; Elasticsearch's default answer is the other hits
    es.indices.create(index=f"{prefix}-a", mappings={"properties": {"f": {"type": "keyword"}}})
    es.indices.create(index=f"{prefix}-b", mappings={"properties": {"f": {"type": "long"}}})
    es.index(index=f"{prefix}-a", id="1", document={"f": "abc"}, refresh=True)
    es.index(index=f"{prefix}-b", id="2", document={"f": 5}, refresh=True)
    partial = es.search(index=f"{prefix}-*", query={"term": {"f": "abc"}})
    assert partial["_shards"]["failed"] == 1 and [h["_id"] for h in partial["hits"]["hits"]] == ["1"]
    with pytest.raises(ApiError, match="abc"):
        list(iter_pages(es, f"{prefix}-*", {"term": {"f": "abc"}}))
    # a query every shard can run still pages through all of them
    got = [h["_id"] for page in iter_pages(es, f"{prefix}-*", {"exists": {"field": "f"}}) for h in page]
    assert sorted(got) == ["1", "2"]

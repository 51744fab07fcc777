"""Stream alerts' ancestry from the cluster right after a restart: the process starts that the
run before had indexed are not searchable until the next refresh, and the chain must still be
the one the scheduled engine writes later."""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from detectors.stream.processes import ProcessCache
from shipper.templates import install


def _creation(eid: str, parent: str | None) -> dict[str, Any]:
    proc: dict[str, Any] = {"entity_id": eid, "executable": f"C:\\{eid}.exe", "pid": len(eid)}
    if parent:
        proc["parent"] = {"entity_id": parent}
    return {
        "@timestamp": "2026-11-02T00:00:00.000Z",
        "event": {"code": "1"},
        "host": {"name": "h"},
        "process": proc,
    }


def test_a_chain_indexed_just_before_a_restart_is_found_complete(es: Elasticsearch, prefix: str) -> None:
    install(es, prefix)
    index = f"{prefix}-events-2026.11"
    es.indices.create(index=index, settings={"index": {"refresh_interval": -1}})  # no refresh by itself
    for eid, parent in (("a", None), ("b", "a"), ("c", "b")):
        es.index(index=index, id=eid, document=_creation(eid, parent))  # not searchable yet
    cache = ProcessCache()  # a shipper just restarted: nothing seen in its stream
    chain = cache.chains(es, prefix, [("h", "c")], depth=8)[("h", "c")]
    assert [link.entity_id for link in chain.links] == ["c", "b", "a"]
    assert not chain.broken and not chain.truncated


def test_a_chain_the_cache_holds_whole_needs_no_refresh(es: Elasticsearch, prefix: str) -> None:
    install(es, prefix)
    index = f"{prefix}-events-2026.11"
    es.indices.create(index=index, settings={"index": {"refresh_interval": -1}})
    es.index(index=index, id="x", document=_creation("x", None))  # only in the cluster, unrefreshed
    cache = ProcessCache()
    for eid, parent in (("a", None), ("b", "a")):
        cache.see(_creation(eid, parent))
    chain = cache.chains(es, prefix, [("h", "b")], depth=8)[("h", "b")]
    assert [link.entity_id for link in chain.links] == ["b", "a"]
    assert es.count(index=index)["count"] == 0  # no refresh was asked for

"""Every Elasticsearch feature the project relies on works on the node the tests use.

The integration-test distribution is smaller than a stock Elasticsearch; docs/architecture.md
lists what it lacks. These tests prove what we use is there, and pin what is not.
"""

from __future__ import annotations

import pytest
from elasticsearch import ApiError, AuthenticationException, ConflictError, Elasticsearch, helpers

from devtools import es as devnode
from shipper.es import ClusterSettings, check_cluster, make_client


def _setup_templates(es: Elasticsearch, prefix: str) -> None:
    es.cluster.put_component_template(
        name=f"{prefix}-c",
        template={
            "settings": {
                "number_of_replicas": 0,
                "analysis": {"normalizer": {"caseless": {"type": "custom", "filter": ["lowercase"]}}},
            },
            "mappings": {
                "dynamic": False,
                "properties": {
                    "path": {
                        "type": "keyword",
                        "fields": {
                            "caseless": {"type": "keyword", "normalizer": "caseless"},
                            "text": {"type": "text"},
                        },
                    },
                    "ip": {"type": "ip"},
                    "host": {"type": "keyword"},
                    "n": {"type": "long"},
                    "ts": {"type": "date"},
                },
            },
        },
    )
    es.indices.put_index_template(
        name=f"{prefix}-t",
        index_patterns=[f"{prefix}-ev-*"],
        composed_of=[f"{prefix}-c"],
        priority=500,
        template={"aliases": {f"{prefix}-ev": {}}},
    )


def _docs(prefix: str, n: int) -> list[dict[str, object]]:
    return [
        {
            "_op_type": "create",
            "_index": f"{prefix}-ev-2024.0{1 + i % 2}",
            "_id": f"d{i}",
            "path": "C:\\Windows\\System32\\CMD.exe" if i % 3 == 0 else f"C:\\tools\\t{i}.exe",
            "ip": f"10.0.{i % 4}.{i % 250 + 1}" if i % 2 == 0 else f"192.0.2.{i % 250 + 1}",
            "host": f"h{i % 5}",
            "n": i,
            "ts": f"2024-0{1 + i % 2}-01T00:00:{i % 60:02d}Z",
        }
        for i in range(n)
    ]


def test_composable_templates_alias_normaliser_and_ip(es: Elasticsearch, prefix: str) -> None:
    _setup_templates(es, prefix)
    ok, errors = helpers.bulk(es, _docs(prefix, 300), refresh="wait_for", raise_on_error=False)
    assert ok == 300 and not errors
    # Template applied (alias on both monthly indices) and mapping from the component.
    assert es.count(index=f"{prefix}-ev")["count"] == 300
    mapping = es.indices.get_mapping(index=f"{prefix}-ev-2024.01")
    props = next(iter(mapping.values()))["mappings"]["properties"]
    assert props["ip"]["type"] == "ip" and props["path"]["fields"]["caseless"]["normalizer"] == "caseless"
    # Lower-case normaliser: a case-insensitive term match.
    r = es.count(index=f"{prefix}-ev", query={"term": {"path.caseless": "c:\\windows\\system32\\cmd.exe"}})
    assert r["count"] == 100
    # terms with CIDR values on an ip field.
    r = es.count(index=f"{prefix}-ev", query={"terms": {"ip": ["10.0.0.0/16", "203.0.113.0/24"]}})
    assert r["count"] == 150


def test_bulk_create_conflicts_on_repeated_id(es: Elasticsearch, prefix: str) -> None:
    _setup_templates(es, prefix)
    docs = _docs(prefix, 10)
    helpers.bulk(es, docs, refresh="wait_for")
    ok, errors = helpers.bulk(es, docs, raise_on_error=False)
    assert ok == 0
    assert len(errors) == 10 and all(e["create"]["status"] == 409 for e in errors)  # type: ignore[index]
    with pytest.raises(ConflictError):
        es.create(index=f"{prefix}-ev-2024.01", id="d0", document={"n": 1})


def test_terms_lookup_from_another_index(es: Elasticsearch, prefix: str) -> None:
    _setup_templates(es, prefix)
    helpers.bulk(es, _docs(prefix, 100), refresh="wait_for")
    es.index(
        index=f"{prefix}-lookup",
        id="ips",
        document={"values": ["10.0.1.0/24", "192.0.2.2"]},
        refresh="wait_for",
    )
    es.index(
        index=f"{prefix}-lookup",
        id="paths",
        document={"values": ["c:\\windows\\system32\\cmd.exe"]},
        refresh="wait_for",
    )
    q = {"terms": {"ip": {"index": f"{prefix}-lookup", "id": "ips", "path": "values"}}}
    expected = sum(
        1 for d in _docs(prefix, 100) if str(d["ip"]).startswith("10.0.1.") or d["ip"] == "192.0.2.2"
    )
    assert es.count(index=f"{prefix}-ev", query=q)["count"] == expected
    q2 = {"terms": {"path.caseless": {"index": f"{prefix}-lookup", "id": "paths", "path": "values"}}}
    assert es.count(index=f"{prefix}-ev", query=q2)["count"] == 34


def test_composite_and_terms_aggregations(es: Elasticsearch, prefix: str) -> None:
    _setup_templates(es, prefix)
    helpers.bulk(es, _docs(prefix, 200), refresh="wait_for")
    seen: dict[str, int] = {}
    after = None
    while True:
        comp: dict[str, object] = {"size": 2, "sources": [{"host": {"terms": {"field": "host"}}}]}
        if after:
            comp["after"] = after
        r = es.search(
            index=f"{prefix}-ev",
            size=0,
            aggs={"c": {"composite": comp, "aggs": {"first": {"min": {"field": "ts"}}}}},
        )
        buckets = r["aggregations"]["c"]["buckets"]
        for b in buckets:
            seen[b["key"]["host"]] = b["doc_count"]
        after = r["aggregations"]["c"].get("after_key")
        if not buckets:
            break
    assert seen == {f"h{i}": 40 for i in range(5)}
    r = es.search(index=f"{prefix}-ev", size=0, aggs={"t": {"terms": {"field": "host", "size": 10}}})
    assert sorted(b["key"] for b in r["aggregations"]["t"]["buckets"]) == [f"h{i}" for i in range(5)]


def test_point_in_time_with_search_after_reads_past_10000(es: Elasticsearch, prefix: str) -> None:
    _setup_templates(es, prefix)
    n = 10_500
    helpers.bulk(es, _docs(prefix, n), refresh="wait_for", chunk_size=2000)
    pit = es.open_point_in_time(index=f"{prefix}-ev", keep_alive="1m")["id"]
    seen = set()
    after = None
    try:
        while True:
            kwargs: dict[str, object] = {}
            if after is not None:
                kwargs["search_after"] = after
            r = es.search(
                size=5000, pit={"id": pit, "keep_alive": "1m"}, sort=[{"n": "asc"}], source=False, **kwargs
            )
            hits = r["hits"]["hits"]
            if not hits:
                break
            seen.update(h["_id"] for h in hits)
            after = hits[-1]["sort"]
            pit = r.get("pit_id", pit)
    finally:
        es.close_point_in_time(id=pit)
    assert len(seen) == n


def test_alias_swap_is_atomic(es: Elasticsearch, prefix: str) -> None:
    es.indices.create(index=f"{prefix}-a1")
    es.indices.create(index=f"{prefix}-a2")
    es.indices.update_aliases(actions=[{"add": {"index": f"{prefix}-a1", "alias": f"{prefix}-cur"}}])
    es.indices.update_aliases(
        actions=[
            {"remove": {"index": f"{prefix}-a1", "alias": f"{prefix}-cur"}},
            {"add": {"index": f"{prefix}-a2", "alias": f"{prefix}-cur"}},
        ]
    )
    assert list(es.indices.get_alias(name=f"{prefix}-cur")) == [f"{prefix}-a2"]


def test_optimistic_concurrency_with_seq_no(es: Elasticsearch, prefix: str) -> None:
    r = es.index(index=f"{prefix}-state", id="lease", document={"owner": "a"}, refresh="wait_for")
    seq, term = r["_seq_no"], r["_primary_term"]
    es.index(
        index=f"{prefix}-state", id="lease", document={"owner": "b"}, if_seq_no=seq, if_primary_term=term
    )
    with pytest.raises(ConflictError):
        es.index(
            index=f"{prefix}-state", id="lease", document={"owner": "c"}, if_seq_no=seq, if_primary_term=term
        )


def test_what_this_distribution_lacks(es: Elasticsearch, prefix: str) -> None:
    """Pinned so a change of distribution is noticed: docs/architecture.md designs around these."""
    es.index(index=f"{prefix}-x", id="1", document={"a": 1}, refresh="wait_for")
    with pytest.raises(ApiError):  # no painless
        es.update(index=f"{prefix}-x", id="1", script={"source": "ctx._source.a = 2"})
    with pytest.raises(ApiError):  # no mapper-extras / wildcard types
        es.indices.create(index=f"{prefix}-y", mappings={"properties": {"m": {"type": "match_only_text"}}})


def test_check_cluster_reports_version(es: Elasticsearch, es_settings: ClusterSettings) -> None:
    assert check_cluster(es, es_settings.url).startswith(f"{devnode.ES_VERSION.split('.')[0]}.")


def test_security_tls_and_file_realm_users(es_secure: devnode.NodeInfo) -> None:
    base = ClusterSettings(url=es_secure.url, ca_certs=es_secure.ca_cert)
    admin = make_client(
        ClusterSettings(**{**base.__dict__, "username": "elastic", "password": es_secure.password})
    )
    assert check_cluster(admin).startswith("9.")
    shipper = make_client(
        ClusterSettings(**{**base.__dict__, "username": "shipper", "password": "shipper-pass-1234"})
    )
    shipper.index(index="sec-events-1", document={"a": 1}, op_type="create", refresh="wait_for")
    reader = make_client(
        ClusterSettings(**{**base.__dict__, "username": "reader", "password": "reader-pass-1234"})
    )
    assert reader.count(index="sec-events-1")["count"] == 1
    with pytest.raises(ApiError) as denied:
        reader.index(index="sec-events-1", document={"a": 2})
    assert denied.value.meta.status == 403
    with pytest.raises(AuthenticationException):
        make_client(ClusterSettings(**{**base.__dict__, "username": "shipper", "password": "wrong"})).count(
            index="sec-events-1"
        )


def test_api_keys_unavailable_on_this_distribution(es_secure: devnode.NodeInfo) -> None:
    """API keys live in the .security index, whose mapping needs the analysis-common module this
    distribution lacks. Pinned here so the day it works, the security tests switch to API keys."""
    admin = make_client(
        ClusterSettings(
            url=es_secure.url, ca_certs=es_secure.ca_cert, username="elastic", password=es_secure.password
        )
    )
    with pytest.raises(ApiError) as exc:
        admin.security.create_api_key(name="probe")
    assert "pattern_capture" in str(exc.value)

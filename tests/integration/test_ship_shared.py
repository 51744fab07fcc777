"""Ship all of ../shared/data/sysmon once per module; counts, reruns and mappings against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from shipper.es import ClusterSettings
from shipper.pipeline import Stats, expand_inputs, iter_documents
from tests.shared_data import evtx_manifest, otrf_manifest, sysmon_data

SHIP = [sys.executable, "-c", "from shipper.cli import main; main()"]


def run_cli(
    args: list[str], settings: ClusterSettings, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ES_")}
    env["ES_URL"] = settings.url
    if settings.username:
        env["ES_USERNAME"] = settings.username
        env["ES_PASSWORD"] = settings.password or ""
    if settings.ca_certs:
        env["ES_CA_CERTS"] = settings.ca_certs
    proc = subprocess.run([*SHIP, *args], env=env, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"sysmon-ship {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def expected_counts() -> Counter[int]:
    total: Counter[int] = Counter()
    for e in evtx_manifest():
        total.update(e.sysmon_eid_counts)
    for z in otrf_manifest():
        total.update(z.sysmon_eid_counts)
    return total


def counts_by_code(es: Elasticsearch, index: str) -> Counter[int]:
    es.indices.refresh(index=index)
    resp = es.search(
        index=index,
        size=0,
        query={"term": {"event.provider": "Microsoft-Windows-Sysmon"}},
        aggs={"ids": {"terms": {"field": "event.code", "size": 500}}},
    )
    return Counter({int(b["key"]): b["doc_count"] for b in resp["aggregations"]["ids"]["buckets"]})


def drop_prefix(es: Elasticsearch, p: str) -> None:
    names = list(es.options(ignore_status=404).indices.get(index=f"{p}-*", expand_wildcards="all"))
    for i in range(0, len(names), 50):
        es.options(ignore_status=404).indices.delete(index=",".join(names[i : i + 50]))
    es.options(ignore_status=404).indices.delete_index_template(name=f"{p}-events")
    for name in ("events-settings", "events-mappings"):
        es.options(ignore_status=404).cluster.delete_component_template(name=f"{p}-{name}")


@pytest.fixture(scope="module")
def shared_inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The EVTX folder plus the OTRF zips unpacked (the shipper reads files, not archives)."""
    data = sysmon_data()
    otrf = tmp_path_factory.mktemp("otrf")
    for z in otrf_manifest():
        with zipfile.ZipFile(z.path) as zf:
            zf.extractall(otrf / z.path.stem)
    return [str(data / "evtx-attack-samples"), str(otrf)]


@pytest.fixture(scope="module")
def shipped(
    es: Elasticsearch,
    es_settings: ClusterSettings,
    shared_inputs: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    p = f"t{uuid.uuid4().hex[:10]}"
    state = tmp_path_factory.mktemp("state")
    run_cli(["setup", "--index-prefix", p], es_settings)
    proc = run_cli(
        [
            "ship",
            *shared_inputs,
            "--index-prefix",
            p,
            "--state-dir",
            str(state),
            "--json",
            "--in-flight",
            "3",
        ],
        es_settings,
    )
    summary = json.loads(proc.stdout)
    yield {"prefix": p, "state": str(state), "summary": summary, "inputs": shared_inputs}
    drop_prefix(es, p)


@pytest.fixture(scope="module")
def local_view(shared_inputs: list[str]) -> dict[str, Any]:
    """What the pipeline makes of the inputs without a cluster: read counts, distinct ``_id``s per
    event ID (the data holds real repeated records: one EVTX file in two folders, and OTRF
    datasets that log the same record twice), and every leaf field."""
    stats = Stats()
    ids: dict[str, int] = {}
    leaves: set[str] = set()
    for item in iter_documents(expand_inputs(shared_inputs), stats=stats):
        code = (item.doc.get("event") or {}).get("code")
        if item.doc.get("event", {}).get("provider") == "Microsoft-Windows-Sysmon" and code:
            ids.setdefault(item.doc_id, int(code))
        leaves.update(_leaves(item.doc))
    return {"stats": stats, "distinct": Counter(ids.values()), "leaves": leaves}


def test_counts_per_event_id_equal_the_manifests(
    es: Elasticsearch, shipped: dict[str, Any], local_view: dict[str, Any]
) -> None:
    expected = expected_counts()
    assert sum(expected.values()) == 3160 + 75305
    s = shipped["summary"]
    # every Sysmon record of the manifests was read and shipped (or found already there) ...
    assert Counter({int(k): v for k, v in s["pipeline"]["sysmon_by_id"].items()}) == expected
    assert s["dead_lettered"] == 0
    assert s["shipped"] + s["duplicates"] == s["documents"]
    # ... and Elasticsearch holds exactly one document per distinct event
    got = counts_by_code(es, f"{shipped['prefix']}-events")
    assert got == local_view["distinct"]
    total = es.count(index=f"{shipped['prefix']}-events")["count"]
    assert total == s["shipped"]


def test_rerun_and_from_start_make_no_new_documents(
    es: Elasticsearch, es_settings: ClusterSettings, shipped: dict[str, Any]
) -> None:
    p, state, first = shipped["prefix"], shipped["state"], shipped["summary"]
    base = ["ship", *shipped["inputs"], "--index-prefix", p, "--state-dir", state, "--json"]
    again = json.loads(run_cli(base, es_settings).stdout)
    assert again["shipped"] == 0
    assert again["skipped_sources"] == first["sources"]
    assert again["duplicates"] == 0

    evtx_only = [
        "ship",
        shipped["inputs"][0],
        "--index-prefix",
        p,
        "--state-dir",
        state,
        "--json",
        "--from-start",
    ]
    forced = json.loads(run_cli(evtx_only, es_settings).stdout)
    assert forced["shipped"] == 0
    assert forced["skipped_sources"] == 0
    assert forced["duplicates"] == forced["documents"] > 3160 - 1
    es.indices.refresh(index=f"{p}-events")
    assert es.count(index=f"{p}-events")["count"] == first["shipped"]


def _mapped_leaves(mapping: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for name, spec in (mapping.get("properties") or {}).items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            out.update(_mapped_leaves(spec, path + "."))
        if "type" in spec and spec["type"] != "object":
            out[path] = spec["type"]
    return out


def _leaves(doc: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _leaves(v, f"{prefix}{k}.")
    elif isinstance(doc, list):
        for v in doc:
            yield from _leaves(v, prefix)
    else:
        yield prefix[:-1]


def test_every_field_of_every_document_is_mapped(
    es: Elasticsearch,
    shipped: dict[str, Any],
    local_view: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Read the mapping back; every leaf of every document (shared data and the generator) has an
    explicit type, and the only dynamically mapped fields are EventData keywords."""
    p = shipped["prefix"]
    mappings = es.indices.get_mapping(index=f"{p}-events-*")
    mapped: dict[str, str] = {}
    for body in mappings.values():
        for path, es_type in _mapped_leaves(body["mappings"]).items():
            assert mapped.setdefault(path, es_type) == es_type, f"{path} mapped two ways"
    assert body["mappings"]["dynamic"] in ("false", False)
    allowed = {"keyword", "text", "long", "date", "ip", "boolean"}
    assert set(mapped.values()) <= allowed
    for path, es_type in mapped.items():
        if path.startswith("winlog.event_data."):
            assert es_type == "keyword", path

    gen = tmp_path_factory.mktemp("gen")
    subprocess.run(
        [sys.executable, "-m", "samples", "generate", "--out", str(gen), "--events", "3000", "--seed", "3"],
        check=True,
        capture_output=True,
    )
    unmapped: Counter[str] = Counter()
    seen = 0
    forms = [str(gen / n) for n in ("winlogbeat.ndjson", "nxlog.ndjson", "sysmon.xml", "sysmon.txt")]
    leaves = set(local_view["leaves"])
    for item in iter_documents(expand_inputs(forms)):
        seen += 1
        leaves.update(_leaves(item.doc))
    for leaf in sorted(leaves):
        if leaf.startswith("winlog.event_data."):
            continue  # keyword by the dynamic template, checked above
        if leaf not in mapped:
            unmapped[leaf] += 1
    assert seen == 4 * 3000
    assert not unmapped, f"fields without a mapping: {dict(unmapped)}"

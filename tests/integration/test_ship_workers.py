"""``ship --workers 2``: the same documents and checkpoints as ``--workers 1``, exact after a kill.

The folder holds the generated forms split into several files (with records of another
provider, some at the very end of a file: records that make no document) and a few of the
shared EVTX files, so sources of every kind end and begin inside one parallel read.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan

from shipper.es import ClusterSettings
from shipper.pipeline import Stats, expand_inputs, iter_documents
from tests.integration.test_ship_robustness import SHIP, _env, acked, count, run, wait_for
from tests.shared_data import evtx_manifest

EVENTS = 12_000
HOST = ["--host", "WS-TEXT"]


def _other_provider(line: str) -> str:
    doc = json.loads(line)
    doc["winlog"]["provider_name"] = "Microsoft-Windows-Security-Auditing"
    doc["winlog"]["channel"] = "Security"
    doc.get("event", {}).pop("provider", None)
    return json.dumps(doc)


def _split(lines: list[str], parts: int) -> list[list[str]]:
    size = -(-len(lines) // parts)
    return [lines[i : i + size] for i in range(0, len(lines), size)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gen = tmp_path_factory.mktemp("gen")
    subprocess.run(
        [
            *(sys.executable, "-m", "samples", "generate", "--out", str(gen)),
            *("--events", str(EVENTS), "--seed", "23", "--forms", "xml,winlogbeat,nxlog,text"),
        ],
        check=True,
        capture_output=True,
    )
    out = tmp_path_factory.mktemp("inputs")
    for form in ("winlogbeat", "nxlog"):
        lines = (gen / f"{form}.ndjson").read_text(encoding="utf-8").splitlines()
        for i, part in enumerate(_split(lines, 3)):
            if form == "winlogbeat" and i == 0:
                # another provider in the middle and at the very end: records without a document
                for j in (5, 6, len(part) - 3, len(part) - 2, len(part) - 1):
                    part[j] = _other_provider(part[j])
            (out / f"{form}-{i}.ndjson").write_text("\n".join(part) + "\n", encoding="utf-8")
    xml = (gen / "sysmon.xml").read_text(encoding="utf-8").splitlines()
    events = [line for line in xml if line.startswith("<Event ")]
    assert len(events) == len(xml) - 2
    for i, part in enumerate(_split(events, 3)):
        (out / f"sysmon-{i}.xml").write_text(
            "<Events>\n" + "\n".join(part) + "\n</Events>\n", encoding="utf-8"
        )
    blocks = (gen / "sysmon.txt").read_text(encoding="utf-8").strip("\n").split("\n\n")
    for i, part in enumerate(_split(blocks, 2)):
        (out / f"sysmon-{i}.txt").write_text("\n\n".join(part) + "\n", encoding="utf-8")
    evtx = out / "evtx"
    evtx.mkdir()
    for entry in sorted(evtx_manifest(), key=lambda e: e.total_events)[-4:]:
        shutil.copy(entry.path, evtx / entry.path.name)
    return out


@pytest.fixture(scope="module")
def local(folder: Path) -> dict[str, Any]:
    """What the pipeline makes of the folder, per source: records, and ``(seq, _id)`` of each
    document."""
    paths = expand_inputs([str(folder)])
    docs: dict[str, list[tuple[int, str]]] = {p: [] for p in paths}
    stats = Stats()
    for item in iter_documents(paths, host="WS-TEXT", stats=stats):
        docs[item.source].append((item.seq, item.doc_id))
    assert stats.other_providers and not stats.errors
    return {"paths": paths, "docs": docs, "stats": stats}


def _ship(prefix: str, state: Path, folder: Path, *extra: str) -> list[str]:
    return [
        *(*SHIP, "ship", str(folder), "--index-prefix", prefix),
        *("--state-dir", str(state), "--json", *HOST, *extra),
    ]


def _ids(es: Elasticsearch, prefix: str) -> Counter[str]:
    es.indices.refresh(index=f"{prefix}-events*")
    return Counter(hit["_id"] for hit in scan(es, index=f"{prefix}-events", query={"_source": False}))


def _checkpoints(state: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for f in (state / "checkpoints").glob("*.json"):
        if not f.name.startswith("."):
            data = json.loads(f.read_text())
            data.pop("updated")  # when it was written
            out[data["path"]] = data
    return out


def test_workers_2_ships_what_workers_1_ships(
    es: Elasticsearch,
    es_settings: ClusterSettings,
    prefix: str,
    folder: Path,
    local: dict[str, Any],
    tmp_path: Path,
) -> None:
    url = es_settings.url
    one, two = f"{prefix}-w1", f"{prefix}-w2"
    summaries = {}
    for p, workers in ((one, "1"), (two, "2")):
        run([*SHIP, "setup", "--index-prefix", p], url)
        args = _ship(p, tmp_path / p, folder, "--workers", workers, "--bulk-docs", "500")
        summaries[p] = json.loads(run(args, url).stdout)
    first, second = summaries[one], summaries[two]
    sources = len(local["paths"])
    for s in (first, second):
        assert (s["sources"], s["skipped_sources"], s["resumed_sources"]) == (sources, 0, 0)
        assert s["dead_lettered"] == 0 and s["errors"] == 0
    assert second["pipeline"] == first["pipeline"]
    assert (second["shipped"], second["duplicates"]) == (first["shipped"], first["duplicates"])
    assert second["pipeline"]["records"] == local["stats"].records
    ids = _ids(es, one)
    assert ids == _ids(es, two)
    assert set(ids) == {doc_id for docs in local["docs"].values() for _, doc_id in docs}

    cps = _checkpoints(tmp_path / one)
    assert _checkpoints(tmp_path / two) == cps
    assert sorted(cps) == sorted(os.path.abspath(p) for p in local["paths"])
    assert all(cp["done"] for cp in cps.values())
    assert acked(tmp_path / two) == local["stats"].records

    again = json.loads(run(_ship(two, tmp_path / two, folder, "--workers", "2"), url).stdout)
    assert (again["skipped_sources"], again["sources"], again["documents"]) == (sources, 0, 0)
    assert again["shipped"] == again["duplicates"] == 0
    assert _checkpoints(tmp_path / two) == cps


def test_sigkill_halfway_with_workers_then_rerun_gives_exact_counts(
    es: Elasticsearch,
    es_settings: ClusterSettings,
    prefix: str,
    folder: Path,
    local: dict[str, Any],
    tmp_path: Path,
) -> None:
    url = es_settings.url
    run([*SHIP, "setup", "--index-prefix", prefix], url)
    state = tmp_path / "state"
    args = _ship(prefix, state, folder, "--workers", "2", "--bulk-docs", "300", "--in-flight", "2")
    proc = subprocess.Popen(args, env=_env(url), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: acked(state) > 0 or proc.poll() is not None)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    at_kill = _checkpoints(state)
    records = local["stats"].records
    assert 0 < acked(state) < records
    distinct = len({doc_id for docs in local["docs"].values() for _, doc_id in docs})
    assert 0 < count(es, prefix) < distinct

    # the rerun reads each source after its acknowledged records (done ones not at all)
    expected_docs = 0
    done = resumed = 0
    for path, docs in local["docs"].items():
        cp = at_kill.get(os.path.abspath(path))
        skip = cp["acked"] if cp else 0
        if cp and cp["done"]:
            done += 1
            continue
        resumed += skip > 0
        expected_docs += sum(1 for seq, _ in docs if seq > skip)
    second = json.loads(run(args, url).stdout)
    assert (second["skipped_sources"], second["resumed_sources"]) == (done, resumed)
    assert second["documents"] == expected_docs
    assert second["shipped"] + second["duplicates"] == expected_docs
    assert count(es, prefix) == distinct
    assert acked(state) == records
    assert all(cp["done"] for cp in _checkpoints(state).values())
    third = json.loads(run(args, url).stdout)
    assert third["skipped_sources"] == len(local["paths"]) and third["documents"] == 0

"""All of the shared Sysmon data mapped without a cluster: no mapping error, Sysmon counts per event
ID equal to the manifests, and every leaf field of every document declared in the field table."""

from __future__ import annotations

import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipper.pipeline import Stats, expand_inputs, iter_documents
from shipper.sysmon.fields import EMITTED_FIELDS
from tests.shared_data import evtx_manifest, otrf_manifest, sysmon_data

pytestmark = pytest.mark.slow

EVTX_EVENTS = 3160
OTRF_EVENTS = 75305
FREE_PREFIX = "winlog.event_data."


def _leaves(doc: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _leaves(value, f"{prefix}{key}.")
    elif isinstance(doc, list):
        for value in doc:
            yield from _leaves(value, prefix)
    else:
        yield prefix[:-1]


def _convert(paths: list[str]) -> tuple[Stats, Counter[int], set[str], list[dict[str, Any]]]:
    stats = Stats()
    codes: Counter[int] = Counter()
    leaves: set[str] = set()
    bad: list[dict[str, Any]] = []
    for item in iter_documents(paths, stats=stats):
        doc = item.doc
        event = doc.get("event") or {}
        # (Sysmon's own error event 255 carries ``error.*`` too: only the kind tells a mapping error)
        if event.get("kind") == "pipeline_error":
            bad.append(doc)
        if event.get("provider") == "Microsoft-Windows-Sysmon":
            codes[int(event["code"])] += 1
        leaves.update(_leaves(doc))
    return stats, codes, leaves, bad


def _undeclared(leaves: set[str]) -> set[str]:
    return {f for f in leaves if f not in EMITTED_FIELDS and not f.startswith(FREE_PREFIX)}


@pytest.fixture(scope="module")
def otrf_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The OTRF zips unpacked (the pipeline reads files, not archives)."""
    out = tmp_path_factory.mktemp("otrf")
    for entry in otrf_manifest():
        with zipfile.ZipFile(entry.path) as zf:
            zf.extractall(out / entry.path.stem)
    return expand_inputs([str(out)])


def test_shared_evtx_files_map_cleanly_and_match_the_manifest() -> None:
    manifest = evtx_manifest()
    expected: Counter[int] = Counter()
    for entry in manifest:
        expected.update(entry.sysmon_eid_counts)
    assert sum(expected.values()) == EVTX_EVENTS
    paths = expand_inputs([str(sysmon_data() / "evtx-attack-samples")])
    # every file of the manifest is an input (and nothing but EVTX files is)
    assert {Path(p).resolve() for p in paths} == {e.path.resolve() for e in manifest}
    stats, codes, leaves, bad = _convert(paths)
    assert stats.errors == Counter(), stats.error_samples
    assert stats.errors_skipped == 0
    assert bad == []
    assert stats.sources == len(manifest)
    assert stats.records == sum(e.total_events for e in manifest)
    assert stats.sysmon_by_id == expected
    assert codes == expected
    assert stats.documents == EVTX_EVENTS
    assert _undeclared(leaves) == set()


def test_shared_otrf_files_map_cleanly_and_match_the_manifest(otrf_files: list[str]) -> None:
    expected: Counter[int] = Counter()
    for entry in otrf_manifest():
        expected.update(entry.sysmon_eid_counts)
    assert sum(expected.values()) == OTRF_EVENTS
    assert otrf_files, "no OTRF file unpacked"
    stats, codes, leaves, bad = _convert(otrf_files)
    assert stats.errors == Counter(), stats.error_samples
    assert bad == []
    assert stats.sysmon_by_id == expected
    assert codes == expected
    # the rest of each dataset (Security, PowerShell, …) is counted, not mapped
    assert stats.records == stats.sysmon + sum(stats.other_providers.values())
    assert stats.other_providers, "the OTRF datasets carry other providers too"
    assert stats.documents == OTRF_EVENTS
    assert _undeclared(leaves) == set()


def test_an_undeclared_field_would_be_reported() -> None:
    """The check above is not vacuous: a leaf outside the table is caught, EventData is free."""
    doc = {"event": {"code": "1"}, "process": {"no_such_field": 1}, "winlog": {"event_data": {"Any": "x"}}}
    assert _undeclared(set(_leaves(doc))) == {"process.no_such_field"}

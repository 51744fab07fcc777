"""The record-gap rule on the REAL EVTX attack samples (../shared/data/sysmon), shipped with the
real pipeline: what it reports must equal a computation straight from the files' own record ids
(read with the ``evtx`` parser, no ECS mapping, no Elasticsearch).

The samples are excerpts of lab machines' logs (a few records cut out of much bigger logs, the
same VM reverted to snapshots between recordings), so gaps and restarts are expected in large
numbers: that is what the rule must say about such data, exactly. With the default grace (1h)
a freshly shipped archive is not judged at all in its first hour.
"""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from elasticsearch import Elasticsearch

from detectors.model import SequenceGapParams
from shipper.pipeline import expand_inputs, iter_documents
from shipper.sink import BulkSink
from shipper.templates import events_index
from tests.integration.test_detect_sample import _cleanup
from tests.integration.test_detect_support import alerts, builtin_rules, make_engine
from tests.shared_data import sysmon_data

SYSMON = "Microsoft-Windows-Sysmon"
TOLERANCE = 16  # the built-in rule's reset_tolerance

Key = tuple[str, str, int, int]  # host, kind, first id, last id (a reset: first id after, last before)


def _raw_records(folder: Path) -> dict[tuple[str, str], set[tuple[str, int]]]:
    """(computer, channel) → {(TimeCreated, record id)} of every Sysmon record in the files."""
    import evtx  # the reference parser, used without our readers or mapping

    out: dict[tuple[str, str], set[tuple[str, int]]] = defaultdict(set)
    for path in sorted(folder.rglob("*.evtx")):
        for rec in evtx.PyEvtxParser(str(path)).records_json():
            system = orjson.loads(rec["data"])["Event"]["System"]
            if system["Provider"]["#attributes"]["Name"] != SYSMON:
                continue
            # event.created keeps milliseconds: compare at that precision
            created = system["TimeCreated"]["#attributes"]["SystemTime"][:23]
            out[system["Computer"], system["Channel"]].add((created, int(system["EventRecordID"])))
    return out


def _expected(records: dict[tuple[str, str], set[tuple[str, int]]]) -> set[Key]:
    """Gaps and restarts, computed on its own: walk each log in time order; a drop of more than
    TOLERANCE ids starts a new run of ids; ids missing inside a run are a gap."""
    found: set[Key] = set()
    for (host, _channel), recs in records.items():
        runs: list[list[int]] = []
        top = None
        for _t, rid in sorted(recs):
            if top is None or rid < top - TOLERANCE:
                if top is not None:
                    found.add((host, "reset", rid, top))
                runs.append([])
                top = rid
            runs[-1].append(rid)
            top = max(top, rid)
        for ids in runs:
            present = sorted(set(ids))
            found |= {(host, "gap", a + 1, b - 1) for a, b in itertools.pairwise(present) if b > a + 1}
    return found


@pytest.fixture(scope="module")
def shipped(es: Elasticsearch) -> Iterator[str]:
    p = f"t{uuid.uuid4().hex[:10]}"
    make_engine(es, p, rules=[])
    with BulkSink(es) as sink:
        for item in iter_documents(expand_inputs([str(sysmon_data() / "evtx-attack-samples")])):
            sink.add(item.doc, events_index(p, item.index_suffix), item.doc_id, (item.source, item.seq))
    es.indices.refresh(index=f"{p}-events-*")
    yield p
    _cleanup(es, p)


def _alert_keys(got: list[dict[str, Any]]) -> set[Key]:
    out: set[Key] = set()
    for a in got:
        g = a["alert"]["gap"]
        if g["kind"] == "gap":
            out.add((a["host"]["name"], "gap", g["first_missing"], g["last_missing"]))
        else:
            out.add((a["host"]["name"], "reset", g["after"]["record_id"], g["before"]["record_id"]))
    return out


def test_gap_rule_on_the_evtx_samples_matches_the_raw_record_ids(es: Elasticsearch, shipped: str) -> None:
    rule = next(r for r in builtin_rules() if r.id == "log-record-gap")
    assert isinstance(rule.params, SequenceGapParams) and rule.params.grace == 3600
    engine = make_engine(es, shipped, [rule])
    # shipped a moment ago: within the grace, nothing is judged yet
    first = engine.run_rule(rule)
    assert (first.status, first.hits, first.alerts) == ("ok", 0, 0), first

    now_rule = replace(rule, params=replace(rule.params, grace=0))
    es.delete(index=f"{shipped}-state", id=f"state:{rule.id}", refresh=True)
    r = engine.run_rule(now_rule)
    assert r.status == "ok", r
    got = alerts(es, shipped, rule.id)
    expected = _expected(_raw_records(sysmon_data() / "evtx-attack-samples"))
    assert _alert_keys(got) == expected
    assert r.alerts == len(got) == len(expected)
    kinds = {k[1] for k in expected}
    assert kinds == {"gap", "reset"}  # the lab VMs were reverted between recordings
    for a in got:
        g = a["alert"]["gap"]
        if g["kind"] == "gap":
            assert g["missing"] == g["last_missing"] - g["first_missing"] + 1
            assert g["before"]["created"] <= g["after"]["created"]

    # a rerun over everything writes nothing new
    es.delete(index=f"{shipped}-state", id=f"state:{rule.id}", refresh=True)
    again = engine.run_rule(now_rule)
    assert (again.status, again.alerts, again.duplicates) == ("ok", 0, len(got)), again

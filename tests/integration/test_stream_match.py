"""The stream matcher against the node: the shared EVTX attack samples and a generated day are
shipped, then for every built-in rule of a stream type and every applicable SigmaHQ rule the
events Elasticsearch returns for the rule's scheduled query are exactly the events the matcher
accepts, reading the same documents back (prefilter on), with the native core and with the Python
predicates alone."""

from __future__ import annotations

import collections
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from sigma.collection import SigmaCollection

from detectors.model import Rule
from detectors.sigma.rules import convert
from detectors.stream.rules import NEEDS_HISTORY, StreamRules
from tests.integration.stream_oracle import NodeIntel, documents, es_matches
from tests.integration.test_detect_support import (
    builtin_rules,
    ensure_templates,
    generate_day,
    load_sample_intel,
    ship,
)
from tests.shared_data import shared_dir


@pytest.fixture(scope="module")
def shipped(es: Elasticsearch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[Rule]]]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    day = generate_day(tmp_path_factory.mktemp("day"))
    samples = shared_dir() / "data" / "sysmon" / "evtx-attack-samples"
    files = sorted(str(f) for f in samples.rglob("*.evtx"))
    try:
        ensure_templates(es, prefix)
        ship(es, prefix, [*files, str(day / "winlogbeat.ndjson")])
        load_sample_intel(es, prefix, day / "intel", tmp_path_factory.mktemp("cache"))
        collection = SigmaCollection.load_ruleset(
            [str(shared_dir() / "data" / "sigma" / "rules" / "windows")], collect_errors=True
        )
        sigma = [c.rule for c in convert(collection) if c.rule is not None]
        yield prefix, [*builtin_rules(), *sigma]
    finally:
        names = list(es.options(ignore_status=404).indices.get(index=f"{prefix}-*"))
        for i in range(0, len(names), 50):
            es.options(ignore_status=404).indices.delete(index=",".join(names[i : i + 50]))


def _stream_matches(
    compiled: StreamRules, docs: dict[str, dict[str, Any]], intel: Any
) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {r.id: set() for r in compiled.supported}
    for doc_id, doc in docs.items():
        for rule in compiled.match(doc, intel):
            out[rule.id].add(doc_id)
    return out


def test_stream_matches_exactly_what_the_node_returns(
    es: Elasticsearch, shipped: tuple[str, list[Rule]]
) -> None:
    prefix, rules = shipped
    compiled = StreamRules.compile(rules)
    docs = documents(es, prefix)
    assert len(docs) > 5000
    intel = NodeIntel(es, prefix, compiled.supported, docs)
    ours = _stream_matches(compiled, docs, intel)
    theirs = es_matches(es, prefix, compiled.supported, docs)
    differ = {
        rid: (sorted(ours[rid] - theirs[rid])[:3], sorted(theirs[rid] - ours[rid])[:3])
        for rid in ours
        if ours[rid] != theirs[rid]
    }
    assert differ == {}, "\n".join(f"{rid}: only stream {a}, only node {b}" for rid, (a, b) in differ.items())
    # the native core runs every rule that needs no intel, and the Python predicates agree with it
    assert compiled.native_count >= len(compiled.supported) - 20 and compiled.native_refused == {}
    assert _stream_matches(StreamRules.compile(rules, native=False), docs, intel) == ours
    reasons = collections.Counter(v.split(" (")[0].split(":")[0] for v in compiled.unsupported.values())
    fired = sum(1 for ids in ours.values() if ids)
    pairs = sum(map(len, ours.values()))
    print(f"\n{len(compiled.supported)} rules supported ({compiled.native_count} native), "
          f"{len(compiled.unsupported)} unsupported")  # fmt: skip
    print(f"{fired} fired, {pairs} (rule, event) matches; intel asked {intel.asked}")
    for reason, n in reasons.most_common():
        print(f"  {n:4d} {reason}")
    # real outcomes: most rules run in the stream, many of them fire, intel rules among them
    assert len(compiled.supported) > 1800
    assert 0 < len(compiled.unsupported) < 30 and all(compiled.unsupported.values())
    assert {r.id for r in rules if r.type in ("new_value", "spread", "sequence_gap", "silence")} <= {
        rid for rid, why in compiled.unsupported.items() if why == NEEDS_HISTORY
    }
    assert fired > 100
    assert ours["intel-ip-connection"] and ours["intel-dns-domain"] and ours["office-spawns-shell"]

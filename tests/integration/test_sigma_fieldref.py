"""Sigma's ``|fieldref`` on the real node (no scripts: the query keeps the rest of the rule and
each hit is compared in Python): an alert when the two fields are equal, without case; none when
they differ; the negated form; ``|fieldref|endswith``; and a fieldref the hits cannot decide
(inside an ``or``) is reported, not run."""

from __future__ import annotations

from typing import Any

import pytest
from elasticsearch import Elasticsearch
from sigma.collection import SigmaCollection

from detectors.model import FieldRef, Filter
from detectors.postfilter import keeps
from detectors.sigma.rules import Converted, convert
from shipper.raw import SYSMON_CHANNEL, SYSMON_PROVIDER, RawEvent
from shipper.sysmon.ecs import to_ecs
from tests.integration.test_detect_support import alerts, index_docs, make_engine, ts_ago


def _event(record: int, **data: str) -> dict[str, Any]:
    raw = RawEvent(
        provider=SYSMON_PROVIDER,
        event_id=1,
        event_data={"UtcTime": ts_ago(0, -30).replace("T", " ").rstrip("Z"), **data},
        record_id=record,
        computer="WKS-REF.corp.example",
        channel=SYSMON_CHANNEL,
    )
    return to_ecs(raw)


EVENTS = [
    # the same image as its parent, in another case
    _event(1, Image="C:\\Tools\\Same.exe", ParentImage="c:\\tools\\SAME.EXE", CommandLine="same.exe"),
    _event(
        2,
        Image="C:\\Tools\\a.exe",
        ParentImage="C:\\Windows\\explorer.exe",
        CommandLine="run C:\\TOOLS\\A.EXE",
    ),
    _event(3, Image="C:\\Tools\\b.exe", CommandLine="b.exe"),  # no parent image at all
]


def _rule(detection: str, n: int) -> Converted:
    text = (
        f"title: fieldref {n}\nid: 3f3c2a10-0000-4000-8000-0000000000{n:02d}\nstatus: test\nlevel: high\n"
        f"logsource: {{product: windows, category: process_creation}}\ndetection:\n{detection}\n"
    )
    (c,) = convert(SigmaCollection.from_yaml(text))
    return c


CASES = [
    ("  sel: {ParentImage|fieldref: Image}\n  condition: sel", {1}),
    ("  sel: {Image|startswith: 'c:\\\\tools\\\\'}\n  same: {ParentImage|fieldref: Image}\n"
     "  condition: sel and not same", {2, 3}),
    ("  sel: {CommandLine|fieldref|endswith: Image}\n  condition: sel", {2}),
    ("  sel: {CommandLine|fieldref: Image}\n  condition: sel", set()),
]  # fmt: skip


@pytest.mark.parametrize(("detection", "expected"), CASES)
def test_fieldref_runs_on_the_node(
    es: Elasticsearch, prefix: str, detection: str, expected: set[int]
) -> None:
    c = _rule(detection, CASES.index((detection, expected)))
    assert c.outcome == "runs" and c.rule is not None, c.reason
    assert c.rule.filter.field_refs
    index_docs(es, prefix, [dict(e) for e in EVENTS])
    (res,) = make_engine(es, prefix, [c.rule]).run(only_due=False)
    assert (res.status, res.hits, res.alerts) == ("ok", len(expected), len(expected)), res
    assert {a["winlog"]["record_id"] for a in alerts(es, prefix, c.rule.id)} == expected


def test_fieldref_the_hits_cannot_decide_is_reported() -> None:
    c = _rule("  sel: {ParentImage|fieldref: Image}\n  other: {Image: x}\n  condition: sel or other", 90)
    assert c.outcome == "failed" and "|fieldref inside an 'or'" in c.reason
    c = _rule("  sel: {Hashes|fieldref: ParentImage}\n  condition: sel", 91)
    assert c.outcome == "cannot_fire" and "Hashes" in c.reason


def test_user_objects_compare_as_domain_and_name() -> None:
    flt = Filter(("1",), field_refs=(FieldRef("user", "process.parent.user"),))
    same = {
        "user": {"domain": "CORP", "name": "bob"},
        "process": {"parent": {"user": {"domain": "corp", "name": "BOB"}}},
    }
    other = {"user": {"domain": "CORP", "name": "bob"}, "process": {"parent": {"user": {"name": "bob"}}}}
    assert keeps(flt, same) and not keeps(flt, other) and not keeps(flt, {})
    negated = Filter(("1",), field_refs=(FieldRef("user", "process.parent.user", negated=True),))
    assert not keeps(negated, same) and keeps(negated, other) and keeps(negated, {})

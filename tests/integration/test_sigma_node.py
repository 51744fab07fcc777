"""Sigma rules converted for our documents, run on the real node: case-insensitive strings,
``|cased``, wildcards, ``|contains|all``, ``|re`` with and without ``i``, ``|cidr``,
``|windash``, ``|base64offset``, ``|exists``, numbers, null, Hashes, User, Initiated, Details;
then a converted rule as a detector: alerts with the Sigma metadata, and no repeat on a rerun."""

from __future__ import annotations

from typing import Any

import pytest
from elasticsearch import Elasticsearch
from sigma.collection import SigmaCollection

from detectors.sigma.rules import Converted, convert
from shipper.raw import SYSMON_CHANNEL, SYSMON_PROVIDER, RawEvent
from shipper.sysmon.ecs import to_ecs
from tests.integration.test_detect_support import alerts, index_docs, make_engine, ts_ago

HOST = "WKS-SIGMA.corp.example"


def _event(eid: int, record: int, **data: str) -> dict[str, Any]:
    raw = RawEvent(
        provider=SYSMON_PROVIDER,
        event_id=eid,
        event_data={"UtcTime": ts_ago(0, -30).replace("T", " ").rstrip("Z"), **data},
        record_id=record,
        computer=HOST,
        channel=SYSMON_CHANNEL,
    )
    return to_ecs(raw)


SHA256 = "5E4F3A2B1C0D9E8F7A6B5C4D3E2F1A0B9C8D7E6F5A4B3C2D1E0F9A8B7C6D5E4F"
EVENTS = [
    _event(
        1,
        1,
        Image="C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\PowerShell.EXE",
        CommandLine="powershell.exe -NoProfile -EncodedCommand SUVYIChOZXctT2JqZWN0 /c Invoke-Mimikatz",
        ParentImage="C:\\Windows\\explorer.exe",
        OriginalFileName="PowerShell.EXE",
        User="NT AUTHORITY\\SYSTEM",
        IntegrityLevel="System",
        Hashes=f"MD5=8A1F0E9C8B7A6D5E4F3A2B1C0D9E8F7A,SHA256={SHA256},IMPHASH=F34D5F2D4577ED6D9CEEC516C1F5A744",
    ),
    _event(
        1,
        2,
        Image="C:\\Users\\bob\\AppData\\Local\\Temp\\evil.exe",
        CommandLine="evil.exe /quiet",
        ParentImage="C:\\Windows\\System32\\cmd.exe",
        User="CORP\\bob",
    ),
    _event(
        3,
        3,
        Image="C:\\Windows\\System32\\rundll32.exe",
        Protocol="tcp",
        Initiated="true",
        SourceIp="10.1.2.3",
        SourcePort="50000",
        DestinationIp="203.0.113.7",
        DestinationPort="4444",
        DestinationHostname="C2.Example.NET",
    ),
    _event(
        13,
        4,
        Image="C:\\Windows\\regedit.exe",
        EventType="SetValue",
        TargetObject="HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows Defender\\DisableAntiSpyware",
        Details="DWORD (0x00000001)",
    ),
]


def _rule(detection: str, category: str = "process_creation", title: str = "t", **extra: str) -> str:
    head = "\n".join(f"{k}: {v}" for k, v in extra.items())
    return (
        f"title: {title}\nid: 3f3c2a10-0000-4000-8000-{abs(hash(detection)) % 10**12:012d}\nstatus: test\n"
        f"level: high\n{head}\nlogsource:\n  product: windows\n  category: {category}\n"
        f"detection:\n{detection}\n"
    )


def _converted(text: str) -> Converted:
    (one,) = convert(SigmaCollection.from_yaml(text))
    return one


@pytest.fixture(scope="module")
def records(es: Elasticsearch, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, int]]:
    prefix = "tsig" + tmp_path_factory.mktemp("p").name[-6:].replace("_", "").lower()
    ids = index_docs(es, prefix, [dict(e) for e in EVENTS])
    yield prefix, {i: EVENTS[n]["winlog"]["record_id"] for n, i in enumerate(ids)}  # type: ignore[misc]
    names = list(es.options(ignore_status=404).indices.get(index=f"{prefix}-*"))
    if names:
        es.indices.delete(index=",".join(names))


def _hits(es: Elasticsearch, prefix: str, c: Converted) -> set[int]:
    assert c.outcome == "runs", c.reason
    assert c.rule is not None
    flt = c.rule.filter
    query = {
        "bool": {
            "filter": [
                {"terms": {"event.code": list(flt.event_codes)}},
                {"query_string": {"query": flt.lucene, "analyze_wildcard": True}},
            ]
        }
    }
    resp = es.search(index=f"{prefix}-events", query=query, size=100, source=["winlog.record_id"])
    return {h["_source"]["winlog"]["record_id"] for h in resp["hits"]["hits"]}


CASES = [
    # case-insensitive by default, on paths, names and raw EventData values
    ("Image|endswith: '\\powershell.exe'", "process_creation", {1}),
    ("Image|endswith|cased: '\\powershell.exe'", "process_creation", set()),
    ("Image|endswith|cased: '\\PowerShell.EXE'", "process_creation", {1}),
    ("OriginalFileName: 'powershell.exe'", "process_creation", {1}),
    ("IntegrityLevel: 'SYSTEM'", "process_creation", {1}),
    ("CommandLine|contains|all: ['-noprofile', 'INVOKE-MIMIKATZ']", "process_creation", {1}),
    ("CommandLine|contains|all: ['-noprofile', 'absent']", "process_creation", set()),
    ("CommandLine|contains|windash: '-encodedcommand'", "process_creation", {1}),
    ("CommandLine|contains|windash: '/quiet'", "process_creation", {2}),
    ("CommandLine|base64offset|contains: 'IEX'", "process_creation", {1}),
    ("Image|startswith: 'c:\\users\\'", "process_creation", {2}),
    ("Image: 'C:\\USERS\\\\*\\APPDATA\\LOCAL\\TEMP\\\\*.exe'", "process_creation", {2}),
    ("Image: 'C:\\USERS\\*\\APPDATA\\LOCAL\\TEMP\\*.exe'", "process_creation", set()),  # \* is a star
    ("CommandLine|re: 'Invoke-Mimi[a-z]+'", "process_creation", {1}),
    ("CommandLine|re: 'invoke-mimi[a-z]+'", "process_creation", set()),
    ("CommandLine|re|i: 'INVOKE-MIMI[A-Z]+'", "process_creation", {1}),
    ("CommandLine|re: '^evil\\.exe'", "process_creation", {2}),
    ("CommandLine|re: '^quiet'", "process_creation", set()),
    ("ParentCommandLine|exists: false", "process_creation", {1, 2}),
    ("CommandLine|exists: true", "process_creation", {1, 2}),
    # special fields
    (f"Hashes|contains: 'SHA256={SHA256}'", "process_creation", {1}),
    ("Hashes|contains: 'IMPHASH=f34d5f2d4577ed6d9ceec516c1f5a744'", "process_creation", {1}),
    ("Hashes|contains: 'MD5=00000000000000000000000000000001'", "process_creation", set()),
    ("User|contains: ['AUTHORI', 'AUTORI']", "process_creation", {1}),
    ("User: 'nt authority\\system'", "process_creation", {1}),
    ("User|endswith: '\\bob'", "process_creation", {2}),
    # network: ip fields, numbers, translated booleans, hostnames
    ("DestinationIp|cidr: '203.0.113.0/24'", "network_connection", {3}),
    ("SourceIp|startswith: '10.'", "network_connection", {3}),
    ("DestinationPort: 4444", "network_connection", {3}),
    ("DestinationPort|gte: 5000", "network_connection", set()),
    ("Initiated: 'true'", "network_connection", {3}),
    ("Initiated: 'false'", "network_connection", set()),
    ("DestinationHostname|endswith: '.example.net'", "network_connection", {3}),
    ("Protocol: 'TCP'", "network_connection", {3}),
    # registry: a DWORD as the mapper writes it
    ("TargetObject|endswith: '\\DisableAntiSpyware'\n    Details: 'DWORD (0x00000001)'", "registry_set", {4}),
    ("Details: 'DWORD (0x00000000)'", "registry_set", set()),
]


@pytest.mark.parametrize(("detection", "category", "expected"), CASES)
def test_modifier_on_the_node(
    es: Elasticsearch, records: tuple[str, dict[str, int]], detection: str, category: str, expected: set[int]
) -> None:
    prefix, _ = records
    text = _rule(f"  sel:\n    {detection}\n  condition: sel", category)
    assert _hits(es, prefix, _converted(text)) == expected, _converted(text).rule.filter.lucene  # type: ignore[union-attr]


def test_null_value_matches_a_missing_field(es: Elasticsearch, records: tuple[str, dict[str, int]]) -> None:
    prefix, _ = records
    text = _rule("  sel:\n    Image|endswith: '.exe'\n    ParentCommandLine: null\n  condition: sel")
    assert _hits(es, prefix, _converted(text)) == {1, 2}


def test_converted_rule_runs_as_a_detector_with_sigma_metadata(es: Elasticsearch, prefix: str) -> None:
    text = _rule(
        "  sel:\n    Image|endswith: '\\powershell.exe'\n    CommandLine|contains: 'mimikatz'\n"
        "  filter:\n    ParentImage|endswith: '\\services.exe'\n  condition: sel and not filter",
        title="Mimikatz via PowerShell",
        author="Someone, Someone Else",
        date="2024-01-02",
        modified="2024-03-04",
        tags="\n  - attack.execution\n  - attack.t1059.001\n  - attack.credential-access",
        falsepositives="\n  - Admin scripts",
        references="\n  - https://example.org/ref",
        description="PowerShell that runs Mimikatz.",
    )
    c = _converted(text)
    assert c.rule is not None
    index_docs(es, prefix, [dict(e) for e in EVENTS])
    engine = make_engine(es, prefix, [c.rule])
    first = engine.run(only_due=False)[0]
    assert (first.status, first.alerts) == ("ok", 1), first
    assert engine.run(only_due=False)[0].alerts == 0
    (alert,) = alerts(es, prefix, c.rule.id)
    rule = alert["rule"]
    assert rule["uuid"] == c.sigma_id and rule["id"] == c.sigma_id
    assert rule["name"] == "Mimikatz via PowerShell" and rule["ruleset"] == "sigma"
    assert rule["version"] == "2024-03-04" and rule["author"] == ["Someone", "Someone Else"]
    assert rule["reference"] == ["https://example.org/ref"]
    assert rule["description"] == "PowerShell that runs Mimikatz."
    assert alert["event"]["severity"] == 73 and alert["event"]["risk_score"] == 73.0
    assert alert["threat"]["tactic"]["id"] == ["TA0002", "TA0006"]
    assert alert["threat"]["technique"]["id"] == ["T1059"]  # as Elastic writes a sub-technique
    assert alert["threat"]["technique"]["subtechnique"]["id"] == ["T1059.001"]
    assert alert["sigma"]["false_positives"] == ["Admin scripts"]
    assert alert["sigma"]["level"] == "high" and alert["sigma"]["status"] == "test"
    assert alert["winlog"]["record_id"] == 1
    assert alert["process"]["executable"].endswith("PowerShell.EXE")
    assert alert["host"]["name"] == HOST


def test_every_shared_rule_lands_in_one_class_and_every_query_parses(es: Elasticsearch, prefix: str) -> None:
    from detectors.sigma.loading import load_sigma
    from tests.shared_data import shared_dir

    folder = shared_dir() / "data" / "sigma" / "rules" / "windows"
    files = sorted(folder.rglob("*.yml"))
    converted = load_sigma([folder])
    assert len(converted) == len(files) == 2407
    assert sorted(c.where.path for c in converted) == sorted(str(f) for f in files)
    runs = [c for c in converted if c.rule is not None]
    assert len(runs) > 1500
    index_docs(es, prefix, [dict(e) for e in EVENTS])
    bad = []
    for i in range(0, len(runs), 200):
        batch = runs[i : i + 200]
        body: list[dict[str, Any]] = []
        for c in batch:
            assert c.rule is not None
            body += [
                {"index": f"{prefix}-events"},
                {"size": 0, "query": {"query_string": {"query": c.rule.filter.lucene}}},
            ]
        for c, resp in zip(batch, es.msearch(searches=body)["responses"], strict=True):
            if "error" in resp:
                bad.append((str(c.where), resp["error"].get("root_cause", [{}])[0].get("reason")))
    assert bad == []

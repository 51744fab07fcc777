"""JSON reader: winlogbeat and NXLog documents, lines/array/object layouts, broken lines, and
the real OTRF NXLog exports with exact counts."""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

import pytest

from shipper.native import native
from shipper.native.jsonl import read_json_native
from shipper.raw import RawEvent, ReadError
from shipper.readers import jsonl
from shipper.readers.jsonl import read_json
from shipper.stats import Stats
from tests.shared_data import otrf_manifest

WINLOGBEAT: dict[str, Any] = {
    "@timestamp": "2021-03-04T05:06:07.123Z",
    "event": {"code": "1", "created": "2021-03-04T05:06:09.000Z", "kind": "event"},
    "log": {"level": "information"},
    "host": {"name": "ws1"},
    "winlog": {
        "api": "wineventlog",
        "channel": "Microsoft-Windows-Sysmon/Operational",
        "computer_name": "ws1.example.org",
        "event_id": "1",
        "provider_name": "Microsoft-Windows-Sysmon",
        "provider_guid": "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}",
        "record_id": "42",
        "process": {"pid": 2920, "thread": {"id": 3936}},
        "user": {"identifier": "S-1-5-18", "name": "SYSTEM", "domain": "NT AUTHORITY"},
        "version": 5,
        "opcode": "Info",
        "task": "Process Create (rule: ProcessCreate)",
        "event_data": {"RuleName": "-", "ProcessId": 4242, "Image": "C:\\a.exe", "Nothing": None},
    },
}

NXLOG: dict[str, Any] = {
    "EventTime": "2020-09-04 03:06:09",
    "Hostname": "WORKSTATION5.theshire.local",
    "Keywords": -9223372036854775808,
    "EventType": "SetValue",
    "SeverityValue": 2,
    "Severity": "INFO",
    "EventID": 13,
    "SourceName": "Microsoft-Windows-Sysmon",
    "ProviderGuid": "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}",
    "Version": 2,
    "Task": 13,
    "OpcodeValue": 0,
    "RecordNumber": 115295,
    "ExecutionProcessID": 3252,
    "ThreadID": 4224,
    "Channel": "Microsoft-Windows-Sysmon/Operational",
    "Domain": "NT AUTHORITY",
    "AccountName": "SYSTEM",
    "UserID": "S-1-5-18",
    "AccountType": "User",
    "Category": "Registry value set (rule: RegistryEvent)",
    "Opcode": "Info",
    "Message": "Registry value set:\r\nRuleName: -\r\nEventType: SetValue",
    "EventReceivedTime": "2020-09-04 03:06:11",
    "SourceModuleName": "eventlog",
    "SourceModuleType": "im_msvistalog",
    "EventTypeOrignal": "INFO",
    "@timestamp": "2020-09-04T07:06:11.274Z",
    "@version": "1",
    "host": "wec.internal.cloudapp.net",
    "port": 53971,
    "tags": ["mordorDataset"],
    "RuleName": "-",
    "UtcTime": "2020-09-04 07:06:09.681",
    "ProcessGuid": "{69e8992a-d6e9-5f51-0c00-000000000400}",
    "ProcessId": "728",
    "Image": "C:\\windows\\system32\\lsass.exe",
    "TargetObject": "HKLM\\System\\CurrentControlSet\\Services\\W32Time\\SecureTimeLimits\\SecureTimeHigh",
    "Details": "QWORD (0x01d68292-0x3f2eebc3)",
}
NXLOG_EVENT_DATA = {
    "EventType": "SetValue",
    "RuleName": "-",
    "UtcTime": "2020-09-04 07:06:09.681",
    "ProcessGuid": "{69e8992a-d6e9-5f51-0c00-000000000400}",
    "ProcessId": "728",
    "Image": "C:\\windows\\system32\\lsass.exe",
    "TargetObject": "HKLM\\System\\CurrentControlSet\\Services\\W32Time\\SecureTimeLimits\\SecureTimeHigh",
    "Details": "QWORD (0x01d68292-0x3f2eebc3)",
}


def read(data: str | bytes) -> list[RawEvent | ReadError]:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return list(read_json(io.BytesIO(raw), "test.json"))


def test_winlogbeat_document() -> None:
    [ev] = read(json.dumps(WINLOGBEAT) + "\n")
    assert isinstance(ev, RawEvent)
    assert ev.is_sysmon and ev.event_id == 1 and ev.record_id == 42
    assert ev.event_data == {"RuleName": "-", "ProcessId": "4242", "Image": "C:\\a.exe"}
    assert ev.computer == "ws1.example.org" and ev.channel == "Microsoft-Windows-Sysmon/Operational"
    assert ev.provider_guid == "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"
    assert (ev.process_id, ev.thread_id, ev.user_sid) == (2920, 3936, "S-1-5-18")
    # task/opcode arrive as names; Sysmon's task number is its event id, "Info" is opcode 0
    assert (ev.version, ev.level, ev.task, ev.opcode) == (5, 4, ev.event_id, 0)
    # winlogbeat's @timestamp is TimeCreated; event.created is when the beat read the record
    assert ev.time_created == "2021-03-04T05:06:07.123Z"
    assert ev.position == "line 1" and ev.original == json.dumps(WINLOGBEAT)


def test_winlogbeat_int_event_id_and_timestamp_fallback() -> None:
    doc = json.loads(json.dumps(WINLOGBEAT))
    doc["winlog"]["event_id"] = 3
    del doc["@timestamp"]
    [ev] = read(json.dumps(doc))
    assert isinstance(ev, RawEvent) and ev.event_id == 3 and ev.time_created == "2021-03-04T05:06:09.000Z"


def test_nxlog_line_splits_metadata_from_event_data() -> None:
    [ev] = read(json.dumps(NXLOG) + "\r\n")
    assert isinstance(ev, RawEvent)
    assert ev.event_data == NXLOG_EVENT_DATA
    assert ev.is_sysmon and ev.event_id == 13 and ev.record_id == 115295
    assert ev.computer == "WORKSTATION5.theshire.local"
    assert ev.keywords == "0x8000000000000000"
    assert (ev.version, ev.level, ev.task, ev.opcode) == (2, 4, 13, 0)
    assert (ev.process_id, ev.thread_id, ev.user_sid) == (3252, 4224, "S-1-5-18")
    assert ev.time_created is None  # zone-less local EventTime is never guessed


def test_nxlog_event_type_is_metadata_unless_it_is_sysmons() -> None:
    doc = {k: v for k, v in NXLOG.items() if k not in ("EventTypeOrignal", "TargetObject", "Details")}
    doc["EventID"], doc["EventType"] = 10, "INFO"
    [ev] = read(json.dumps(doc))
    assert isinstance(ev, RawEvent) and "EventType" not in ev.event_data
    doc["EventType"] = "CreateKey"
    [ev] = read(json.dumps(doc))
    assert isinstance(ev, RawEvent) and ev.event_data["EventType"] == "CreateKey"


def test_nxlog_event_time_with_zone_is_converted() -> None:
    doc = dict(NXLOG, EventTime="2020-09-04T03:06:09.681-04:00")
    [ev] = read(json.dumps(doc))
    assert isinstance(ev, RawEvent) and ev.time_created == "2020-09-04T07:06:09.681Z"


def test_a_time_beyond_the_calendar_in_utc_is_no_time() -> None:
    """Year 1 just after midnight east of Greenwich is before year 1 in UTC: the reader gives
    no time for it (and moves on to the next one winlogbeat has) instead of raising."""
    doc = json.loads(json.dumps(WINLOGBEAT))
    doc["winlog"]["time_created"] = "0001-01-01T00:10:00+01:00"
    [ev] = read(json.dumps(doc))
    assert isinstance(ev, RawEvent) and ev.time_created == "2021-03-04T05:06:07.123Z"
    late = dict(NXLOG, EventTime="9999-12-31T23:59:59-01:00")
    [ev] = read(json.dumps(late))
    assert isinstance(ev, RawEvent) and ev.time_created is None


def test_array_is_streamed_with_element_positions() -> None:
    docs = [NXLOG, WINLOGBEAT, NXLOG]
    got = read(json.dumps(docs, indent=2))
    assert [ev.event_id for ev in got if isinstance(ev, RawEvent)] == [13, 1, 13]
    assert [ev.position for ev in got] == ["element 0", "element 1", "element 2"]


def test_single_pretty_printed_object() -> None:
    [ev] = read(json.dumps(WINLOGBEAT, indent=4))
    assert isinstance(ev, RawEvent) and ev.event_id == 1


def test_broken_line_in_the_middle() -> None:
    lines = [
        json.dumps(NXLOG),
        '{"EventID": 1, "SourceName": ',
        json.dumps(WINLOGBEAT),
        '{"EventID": 2,, }',
        json.dumps(NXLOG),
    ]
    got = read("\n".join(lines))
    assert [ev.position for ev in got if isinstance(ev, RawEvent)] == ["line 1", "line 3", "line 5"]
    errors = [ev for ev in got if isinstance(ev, ReadError)]
    assert [(err.kind, err.position) for err in errors] == [("json", "line 2"), ("json", "line 4")]


def test_broken_array_element_resyncs_at_the_next_element() -> None:
    text = "[" + json.dumps(NXLOG) + ', {"EventID": }, ' + json.dumps(WINLOGBEAT) + "]"
    got = read(text)
    assert [type(ev).__name__ for ev in got] == ["RawEvent", "ReadError", "RawEvent"]
    assert got[1].position == "element 1"


def test_broken_pretty_printed_object_costs_one_error() -> None:
    broken = json.dumps(WINLOGBEAT, indent=2).replace('"channel"', '"channel" oops')
    got = read(broken + "\n" + json.dumps(NXLOG) + "\n")
    assert [type(ev).__name__ for ev in got] == ["ReadError", "RawEvent"]


def test_non_object_documents_are_errors() -> None:
    got = read('"text"\n42\n{"no": "event id"}\n')
    assert all(isinstance(ev, ReadError) for ev in got) and len(got) == 3


@pytest.mark.parametrize("block", [1 << 16, jsonl.JSON_BLOCK_SIZE])
def test_documents_spanning_read_blocks(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonl, "JSON_BLOCK_SIZE", block)
    big = dict(NXLOG, Details="x" * 2 * block)
    got = read("\n".join(json.dumps(big) for _ in range(3)))
    assert [ev.record_id for ev in got if isinstance(ev, RawEvent)] == [115295] * 3
    got = read(json.dumps([big, big], indent=1))
    assert len([ev for ev in got if isinstance(ev, RawEvent)]) == 2


def test_otrf_exports_match_manifest_counts() -> None:
    total = 0
    lines = 0
    for entry in otrf_manifest():
        with zipfile.ZipFile(entry.path) as archive:
            names = [n for n in archive.namelist() if n.endswith(".json") and not n.startswith("__MACOSX")]
            assert len(names) == 1
            with archive.open(names[0]) as stream:
                items = list(read_json(stream, names[0]))
        errors = [item for item in items if isinstance(item, ReadError)]
        assert errors == [], entry.path
        events = [item for item in items if isinstance(item, RawEvent)]
        counts = Counter(ev.event_id for ev in events if ev.is_sysmon)
        assert dict(counts) == entry.sysmon_eid_counts, entry.path
        # a Sysmon event is one by provider and channel alike
        assert all(ev.channel == "Microsoft-Windows-Sysmon/Operational" for ev in events if ev.is_sysmon)
        total += counts.total()
        lines += len(events)
    assert total == 75_305
    assert lines == 100_882


def _wlb_line(record: int, command: str) -> str:
    return json.dumps(
        {
            "@timestamp": "2021-01-01T00:00:00Z",
            "winlog": {
                "provider_name": "Microsoft-Windows-Sysmon",
                "event_id": 1,
                "record_id": record,
                "computer_name": "h",
                "channel": "Microsoft-Windows-Sysmon/Operational",
                "event_data": {"Image": "C:\\\\a.exe", "CommandLine": command},
            },
        }
    )


def _read(stream: IO[bytes], source: str, natively: bool) -> Iterator[Any]:
    """``read_json``, or the native core's reading of the same (where it is installed)."""
    core = native() if natively else None
    if core is None:
        return read_json(stream, source)
    return read_json_native(core, stream, source, Stats())


@pytest.mark.parametrize("natively", [False, True])
def test_an_over_long_valid_line_names_the_limit_and_how_to_raise_it(
    monkeypatch: pytest.MonkeyPatch, natively: bool
) -> None:
    monkeypatch.setenv(jsonl.MAX_DOCUMENT_ENV, "4096")
    data = "\n".join([_wlb_line(1, "x" * (3 << 20)), _wlb_line(2, "short"), ""]).encode()
    got = list(_read(io.BytesIO(data), "f.ndjson", natively))
    errors = [g for g in got if isinstance(g, ReadError)]
    assert len(errors) == 1 and errors[0].position == "line 1"
    assert errors[0].message == (
        "record longer than the limit of 4096 characters, not read (set SYSMON_MAX_RECORD_CHARS to raise it)"
    )
    assert "malformed" not in errors[0].message
    read = [g for g in got if not isinstance(g, ReadError)]
    assert read, "the next line is read"

    monkeypatch.setenv(jsonl.MAX_DOCUMENT_ENV, str(4 << 20))
    raised = list(read_json(io.BytesIO(data), "f.ndjson"))
    assert [type(g).__name__ for g in raised] == ["RawEvent", "RawEvent"]

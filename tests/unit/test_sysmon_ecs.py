"""to_ecs as a whole: common fields, errors, totality, form convergence, emitted fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.raw import SYSMON_CHANNEL, SYSMON_PROVIDER, RawEvent
from shipper.sysmon.ecs import ECS_VERSION, document_id, emitted_fields, error_document, to_ecs
from shipper.sysmon.events import EVENT_ID_BY_TITLE, EVENTS, TITLES

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
GUID = "{365ABB72-7C01-5CC4-0000-00102B3E0C00}"


def _raw(eid: int = 1, **data: str) -> RawEvent:
    return RawEvent(provider=SYSMON_PROVIDER, event_id=eid, event_data=dict(data))


def test_common_fields() -> None:
    raw = RawEvent(
        provider=SYSMON_PROVIDER,
        event_id=5,
        event_data={"UtcTime": "2019-04-27 15:57:54.165", "RuleName": "tag", "User": "CORP\\bob"},
        record_id=6623,
        computer="IEWIN7.Corp.Local",
        channel=SYSMON_CHANNEL,
        time_created="2019-04-27T15:57:54.1657381Z",
        level=3,
        user_sid="S-1-5-18",
    )
    doc = to_ecs(raw)
    assert doc["@timestamp"] == "2019-04-27T15:57:54.165Z"
    assert doc["event"]["created"] == "2019-04-27T15:57:54.165738Z"
    assert doc["event"]["code"] == "5"
    assert doc["event"]["category"] == ["process"] and doc["event"]["type"] == ["end"]
    assert doc["event"]["action"] == "Process terminated"
    assert (doc["event"]["module"], doc["event"]["dataset"]) == ("sysmon", "sysmon.operational")
    assert doc["host"] == {"name": "IEWIN7.Corp.Local", "hostname": "iewin7.corp.local"}
    assert doc["log"] == {"level": "warning"}
    assert doc["rule"] == {"name": "tag"}
    assert doc["user"] == {"id": "S-1-5-18", "domain": "CORP", "name": "bob"}
    assert doc["related"]["user"] == ["bob"]
    assert doc["winlog"]["record_id"] == 6623
    assert doc["ecs"] == {"version": ECS_VERSION}
    assert "ingested" not in doc["event"]
    assert "log" not in doc or "file" not in doc["log"]


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("CORP\\alice", {"domain": "CORP", "name": "alice"}),
        ("NT AUTHORITY\\SYSTEM", {"domain": "NT AUTHORITY", "name": "SYSTEM"}),
        ("alice", {"name": "alice"}),
        ("a\\b\\c", {"name": "a\\b\\c"}),
        ("\\alice", {"name": "\\alice"}),
    ],
)
def test_user_split(user: str, expected: dict[str, str]) -> None:
    assert to_ecs(_raw(User=user))["user"] == expected


def test_timestamp_falls_back_to_time_created() -> None:
    doc = to_ecs(RawEvent(provider=SYSMON_PROVIDER, event_id=1, time_created="2020-01-02T03:04:05.1Z"))
    assert doc["@timestamp"] == "2020-01-02T03:04:05.100Z"
    assert doc["event"]["created"] == "2020-01-02T03:04:05.100000Z"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ProcessId", "abc"),
        ("UtcTime", "not a time"),
        ("SourceIp", "1.2.3"),
        ("SourcePort", "65536"),
        ("Signed", "yes"),
    ],
)
def test_conversion_failure_is_tagged_and_kept(field: str, value: str) -> None:
    raw = RawEvent(provider=SYSMON_PROVIDER, event_id=3, event_data={field: value}, original="<Event/>")
    doc = to_ecs(raw)
    assert doc["event"]["kind"] == "pipeline_error"
    assert doc["error"]["type"] == "mapping"
    assert field in doc["error"]["message"] and repr(value) in doc["error"]["message"]
    assert doc["winlog"]["event_data"][field] == value
    assert doc["event"]["original"] == "<Event/>"


def test_original_falls_back_to_event_data_json() -> None:
    doc = to_ecs(_raw(ProcessId="x", Image="C:\\a.exe"))
    assert json.loads(doc["event"]["original"]) == {"ProcessId": "x", "Image": "C:\\a.exe"}


def test_unknown_event_id_is_kept() -> None:
    doc = to_ecs(_raw(4242, Foo="bar", Image="C:\\x.exe"))
    assert doc["event"]["kind"] == "event"
    assert doc["event"]["code"] == "4242"
    assert "category" not in doc["event"]
    assert doc["winlog"]["event_data"] == {"Foo": "bar"}
    assert doc["process"]["executable"] == "C:\\x.exe"


def test_event_24_has_no_category() -> None:
    doc = to_ecs(_raw(24))
    assert "category" not in doc["event"] and doc["event"]["type"] == ["change"]


def test_files_and_signature() -> None:
    doc = to_ecs(
        _raw(
            7,
            ImageLoaded="C:\\Windows\\System32\\Amsi.DLL",
            Signed="TRUE",
            SignatureStatus="Valid",
            Signature="Microsoft Windows",
        )
    )
    assert doc["file"]["path"] == "C:\\Windows\\System32\\Amsi.DLL"
    assert (doc["file"]["name"], doc["file"]["directory"], doc["file"]["extension"]) == (
        "Amsi.DLL",
        "C:\\Windows\\System32",
        "DLL",
    )
    assert doc["file"]["code_signature"] == {
        "subject_name": "Microsoft Windows",
        "status": "Valid",
        "valid": True,
        "signed": True,
    }
    unsigned = to_ecs(_raw(7, Signed="false", SignatureStatus="Unavailable"))["file"]["code_signature"]
    assert unsigned == {"status": "Unavailable", "valid": False, "signed": False}


def test_pipe_and_archived() -> None:
    assert to_ecs(_raw(17, PipeName="\\PSHost.1"))["file"] == {"name": "\\PSHost.1"}
    doc = to_ecs(_raw(23, Archived="True", IsExecutable="FALSE"))
    assert doc["sysmon"]["file"] == {"archived": True, "is_executable": False}


def test_targets_of_8_and_10_stay_raw() -> None:
    doc = to_ecs(
        _raw(
            10,
            SourceProcessGUID=GUID.lower(),
            TargetProcessGUID=GUID.lower(),
            TargetProcessId="4",
            TargetImage="x",
        )
    )
    assert doc["process"]["entity_id"] == GUID
    assert doc["winlog"]["event_data"] == {
        "TargetProcessGUID": GUID,
        "TargetProcessId": "4",
        "TargetImage": "x",
    }


def test_event_25_and_255() -> None:
    assert to_ecs(_raw(25, Type="Image is replaced"))["message"] == "Image is replaced"
    assert to_ecs(_raw(20, Type="Command Line"))["winlog"]["event_data"] == {"Type": "Command Line"}
    doc = to_ecs(_raw(255, ID="DriverCommunication", Description="Failed\r\n"))
    assert doc["error"] == {"code": "DriverCommunication", "message": "Failed"}
    assert "process" not in doc


def test_error_document() -> None:
    doc = error_document(
        "xml", "not well-formed", "/var/log/a.xml", "line 17", "<Event", when="2024-05-01T10:00:00.123456Z"
    )
    assert doc["event"]["kind"] == "pipeline_error"
    assert doc["event"]["original"] == "<Event"
    assert doc["error"]["type"] == "xml"
    assert "/var/log/a.xml" in doc["error"]["message"] and "line 17" in doc["error"]["message"]
    assert "not well-formed" in doc["error"]["message"]
    assert doc["log"]["file"]["path"] == "/var/log/a.xml"
    assert doc["@timestamp"] == "2024-05-01T10:00:00.123Z"
    assert "original" not in error_document("evtx_chunk", "bad", "a.evtx", "chunk 3", None)["event"]


# --- form convergence -----------------------------------------------------------------------

EVTX_FORM = RawEvent(
    provider=SYSMON_PROVIDER,
    event_id=3,
    event_data={
        "UtcTime": "2019-07-19 14:50:20.871",
        "ProcessGuid": "747F3D96-D6F7-5D31-0000-00104ACE2500",
        "ProcessId": "3912",
        "Initiated": "true",
        "SourceIsIpv6": "false",
        "SourceIp": "10.0.2.15",
        "SourcePort": "49727",
        "SourcePortName": "",
        "DestinationIp": "172.217.17.132",
        "DestinationPort": "80",
        "Protocol": "tcp",
        "LogonId": "0x000000000002c9e7",
    },
    record_id=3757,
    computer="MSEDGEWIN10",
    channel=SYSMON_CHANNEL,
    time_created="2019-07-19T14:50:25.3760301Z",
    provider_guid="5770385F-C22A-43E0-BF4C-06F5698FFBD9",
)
JSON_FORM = RawEvent(
    provider=SYSMON_PROVIDER,
    event_id=3,
    event_data={
        "UtcTime": "2019-07-19 14:50:20.871",
        "ProcessGuid": "{747f3d96-d6f7-5d31-0000-00104ace2500}",
        "ProcessId": "3912",
        "Initiated": "True",
        "SourceIsIpv6": "FALSE",
        "SourceIp": "10.0.2.15",
        "SourcePort": "49727",
        "SourcePortName": "-",
        "DestinationIp": "172.217.17.132",
        "DestinationPort": "80",
        "Protocol": "tcp",
        "LogonId": "0x2C9E7",
    },
    record_id=3757,
    computer="MSEDGEWIN10",
    channel=SYSMON_CHANNEL,
    time_created="2019-07-19T14:50:25.376030Z",
    provider_guid="{5770385f-c22a-43e0-bf4c-06f5698ffbd9}",
    original='{"EventID": 3}',
)


def test_forms_converge() -> None:
    assert to_ecs(EVTX_FORM) == to_ecs(JSON_FORM)
    assert document_id(EVTX_FORM) == document_id(JSON_FORM)


def test_document_id_distinguishes() -> None:
    base = _raw(1, UtcTime="2020-01-01 00:00:00.000", Image="a")
    other = _raw(1, UtcTime="2020-01-01 00:00:00.000", Image="b")
    assert document_id(base) != document_id(other)  # no record id: the data decides
    r1 = RawEvent(provider=SYSMON_PROVIDER, event_id=1, record_id=1, computer="H", event_data={"Image": "a"})
    r2 = RawEvent(provider=SYSMON_PROVIDER, event_id=1, record_id=2, computer="H", event_data={"Image": "a"})
    r1_upper = RawEvent(
        provider=SYSMON_PROVIDER, event_id=1, record_id=1, computer="h", event_data={"Image": "z"}
    )
    assert document_id(r1) != document_id(r2)
    assert document_id(r1) == document_id(r1_upper)  # computer is case-insensitive
    assert document_id(base) == document_id(_raw(1, UtcTime="2020-01-01 00:00:00.000", Image="a"))


# --- titles -----------------------------------------------------------------------------------


def test_titles_cover_the_table() -> None:
    assert set(TITLES) == set(EVENTS)
    assert TITLES[1] == "Process Create" and TITLES[22] == "Dns query" and TITLES[255] == "Error report"
    assert EVENT_ID_BY_TITLE["file delete"] == 23 and EVENT_ID_BY_TITLE["dns query"] == 22


# --- totality and emitted fields ----------------------------------------------------------

_TYPE_CHECKS: dict[str, Any] = {
    "keyword": lambda v: isinstance(v, str),
    "match_only_text": lambda v: isinstance(v, str),
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "date": lambda v: isinstance(v, str) and v.endswith("Z"),
    "ip": lambda v: isinstance(v, str),
}


def _leaves(doc: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if path == "winlog.event_data":
            out.extend(("winlog.event_data.*", v) for v in value.values())
        elif isinstance(value, dict):
            out.extend(_leaves(value, path + "."))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    out.extend(_leaves(item, path + "."))
                else:
                    out.append((path, item))
        else:
            out.append((path, value))
    return out


def _assert_fields_declared(doc: dict[str, Any]) -> None:
    fields = emitted_fields()
    for path, value in _leaves(doc):
        assert path in fields, f"{path} is emitted but not declared"
        assert _TYPE_CHECKS[fields[path]](value), f"{path}={value!r} is not a {fields[path]}"


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.input.json")), ids=lambda p: p.name)
def test_golden_documents_use_declared_fields(path: Path) -> None:
    _assert_fields_declared(to_ecs(RawEvent(**json.loads(path.read_text(encoding="utf-8")))))


def test_declared_types_are_known() -> None:
    assert set(emitted_fields().values()) <= set(_TYPE_CHECKS)


_FIELD_NAMES = st.sampled_from(
    [
        "UtcTime",
        "ProcessGuid",
        "ProcessId",
        "Image",
        "CommandLine",
        "User",
        "Hashes",
        "Hash",
        "SourceIp",
        "DestinationIp",
        "SourcePort",
        "DestinationPort",
        "Protocol",
        "Initiated",
        "SourceIsIpv6",
        "QueryName",
        "QueryStatus",
        "QueryResults",
        "TargetObject",
        "Details",
        "EventType",
        "TargetFilename",
        "ImageLoaded",
        "Signed",
        "SignatureStatus",
        "Archived",
        "IsExecutable",
        "PipeName",
        "ParentUser",
        "ParentCommandLine",
        "Type",
        "ID",
        "Description",
        "LogonId",
        "SourceThreadId",
        "RuleName",
        "Device",
        "Company",
    ]
) | st.text(max_size=12)
_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["-", "", "true", "FALSE", "0x0001", "{00000000-0000-0000-0000-000000000000}", "DWORD (0x1)"]
    ),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
)
_EIDS = st.sampled_from([*EVENTS, 0, 30, 65535]) | st.integers()


@settings(max_examples=300, deadline=None)
@given(
    eid=_EIDS,
    data=st.dictionaries(_FIELD_NAMES, _VALUES, max_size=12),
    time_created=st.none() | st.text(max_size=30) | st.just("2020-01-01T00:00:00.1234567Z"),
    record_id=st.none() | st.integers(min_value=-5, max_value=2**64),
    computer=st.none() | st.text(max_size=10),
    provider=st.sampled_from([SYSMON_PROVIDER, "Microsoft-Windows-Security-Auditing", ""]),
)
def test_to_ecs_never_raises(
    eid: int,
    data: dict[str, Any],
    time_created: str | None,
    record_id: int | None,
    computer: str | None,
    provider: str,
) -> None:
    raw = RawEvent(
        provider=provider,
        event_id=eid,
        event_data=data,
        time_created=time_created,
        record_id=record_id,
        computer=computer,
    )
    doc = to_ecs(raw)
    orjson.dumps(doc)  # always serialisable
    _assert_fields_declared(doc)
    assert doc["event"]["kind"] in {"event", "pipeline_error"}
    if doc["event"]["kind"] == "pipeline_error":
        assert doc["error"]["type"] == "mapping" and doc["event"]["original"]
    assert isinstance(document_id(raw), str)

"""Bad records through ``iter_documents``: kept and tagged by default, skipped and counted with
``skip_errors``; an unknown Sysmon event ID is shipped and counted, another provider is counted."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from shipper.pipeline import Item, Stats, iter_documents

NS = "http://schemas.microsoft.com/win/2004/08/events/event"


def _event(
    eid: int, record: int, when: str, data: dict[str, str], provider: str = "Microsoft-Windows-Sysmon"
) -> str:
    channel = "Microsoft-Windows-Sysmon/Operational" if provider.endswith("Sysmon") else "Security"
    fields = "".join(f"<Data Name='{k}'>{v}</Data>" for k, v in data.items())
    return (
        f"<Event xmlns='{NS}'><System><Provider Name='{provider}'/><EventID>{eid}</EventID>"
        f"<TimeCreated SystemTime='{when}T10:00:00.1234567Z'/><EventRecordID>{record}</EventRecordID>"
        f"<Channel>{channel}</Channel><Computer>WS01.corp</Computer></System>"
        f"<EventData>{fields}</EventData></Event>"
    )


BROKEN_XML = "<Event><System><Provider Name='Microsoft-Windows-Sysmon'/><EventID>1</EventID><broken></Event>"
BROKEN_JSON = '{"EventID": 3, "SourceName": "Microsoft-Windows-Sysmon", "Image": "C:\\\\x.exe"'


def _nxlog(eid: int, record: int, utc: str, **data: str) -> str:
    doc: dict[str, Any] = {
        "EventID": eid,
        "SourceName": "Microsoft-Windows-Sysmon",
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Hostname": "WS02",
        "RecordNumber": record,
        "UtcTime": utc,
        **data,
    }
    return orjson.dumps(doc).decode()


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[str, str]:
    xml = tmp_path / "events.xml"
    xml.write_text(
        "\n".join(
            [
                _event(
                    1,
                    11,
                    "2024-03-05",
                    {"UtcTime": "2024-03-05 10:00:00.120", "Image": r"C:\Windows\cmd.exe"},
                ),
                BROKEN_XML,  # line 2
                _event(999, 12, "2024-04-05", {"UtcTime": "2024-04-05 10:00:00.120", "Foo": "bar"}),
                _event(
                    4624,
                    13,
                    "2024-04-05",
                    {"TargetUserName": "bob"},
                    provider="Microsoft-Windows-Security-Auditing",
                ),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    jsonl = tmp_path / "events.ndjson"
    jsonl.write_text(
        "\n".join(
            [
                _nxlog(3, 7, "2024-03-06 11:00:00.000", Image=r"C:\x.exe", DestinationIp="10.0.0.1"),
                BROKEN_JSON,  # line 2
                _nxlog(22, 8, "2024-03-06 11:00:01.000", QueryName="example.com"),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return str(xml), str(jsonl)


def _errors(items: list[Item]) -> list[dict[str, Any]]:
    return [i.doc for i in items if i.doc["event"]["kind"] == "pipeline_error"]


def test_bad_records_are_kept_as_tagged_error_documents(inputs: tuple[str, str]) -> None:
    xml, jsonl = inputs
    stats = Stats()
    items = list(iter_documents([xml, jsonl], stats=stats))
    # 4 + 3 records; the Security event makes no document
    assert stats.records == 7
    assert stats.documents == len(items) == 6
    errs = _errors(items)
    assert len(errs) == 2
    by_type = {d["error"]["type"]: d for d in errs}
    assert set(by_type) == {"xml", "json"}

    x = by_type["xml"]
    assert x["error"]["message"].startswith(f"{xml} (line 2): ")
    assert x["event"]["original"].strip() == BROKEN_XML
    assert x["log"]["file"]["path"] == xml
    j = by_type["json"]
    assert j["error"]["message"].startswith(f"{jsonl} (line 2): ")
    assert "malformed JSON" in j["error"]["message"]
    assert j["event"]["original"].strip() == BROKEN_JSON
    assert j["log"]["file"]["path"] == jsonl
    # an error document takes the time of the event before it (its index is that month's)
    assert x["@timestamp"].startswith("2024-03-05T10:00:00")
    assert j["@timestamp"].startswith("2024-03-06T11:00:00")
    for item in items:
        if item.doc in errs:
            assert item.index_suffix == item.doc["@timestamp"][:7].replace("-", ".")
            assert item.position == "line 2"
    # the records around the broken ones are intact
    codes = [i.doc["event"].get("code") for i in items if i.doc["event"]["kind"] == "event"]
    assert codes == ["1", "999", "3", "22"]

    assert stats.errors == Counter({"xml": 1, "json": 1})
    assert stats.errors_skipped == 0
    assert any(s.startswith(f"{xml} (line 2)") for s in stats.error_samples)
    assert any(s.startswith(f"{jsonl} (line 2)") for s in stats.error_samples)
    # error documents have stable ids (a rerun ships no duplicate)
    again = list(iter_documents([xml, jsonl]))
    assert [i.doc_id for i in again] == [i.doc_id for i in items]
    assert len({i.doc_id for i in items}) == len(items)


def test_skip_errors_drops_and_counts_them(inputs: tuple[str, str]) -> None:
    xml, jsonl = inputs
    stats = Stats()
    items = list(iter_documents([xml, jsonl], skip_errors=True, stats=stats))
    assert _errors(items) == []
    assert [i.doc["event"]["code"] for i in items] == ["1", "999", "3", "22"]
    assert stats.records == 7
    assert stats.documents == 4
    assert stats.errors == Counter({"xml": 1, "json": 1})
    assert stats.errors_skipped == 2
    assert sorted(s.split(" (")[0] for s in stats.error_samples) == sorted([xml, jsonl])
    assert all("(line 2)" in s for s in stats.error_samples)
    summary = stats.as_dict()
    assert summary["errors"] == {"json": 1, "xml": 1}
    assert summary["errors_skipped"] == 2


def test_unknown_event_id_is_shipped_and_counted(inputs: tuple[str, str]) -> None:
    xml, _ = inputs
    stats = Stats()
    items = list(iter_documents([xml], skip_errors=True, stats=stats))
    unknown = [i.doc for i in items if i.doc["event"].get("code") == "999"]
    assert len(unknown) == 1
    doc = unknown[0]
    assert doc["event"]["kind"] == "event"
    assert doc["event"]["provider"] == "Microsoft-Windows-Sysmon"
    assert doc["winlog"]["event_data"] == {"Foo": "bar"}
    assert doc["@timestamp"].startswith("2024-04-05T10:00:00.120")
    assert stats.unknown_ids == Counter({999: 1})
    assert stats.sysmon_by_id == Counter({1: 1, 999: 1})
    assert stats.other_providers == Counter({"Microsoft-Windows-Security-Auditing": 1})
    assert stats.as_dict()["unknown_event_ids"] == {"999": 1}
    assert "unknown_ids=1" in stats.summary()


def test_a_mistyped_field_is_a_mapping_error(tmp_path: Path) -> None:
    """A value that cannot be converted keeps the event, raw, as a tagged mapping error (kept or
    skipped like read errors); the summary names file and line."""
    path = tmp_path / "mistyped.xml"
    path.write_text(
        _event(1, 5, "2024-03-05", {"UtcTime": "2024-03-05 10:00:00.120", "ProcessId": "abc"}) + "\n",
        encoding="utf-8",
    )
    stats = Stats()
    (item,) = list(iter_documents([str(path)], stats=stats))
    assert item.doc["event"]["kind"] == "pipeline_error"
    assert item.doc["error"]["type"] == "mapping"
    assert "ProcessId" in item.doc["error"]["message"]
    # the document itself says where the record came from, as a read-error document does
    assert item.doc["error"]["message"].startswith(f"{path} (line 1): ProcessId: cannot convert")
    assert item.doc["log"]["file"]["path"] == str(path)
    assert item.doc["winlog"]["event_data"]["ProcessId"] == "abc"
    assert "<Data Name='ProcessId'>abc</Data>" in item.doc["event"]["original"]
    assert stats.errors == Counter({"mapping": 1})
    assert stats.error_samples[0].startswith(f"{path} (line 1): ")

    skipped = Stats()
    assert list(iter_documents([str(path)], skip_errors=True, stats=skipped)) == []
    assert skipped.errors == Counter({"mapping": 1})
    assert skipped.errors_skipped == 1

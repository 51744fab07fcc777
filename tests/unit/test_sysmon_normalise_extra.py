"""Values seen in real Sysmon exports that must map without a pipeline error."""

from __future__ import annotations

from shipper.raw import RawEvent
from shipper.sysmon.ecs import to_ecs


def test_archived_with_detail_keeps_boolean_and_raw_detail() -> None:
    raw = RawEvent(
        provider="Microsoft-Windows-Sysmon",
        event_id=28,
        record_id=7,
        computer="WS01",
        event_data={
            "UtcTime": "2023-07-19 10:00:00.000",
            "TargetFilename": "C:\\Users\\a\\x.exe",
            "Archived": "false - shredded file with pattern 0x0000",
        },
    )
    doc = to_ecs(raw)
    assert doc["event"]["kind"] == "event"
    assert doc["sysmon"]["file"]["archived"] is False
    assert doc["winlog"]["event_data"]["Archived"] == "false - shredded file with pattern 0x0000"


def test_archived_nonsense_is_still_a_tagged_error() -> None:
    raw = RawEvent(
        provider="Microsoft-Windows-Sysmon",
        event_id=23,
        record_id=8,
        computer="WS01",
        event_data={"UtcTime": "2023-07-19 10:00:00.000", "Archived": "maybe"},
    )
    doc = to_ecs(raw)
    assert doc["event"]["kind"] == "pipeline_error"
    assert "Archived" in doc["error"]["message"]

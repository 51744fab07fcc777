"""``winlog.*``: the System fields as winlogbeat names them, and the EventData not mapped (the
native core's ``map/winlog.rs``)."""

from __future__ import annotations

from typing import Final

from shipper.raw import RawEvent
from shipper.sysmon.map_tree import MAX_LONG, Doc, State, int_or_none, sub, text
from shipper.sysmon.normalise import normalise_guid

LOG_LEVELS: Final[dict[int, str]] = {
    0: "information",
    1: "critical",
    2: "error",
    3: "warning",
    4: "information",
    5: "verbose",
}
#: Standard Windows event opcodes (winmeta.xml) → the name the Event Viewer shows.
OPCODES: Final[dict[int, str]] = {
    0: "Info",
    1: "Start",
    2: "Stop",
    3: "DCStart",
    4: "DCStop",
    7: "Extension",
    8: "Reply",
    9: "Resume",
    10: "Suspend",
    11: "Send",
    240: "Receive",
}


def map_winlog(raw: RawEvent, st: State, doc: Doc, event_code: str) -> None:
    winlog: Doc = {}
    if raw.channel:
        winlog["channel"] = text(raw.channel)
    if raw.computer:
        winlog["computer_name"] = text(raw.computer)
    winlog["event_id"] = event_code
    record_id_raw = raw.record_id
    if record_id_raw is not None:
        record_id = int_or_none(record_id_raw)
        if record_id is None or record_id > MAX_LONG:
            st.errors.append(f"EventRecordID: cannot convert {record_id_raw!r} to an integer")
        else:
            winlog["record_id"] = record_id
    winlog["provider_name"] = text(raw.provider)
    if raw.provider_guid:
        guid = text(raw.provider_guid)
        winlog["provider_guid"] = normalise_guid(guid) or guid
    pid = int_or_none(raw.process_id)
    if pid is not None:
        winlog["process"] = {"pid": pid}
    tid = int_or_none(raw.thread_id)
    if tid is not None:
        sub(winlog, "process")["thread"] = {"id": tid}
    version = int_or_none(raw.version)
    if version is not None:
        winlog["version"] = version
    opcode = int_or_none(raw.opcode)
    if opcode is not None:
        winlog["opcode"] = OPCODES.get(opcode, str(opcode))
    task = int_or_none(raw.task)
    if task is not None:
        winlog["task"] = str(task)
    if raw.user_sid:
        winlog["user"] = {"identifier": text(raw.user_sid)}
    if st.data:
        winlog["event_data"] = st.data
    doc["winlog"] = winlog

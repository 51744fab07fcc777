"""Render :class:`~samples.model.SysmonEvent` objects in the four text forms users collect.

Every writer streams to a binary file object, one event at a time; ``close()`` writes any
trailer (it never closes the file). The forms mirror what the real tools write:

- ``xml``: ``wevtutil qe Microsoft-Windows-Sysmon/Operational /f:xml /e:Events`` — one
  ``<Event>`` per line, single-quoted attributes, inside an ``<Events>`` root.
- ``winlogbeat``: winlogbeat 8 documents as its file/console output writes them (no ingest
  pipeline applied): ``winlog.*``, ``event.code``, ``log.level``, ``message``…
  ``@timestamp`` is TimeCreated (millisecond precision, as Beats encode it) and
  ``winlog.time_created`` the same at full precision; ``event.created`` is the time the beat
  read the record, a moment later (as in real winlogbeat: readers must not take it for
  TimeCreated).
- ``nxlog``: NXLog ``im_msvistalog`` + ``to_json()`` as in the OTRF/Mordor datasets: EventData
  flattened beside the System fields, ``EventTime`` in the collector's local time (UTC here)
  without fraction, ``Keywords`` as a signed integer, and EventData's own ``EventType``
  (events 12–14, 17, 18) overwriting NXLog's ``EventType`` as it does in those files. As in
  those files the flat ``LogonId`` is lower-case while ``Message`` shows it upper-case.
- ``text``: the rendered message (Event Viewer's General tab): title line, ``Name: value``
  lines ended by ``\\r\\n``, a blank line between events. It has no computer or record id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import BinaryIO, Protocol

import orjson

from samples.model import (
    CHANNEL,
    KEYWORDS,
    PROVIDER,
    PROVIDER_GUID,
    TASK_NAMES,
    TICKS_PER_MS,
    SysmonEvent,
    TimeFormatter,
)

XMLNS = "http://schemas.microsoft.com/win/2004/08/events/event"
WINLOGBEAT_VERSION = "8.15.3"
NXLOG_KEYWORDS = int(KEYWORDS, 16) - (1 << 64)  # NXLog prints the 64-bit mask as signed


class Writer(Protocol):
    def write(self, ev: SysmonEvent) -> None: ...

    def close(self) -> None: ...


def _xml_escape(value: str) -> str:
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    return value


def _ingest_lag_ticks(ev: SysmonEvent) -> int:
    """A deterministic 0.1–1.0 s delay between TimeCreated and collection."""
    return ((ev.record_id * 7919 + ev.event_id) % 900 + 100) * TICKS_PER_MS


def _rfc3339_nano(system_time: str) -> str:
    """Go's RFC3339Nano rendering (trailing zeros of the fraction trimmed), as Beats write
    ``winlog.time_created``."""
    head, frac = system_time[:-1].split(".")
    frac = frac.rstrip("0")
    return f"{head}.{frac}Z" if frac else f"{head}Z"


class XmlWriter:
    """Event XML as ``wevtutil qe /f:xml /e:Events`` writes it."""

    def __init__(self, fp: BinaryIO) -> None:
        self._fp = fp
        self._fmt = TimeFormatter()
        self._guid = PROVIDER_GUID.lower()
        fp.write(b"<Events>\r\n")

    def write(self, ev: SysmonEvent) -> None:
        data = "".join(f"<Data Name='{k}'>{_xml_escape(v)}</Data>" for k, v in ev.data.items())
        line = (
            f"<Event xmlns='{XMLNS}'><System><Provider Name='{PROVIDER}' Guid='{self._guid}'/>"
            f"<EventID>{ev.event_id}</EventID><Version>{ev.version}</Version><Level>{ev.level}</Level>"
            f"<Task>{ev.task}</Task><Opcode>{ev.opcode}</Opcode><Keywords>{ev.keywords}</Keywords>"
            f"<TimeCreated SystemTime='{self._fmt.system_time(ev.time_created)}'/>"
            f"<EventRecordID>{ev.record_id}</EventRecordID><Correlation/>"
            f"<Execution ProcessID='{ev.process_id}' ThreadID='{ev.thread_id}'/>"
            f"<Channel>{CHANNEL}</Channel><Computer>{ev.host}</Computer>"
            f"<Security UserID='{ev.user_sid}'/></System><EventData>{data}</EventData></Event>\r\n"
        )
        self._fp.write(line.encode("utf-8"))

    def close(self) -> None:
        self._fp.write(b"</Events>\r\n")


class WinlogbeatWriter:
    """Winlogbeat 8 JSON lines (raw documents, before any ingest pipeline)."""

    def __init__(self, fp: BinaryIO) -> None:
        self._fp = fp
        self._fmt = TimeFormatter()
        self._guid = PROVIDER_GUID.lower()
        self._agents: dict[str, dict[str, str]] = {}

    def _agent(self, host: str) -> dict[str, str]:
        agent = self._agents.get(host)
        if agent is None:
            h = hashlib.sha256(host.encode()).hexdigest()
            uuid = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
            eph = f"{h[32:40]}-{h[40:44]}-4{h[45:48]}-b{h[49:52]}-{h[52:64]}"
            agent = {
                "ephemeral_id": eph,
                "id": uuid,
                "name": host.split(".", 1)[0].lower(),
                "type": "winlogbeat",
                "version": WINLOGBEAT_VERSION,
            }
            self._agents[host] = agent
        return agent

    def write(self, ev: SysmonEvent) -> None:
        fmt = self._fmt
        task = TASK_NAMES[ev.event_id]
        doc = {
            "@timestamp": fmt.iso_ms(ev.time_created),
            "agent": self._agent(ev.host),
            "ecs": {"version": "8.0.0"},
            "event": {
                "action": task,
                "code": str(ev.event_id),
                "created": fmt.iso_ms(ev.time_created + _ingest_lag_ticks(ev)),
                "kind": "event",
                "provider": PROVIDER,
            },
            "host": {"name": ev.host.split(".", 1)[0].lower()},
            "log": {"level": "information"},
            "message": "\n".join(ev.message_lines()),
            "winlog": {
                "api": "wineventlog",
                "channel": CHANNEL,
                "computer_name": ev.host,
                "event_data": ev.data,
                "event_id": str(ev.event_id),
                "opcode": "Info",
                "process": {"pid": ev.process_id, "thread": {"id": ev.thread_id}},
                "provider_guid": self._guid,
                "provider_name": PROVIDER,
                "record_id": ev.record_id,
                "task": task,
                "time_created": _rfc3339_nano(fmt.system_time(ev.time_created)),
                "user": {
                    "domain": "NT AUTHORITY",
                    "identifier": ev.user_sid,
                    "name": "SYSTEM",
                    "type": "User",
                },
                "version": ev.version,
            },
        }
        self._fp.write(orjson.dumps(doc) + b"\n")

    def close(self) -> None:
        pass


class NxlogWriter:
    """NXLog ``im_msvistalog`` JSON lines, shaped like the OTRF (Mordor) datasets."""

    def __init__(self, fp: BinaryIO) -> None:
        self._fp = fp
        self._fmt = TimeFormatter()

    def write(self, ev: SysmonEvent) -> None:
        fmt = self._fmt
        eid = ev.event_id
        doc: dict[str, object] = {
            "EventTime": fmt.seconds(ev.time_created),
            "Hostname": ev.host,
            "Keywords": NXLOG_KEYWORDS,
            "EventType": "INFO",
            "SeverityValue": 2,
            "Severity": "INFO",
            "EventID": eid,
            "SourceName": PROVIDER,
            "ProviderGuid": PROVIDER_GUID,
            "Version": ev.version,
            "Task": ev.task,
            "OpcodeValue": ev.opcode,
            "RecordNumber": ev.record_id,
            "ExecutionProcessID": ev.process_id,
            "ThreadID": ev.thread_id,
            "Channel": CHANNEL,
            "Domain": "NT AUTHORITY",
            "AccountName": "SYSTEM",
            "UserID": ev.user_sid,
            "AccountType": "User",
            "Message": "\r\n".join(ev.message_lines()),
            "Category": TASK_NAMES[eid],
            "Opcode": "Info",
        }
        doc.update(ev.data)
        if "LogonId" in ev.data:
            doc["LogonId"] = ev.data["LogonId"].lower()
        doc["EventReceivedTime"] = fmt.seconds(ev.time_created + _ingest_lag_ticks(ev))
        doc["SourceModuleName"] = "eventlog"
        doc["SourceModuleType"] = "im_msvistalog"
        self._fp.write(orjson.dumps(doc) + b"\n")

    def close(self) -> None:
        pass


class TextWriter:
    """The rendered message text, ``\\r\\n`` line ends, a blank line between events."""

    def __init__(self, fp: BinaryIO) -> None:
        self._fp = fp

    def write(self, ev: SysmonEvent) -> None:
        self._fp.write(("\r\n".join(ev.message_lines()) + "\r\n\r\n").encode("utf-8"))

    def close(self) -> None:
        pass


# Registry: form name → (file name, writer factory).
FORMS: dict[str, tuple[str, Callable[[BinaryIO], Writer]]] = {
    "xml": ("sysmon.xml", XmlWriter),
    "winlogbeat": ("winlogbeat.ndjson", WinlogbeatWriter),
    "nxlog": ("nxlog.ndjson", NxlogWriter),
    "text": ("sysmon.txt", TextWriter),
}

"""JSON documents → RawEvent: winlogbeat / Elastic Agent documents and NXLog documents.

Document shapes (told apart by the presence of a ``winlog`` object):

* winlogbeat / Elastic Agent: everything under ``winlog``; EventData is ``winlog.event_data``.
  TimeCreated is taken from ``winlog.time_created``, else ``event.created``, else
  ``@timestamp`` (raw winlogbeat output sets ``@timestamp`` to the event's TimeCreated; after
  the Sysmon ingest pipeline ``event.created`` holds it). ``log.level`` names
  (``information``…) map to the Windows Level numbers.
* NXLog (``im_msvistalog``, often shipped through logstash): System fields and EventData are
  flat siblings. Keys NXLog and logstash add are metadata (``NXLOG_METADATA``); every other key
  is EventData. NXLog's own ``EventType`` (``INFO``, ``AUDIT_SUCCESS``…) is metadata, Sysmon's
  ``EventType`` (``CreateKey``, ``SetValue``…) is EventData; when both existed the export
  renamed NXLog's to ``EventTypeOrignal`` (sic). Level comes from ``Level`` or, failing that,
  from NXLog's ``SeverityValue`` mapped back to the Windows level (INFO→4 etc.).

Decision on NXLog times: ``EventTime`` (and ``EventReceivedTime``) are written by NXLog in the
collector's *local* time without a zone (``2020-09-04 03:06:09`` for an event whose Sysmon
``UtcTime`` is ``07:06:09.681``); the zone is not in the document, so such a value gives
``time_created = None`` rather than a guess. An ``EventTime`` that carries a zone offset is
converted to UTC. A top-level ``TimeCreated`` is not trusted either: in the real exports that
carry it, it is local wall-clock time labelled ``Z`` (every Sysmon event in them is exactly
7 h off its ``UtcTime``). ``@timestamp`` is logstash's receive time there, never TimeCreated.
Sysmon's own ``UtcTime`` (EventData) is untouched and is what ``@timestamp`` is built from.
"""

from __future__ import annotations

from typing import Any

from shipper.raw import SYSMON_PROVIDER, RawEvent, ReadError
from shipper.readers._common import guid_braced, keywords_hex, text_value, to_int, utc_iso

#: Top-level keys of NXLog / logstash documents that are not EventData.
NXLOG_METADATA = frozenset(
    {
        # im_msvistalog System fields and rendering
        "EventTime", "EventReceivedTime", "Hostname", "Keywords", "EventType", "EventTypeOrignal",
        "SeverityValue", "Severity", "EventID", "SourceName", "ProviderGuid", "Version", "Task",
        "OpcodeValue", "Opcode", "RecordNumber", "ActivityID", "RelatedActivityID",
        "ExecutionProcessID", "ThreadID", "Channel", "Domain", "AccountName", "UserID",
        "AccountType", "Category", "Message", "Level", "Qualifiers", "SourceModuleName",
        "SourceModuleType", "ERROR_EVT_UNRESOLVED", "TimeCreated", "EventData", "UserData",
        "MessageSourceAddress", "SourceAddress",
        # logstash / shipper additions
        "@timestamp", "@version", "host", "port", "tags", "type", "path", "log", "agent", "ecs",
        "beat", "input", "fields",
    }
)  # fmt: skip

#: NXLog's own EventType vocabulary (Sysmon's EventType values never take these).
NXLOG_EVENT_TYPES = frozenset(
    {"INFO", "WARNING", "ERROR", "CRITICAL", "VERBOSE", "AUDIT_SUCCESS", "AUDIT_FAILURE"}
)

#: NXLog SeverityValue → Windows Level (NXLog maps Level 0 and 4 both to INFO; 4 is read back).
_SEVERITY_TO_LEVEL = {1: 5, 2: 4, 3: 3, 4: 2, 5: 1}
#: winlogbeat ``log.level`` names → Windows Level.
_LEVEL_NAMES = {"critical": 1, "error": 2, "warning": 3, "information": 4, "info": 4, "verbose": 5}


def _sysmon_type(value: Any) -> bool:
    return isinstance(value, str) and value not in NXLOG_EVENT_TYPES


def _get(doc: dict[str, Any], *path: str) -> Any:
    node: Any = doc
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _str(value: Any) -> str | None:
    text = text_value(value)
    return text or None


#: Windows' standard opcode names as winlogbeat renders them.
_OPCODE_NAMES = {"info": 0, "start": 1, "stop": 2, "datacollectionstart": 3, "datacollectionstop": 4}


def _level_name(value: Any) -> int | None:
    if isinstance(value, str):
        return _LEVEL_NAMES.get(value.strip().lower(), to_int(value))
    return to_int(value)


def event_from_winlogbeat(
    doc: dict[str, Any],
    source: str,
    position: str,
    original: str | None,
    end_offset: int | None = None,
    end_line: int | None = None,
) -> RawEvent:
    winlog = doc["winlog"]
    event_id = to_int(winlog.get("event_id"))
    if event_id is None:
        event_id = to_int(_get(doc, "event", "code"))
    if event_id is None:
        raise ValueError("document has no winlog.event_id")
    provider = _str(winlog.get("provider_name")) or _str(_get(doc, "event", "provider"))
    if not provider:
        raise ValueError("document has no winlog.provider_name")
    data: dict[str, str] = {}
    raw_data = winlog.get("event_data")
    if isinstance(raw_data, dict):
        for key, value in raw_data.items():
            text = text_value(value)
            if text is not None:
                data[key] = text
    # winlogbeat's @timestamp is the record's TimeCreated; event.created is when the beat read it.
    stamp = (
        utc_iso(winlog.get("time_created"))
        or utc_iso(doc.get("@timestamp"))
        or utc_iso(_get(doc, "event", "created"))
    )
    task = to_int(winlog.get("task"))
    if task is None and provider == SYSMON_PROVIDER and _str(winlog.get("task")):
        # winlogbeat renders the task as text ("Process Create (rule: ProcessCreate)"); Sysmon's
        # task number is its event ID, which the other forms carry.
        task = event_id
    opcode = to_int(winlog.get("opcode"))
    if opcode is None:
        opcode = _OPCODE_NAMES.get(str(winlog.get("opcode", "")).strip().lower())
    keywords = winlog.get("keywords")
    return RawEvent(
        provider=provider,
        event_id=event_id,
        event_data=data,
        record_id=to_int(winlog.get("record_id")),
        computer=_str(winlog.get("computer_name")),
        channel=_str(winlog.get("channel")),
        time_created=stamp,
        provider_guid=guid_braced(winlog.get("provider_guid")),
        version=to_int(winlog.get("version")),
        level=_level_name(_get(doc, "log", "level")),
        task=task,
        opcode=opcode,
        keywords=keywords_hex(keywords) if not isinstance(keywords, list) else None,
        process_id=to_int(_get(winlog, "process", "pid")),
        thread_id=to_int(_get(winlog, "process", "thread", "id")),
        user_sid=_str(_get(winlog, "user", "identifier")),
        source=source,
        position=position,
        original=original,
        end_offset=end_offset,
        end_line=end_line,
    )


def event_from_nxlog(
    doc: dict[str, Any],
    source: str,
    position: str,
    original: str | None,
    end_offset: int | None = None,
    end_line: int | None = None,
) -> RawEvent:
    event_id = to_int(doc.get("EventID"))
    if event_id is None:
        raise ValueError("document has no EventID")
    provider = _str(doc.get("SourceName")) or _str(doc.get("ProviderName"))
    if not provider:
        raise ValueError("document has no SourceName")
    sysmon_event_type = "EventTypeOrignal" in doc
    data: dict[str, str] = {}
    for key, value in doc.items():
        if key in NXLOG_METADATA and not (key == "EventType" and (sysmon_event_type or _sysmon_type(value))):
            continue
        text = text_value(value)
        if text is not None:
            data[key] = text
    level = to_int(doc.get("Level"))
    if level is None:
        severity = to_int(doc.get("SeverityValue"))
        level = _SEVERITY_TO_LEVEL.get(severity) if severity is not None else None
    event_time = doc.get("EventTime")
    return RawEvent(
        provider=provider,
        event_id=event_id,
        event_data=data,
        record_id=to_int(doc.get("RecordNumber")),
        computer=_str(doc.get("Hostname")),
        channel=_str(doc.get("Channel")),
        time_created=utc_iso(event_time) if isinstance(event_time, str) else None,
        provider_guid=guid_braced(doc.get("ProviderGuid")),
        version=to_int(doc.get("Version")),
        level=level,
        task=to_int(doc.get("Task")),
        opcode=to_int(doc.get("OpcodeValue")),
        keywords=keywords_hex(doc.get("Keywords")),
        process_id=to_int(doc.get("ExecutionProcessID")),
        thread_id=to_int(doc.get("ThreadID")),
        user_sid=_str(doc.get("UserID")) or _str(doc.get("SID")),
        source=source,
        position=position,
        original=original,
        end_offset=end_offset,
        end_line=end_line,
    )


def event_from_document(
    doc: Any,
    source: str,
    position: str,
    original: str | None,
    end_offset: int | None = None,
    end_line: int | None = None,
) -> RawEvent | ReadError:
    """Map one decoded JSON document (either shape) to a RawEvent, or say why not."""
    if not isinstance(doc, dict):
        return ReadError(
            "json",
            f"expected a JSON object, found {type(doc).__name__}",
            source,
            position,
            original,
            end_offset=end_offset,
            end_line=end_line,
        )
    try:
        if isinstance(doc.get("winlog"), dict):
            return event_from_winlogbeat(doc, source, position, original, end_offset, end_line)
        return event_from_nxlog(doc, source, position, original, end_offset, end_line)
    except (ValueError, TypeError, AttributeError) as exc:
        return ReadError(
            "json", str(exc), source, position, original, end_offset=end_offset, end_line=end_line
        )

"""Sysmon RawEvent → ECS document (docs/ecs-mapping.md). Pure: no I/O, never raises.

Public API: :data:`ECS_VERSION`, :func:`to_ecs`, :func:`error_document`, :func:`document_id`,
:func:`emitted_fields` (and :data:`EMITTED_FIELDS`).

The mapper works on a normalised copy of the EventData; every rule that consumes a field removes
it from that copy, and what is left goes to ``winlog.event_data``. A field whose value cannot be
converted is not consumed: it stays raw under ``winlog.event_data`` and the document becomes a
``pipeline_error`` naming it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any, Final

import orjson

from shipper.raw import SYSMON_CHANNEL, SYSMON_PROVIDER, RawEvent
from shipper.sysmon.cmdline import split_command_line
from shipper.sysmon.community_id import community_id
from shipper.sysmon.dns import parse_ip, parse_query_results, status_name
from shipper.sysmon.events import EVENTS, EventSpec
from shipper.sysmon.fields import EMITTED_FIELDS, MULTI_FIELD_PATHS
from shipper.sysmon.hashes import ECS_HASH_ALGOS, IMPHASH, parse_hashes
from shipper.sysmon.normalise import (
    iso_to_millis,
    normalise_event_data,
    normalise_guid,
    parse_bool,
    parse_int,
    parse_iso_time,
    parse_utc_time,
    to_text,
)
from shipper.sysmon.psl import split_domain
from shipper.sysmon.registry import parse_details, parse_registry_path

__all__ = [
    "ECS_VERSION",
    "EMITTED_FIELDS",
    "MULTI_FIELD_PATHS",
    "document_id",
    "emitted_fields",
    "error_document",
    "to_ecs",
    "to_ecs_and_id",
]

ECS_VERSION: Final = "8.17.0"
MODULE: Final = "sysmon"
DATASET: Final = "sysmon.operational"

_MAX_LONG: Final = (1 << 63) - 1
_MAX_PORT: Final = 65535

_LOG_LEVELS: Final[dict[int, str]] = {
    0: "information",
    1: "critical",
    2: "error",
    3: "warning",
    4: "information",
    5: "verbose",
}
#: Standard Windows event opcodes (winmeta.xml) → the name the Event Viewer shows.
_OPCODES: Final[dict[int, str]] = {
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

Doc = dict[str, Any]
Path = tuple[str, ...]


def _p(dotted: str) -> Path:
    return tuple(dotted.split("."))


# Plain string copies: EventData name → ECS path (first present name wins for a shared path).
_STRINGS: Final[tuple[tuple[str, Path], ...]] = tuple(
    (name, _p(path))
    for name, path in (
        ("ProcessGuid", "process.entity_id"),
        ("SourceProcessGuid", "process.entity_id"),
        ("SourceProcessGUID", "process.entity_id"),
        ("CurrentDirectory", "process.working_directory"),
        ("ParentProcessGuid", "process.parent.entity_id"),
        ("Signature", "file.code_signature.subject_name"),
        ("SourceHostname", "source.domain"),
        ("DestinationHostname", "destination.domain"),
    )
)
# Integer copies: EventData name → (ECS path, maximum).
_INTS: Final[tuple[tuple[str, Path, int], ...]] = tuple(
    (name, _p(path), top)
    for name, path, top in (
        ("ProcessId", "process.pid", _MAX_LONG),
        ("SourceProcessId", "process.pid", _MAX_LONG),
        ("SourceThreadId", "process.thread.id", _MAX_LONG),
        ("ParentProcessId", "process.parent.pid", _MAX_LONG),
        ("SourcePort", "source.port", _MAX_PORT),
        ("DestinationPort", "destination.port", _MAX_PORT),
    )
)
_PE_FIELDS: Final[tuple[tuple[str, str], ...]] = (
    ("OriginalFileName", "original_file_name"),
    ("Company", "company"),
    ("Description", "description"),
    ("FileVersion", "file_version"),
    ("Product", "product"),
)
_FILE_PATH_FIELDS: Final = ("TargetFilename", "ImageLoaded", "Device")
_HASH_FIELDS: Final = ("Hashes", "Hash")
_BOOL_TARGETS: Final[tuple[tuple[str, Path], ...]] = (
    ("Signed", _p("file.code_signature.signed")),
    ("Archived", _p("sysmon.file.archived")),
    ("IsExecutable", _p("sysmon.file.is_executable")),
)


def emitted_fields() -> Mapping[str, str]:
    """Every ECS field path (dotted) the mapper can emit → its Elasticsearch type.

    ``winlog.event_data.*`` is an object of keywords. See :mod:`shipper.sysmon.fields`.
    """
    return EMITTED_FIELDS


def _put(doc: Doc, path: Path, value: Any) -> None:
    d = doc
    for key in path[:-1]:
        nxt = d.get(key)
        if nxt is None:
            nxt = d[key] = {}
        d = nxt
    d[path[-1]] = value


def _has(doc: Doc, path: Path) -> bool:
    d: Any = doc
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return False
        d = d[key]
    return True


def _sub(d: Doc, key: str) -> Doc:
    nxt = d.get(key)
    if nxt is None:
        nxt = d[key] = {}
    return nxt


def _add_unique(items: list[str], value: str) -> None:
    if value not in items:
        items.append(value)


def _basename(path: str) -> str:
    return path.rpartition("\\")[2] or path


class _State:
    """Per-event scratch: the EventData still unconsumed, errors, related.* lists."""

    __slots__ = ("data", "errors", "hashes", "hosts", "ips", "users")

    def __init__(self, data: dict[str, str]) -> None:
        self.data = data
        self.errors: list[str] = []
        self.ips: list[str] = []
        self.users: list[str] = []
        self.hashes: list[str] = []
        self.hosts: list[str] = []

    def fail(self, name: str, value: str, what: str) -> None:
        self.errors.append(f"{name}: cannot convert {value!r} to {what}")

    def take_int(self, name: str, top: int) -> int | None:
        value = self.data.get(name)
        if value is None:
            return None
        n = parse_int(value)
        if n is None or n > top:
            self.fail(name, value, "an integer" if top == _MAX_LONG else f"an integer 0..{top}")
            return None
        del self.data[name]
        return n

    def take_bool(self, name: str) -> bool | None:
        value = self.data.get(name)
        if value is None:
            return None
        b = parse_bool(value)
        if b is None:
            # Sysmon adds detail after the word for some outcomes (event 28: ``false - shredded
            # file with pattern 0x00``): the boolean is the first word; the detail stays raw.
            head, sep, _ = value.partition(" - ")
            b = parse_bool(head.strip().lower()) if sep else None
            if b is None:
                self.fail(name, value, "a boolean")
            return b
        del self.data[name]
        return b

    def take_ip(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        ip = parse_ip(value)
        if ip is None:
            self.fail(name, value, "an IP address")
            return None
        del self.data[name]
        return ip


def _map_user(st: _State, target: Doc, user_value: str) -> None:
    parts = user_value.split("\\")
    if len(parts) == 2 and parts[0] and parts[1]:
        target["domain"] = parts[0]
        target["name"] = parts[1]
        _add_unique(st.users, parts[1])
    else:
        target["name"] = user_value
        _add_unique(st.users, user_value)


def _map_command_line(target: Doc, command_line: str) -> None:
    target["command_line"] = command_line
    args = split_command_line(command_line)
    if args:
        target["args"] = args
        target["args_count"] = len(args)


def _map_file_path(file: Doc, path: str) -> None:
    file["path"] = path
    directory, sep, name = path.rpartition("\\")
    if sep and directory:
        file["directory"] = directory
    if not name:
        return
    file["name"] = name
    base = name.partition(":")[0]  # an alternate data stream (event 15) is not the extension
    stem, dot, ext = base.rpartition(".")
    if dot and stem and ext:
        file["extension"] = ext


def _map_hashes(st: _State, doc: Doc, target: str) -> None:
    for field in _HASH_FIELDS:
        value = st.data.get(field)
        if value is None:
            continue
        pairs = parse_hashes(value)
        if not pairs:
            continue  # nothing usable (e.g. "Unknown"): the raw value stays
        root = _sub(doc, target)
        complete = True
        for algo, digest in pairs:
            if algo == IMPHASH:
                _sub(root, "pe")["imphash"] = digest
            elif algo in ECS_HASH_ALGOS:
                _sub(root, "hash")[algo] = digest
            else:
                complete = False  # no ECS field for it: keep the raw string as well
            _add_unique(st.hashes, digest)
        if complete:
            del st.data[field]


def _map_process(st: _State, doc: Doc, spec: EventSpec | None) -> None:
    data = st.data
    image = data.pop("Image", None) or data.pop("SourceImage", None)
    if image is not None:
        proc = _sub(doc, "process")
        proc["executable"] = image
        proc["name"] = _basename(image)
    command_line = data.pop("CommandLine", None)
    if command_line is not None:
        _map_command_line(_sub(doc, "process"), command_line)
    parent_image = data.pop("ParentImage", None)
    if parent_image is not None:
        parent = _sub(_sub(doc, "process"), "parent")
        parent["executable"] = parent_image
        parent["name"] = _basename(parent_image)
    parent_command_line = data.pop("ParentCommandLine", None)
    if parent_command_line is not None:
        _map_command_line(_sub(_sub(doc, "process"), "parent"), parent_command_line)
    user = data.pop("User", None)
    if user is not None:
        _map_user(st, _sub(doc, "user"), user)
    parent_user = data.pop("ParentUser", None)
    if parent_user is not None:
        _map_user(st, _sub(_sub(_sub(doc, "process"), "parent"), "user"), parent_user)
    pe_root = spec.pe_target if spec is not None else None
    if pe_root is not None:
        for name, ecs_name in _PE_FIELDS:
            value = data.pop(name, None)
            if value is not None:
                _sub(_sub(doc, pe_root), "pe")[ecs_name] = value


def _map_file(st: _State, doc: Doc) -> None:
    data = st.data
    for name in _FILE_PATH_FIELDS:
        value = data.pop(name, None)
        if value is not None:
            _map_file_path(_sub(doc, "file"), value)
            break
    pipe = data.get("PipeName")
    if pipe is not None and not _has(doc, ("file", "name")):
        _sub(doc, "file")["name"] = pipe
        del data["PipeName"]
    status = data.pop("SignatureStatus", None)
    if status is not None:
        signature = _sub(_sub(doc, "file"), "code_signature")
        signature["status"] = status
        signature["valid"] = status == "Valid"


def _map_network(st: _State, doc: Doc) -> None:
    data = st.data
    transport = data.pop("Protocol", None)
    if transport is not None:
        _sub(doc, "network")["transport"] = transport.lower()
    for side, name in (("source", "SourceIp"), ("destination", "DestinationIp")):
        ip = st.take_ip(name)
        if ip is not None:
            _sub(doc, side)["ip"] = ip
            _add_unique(st.ips, ip)
    for name in ("DestinationPortName", "SourcePortName"):
        port_name = data.get(name)
        if port_name is not None:
            _sub(doc, "network")["protocol"] = port_name.lower()
            del data[name]
            break
    initiated = st.take_bool("Initiated")
    if initiated is not None:
        _sub(doc, "network")["direction"] = "egress" if initiated else "ingress"
    ipv6 = st.take_bool("SourceIsIpv6")
    if ipv6 is not None:
        _sub(doc, "network")["type"] = "ipv6" if ipv6 else "ipv4"
    if transport is not None:
        src = doc.get("source")
        dst = doc.get("destination")
        if src and dst and "ip" in src and "ip" in dst and "port" in src and "port" in dst:
            cid = community_id(transport, src["ip"], src["port"], dst["ip"], dst["port"])
            if cid is not None:
                doc["network"]["community_id"] = cid


def _map_dns(st: _State, doc: Doc, eid: int | None) -> None:
    data = st.data
    name = data.pop("QueryName", None)
    if name is not None:
        question: Doc = {"name": name}
        parts = split_domain(name)
        if parts is not None:
            question["registered_domain"] = parts.registered_domain
            question["top_level_domain"] = parts.top_level_domain
            if parts.subdomain:
                question["subdomain"] = parts.subdomain
        _sub(doc, "dns")["question"] = question
        if name:
            _add_unique(st.hosts, name)
    status = data.pop("QueryStatus", None)
    if status is not None:
        _sub(_sub(doc, "sysmon"), "dns")["status"] = status_name(status)
    results = data.get("QueryResults")
    if results is not None:
        parsed = parse_query_results(results)
        if parsed.answers:
            dns = _sub(doc, "dns")
            dns["answers"] = [{"type": a.type, "data": a.data} for a in parsed.answers]
            if parsed.ips:
                resolved: list[str] = []
                for ip in parsed.ips:
                    _add_unique(resolved, ip)
                    _add_unique(st.ips, ip)
                dns["resolved_ip"] = resolved
            for host in parsed.hosts:
                _add_unique(st.hosts, host)
        if parsed.complete:
            del data["QueryResults"]
    if eid == 22:
        _sub(doc, "network")["protocol"] = "dns"


def _map_registry(st: _State, doc: Doc) -> None:
    data = st.data
    target = data.pop("TargetObject", None)
    if target is not None:
        event_type = data.get("EventType", "")
        names_value = event_type.endswith("Value") if event_type else "Details" in data
        reg = parse_registry_path(target, names_value)
        registry = _sub(doc, "registry")
        registry["path"] = reg.path
        if reg.hive is not None:
            registry["hive"] = reg.hive
        if reg.key is not None:
            registry["key"] = reg.key
        if reg.value is not None:
            registry["value"] = reg.value
    details = data.pop("Details", None)
    if details is not None:
        parsed = parse_details(details)
        _sub(_sub(doc, "registry"), "data").update(type=parsed.type, strings=list(parsed.strings))


def _map_event_data(st: _State, doc: Doc, eid: int | None) -> None:
    data = st.data
    for name, path in _STRINGS:
        value = data.get(name)
        if value is not None and not _has(doc, path):
            _put(doc, path, value)
            del data[name]
    for name, path, top in _INTS:
        if name in data and not _has(doc, path):
            n = st.take_int(name, top)
            if n is not None:
                _put(doc, path, n)
    spec = EVENTS.get(eid) if eid is not None else None
    _map_process(st, doc, spec)
    _map_file(st, doc)
    for name, path in _BOOL_TARGETS:
        b = st.take_bool(name)
        if b is not None:
            _put(doc, path, b)
    if spec is not None and spec.hash_target is not None:
        _map_hashes(st, doc, spec.hash_target)
    if eid == 3 or "SourceIp" in data or "DestinationIp" in data:
        _map_network(st, doc)
    if eid == 22 or "QueryName" in data:
        _map_dns(st, doc, eid)
    if "TargetObject" in data or "Details" in data:
        _map_registry(st, doc)
    if eid == 25:
        tampering = data.pop("Type", None)
        if tampering is not None:
            doc["message"] = tampering
    elif eid == 255:
        code = data.pop("ID", None)
        if code is not None:
            _sub(doc, "error")["code"] = code
        description = data.pop("Description", None)
        if description is not None:
            _sub(doc, "error")["message"] = description.rstrip("\r\n")


def _int_or_none(value: object) -> int | None:
    if value.__class__ is int:
        return value if value >= 0 else None
    return parse_int(value) if value is not None else None


def _text(value: object) -> str:
    """:func:`to_text`, with the common case (an ASCII ``str``) inline."""
    return value if value.__class__ is str and value.isascii() else to_text(value)


def _map_winlog(raw: RawEvent, st: _State, doc: Doc, event_code: str) -> None:
    winlog: Doc = {}
    if raw.channel:
        winlog["channel"] = _text(raw.channel)
    if raw.computer:
        winlog["computer_name"] = _text(raw.computer)
    winlog["event_id"] = event_code
    record_id_raw = raw.record_id
    if record_id_raw is not None:
        record_id = _int_or_none(record_id_raw)
        if record_id is None or record_id > _MAX_LONG:
            st.errors.append(f"EventRecordID: cannot convert {record_id_raw!r} to an integer")
        else:
            winlog["record_id"] = record_id
    winlog["provider_name"] = _text(raw.provider)
    if raw.provider_guid:
        guid = _text(raw.provider_guid)
        winlog["provider_guid"] = normalise_guid(guid) or guid
    pid = _int_or_none(raw.process_id)
    if pid is not None:
        winlog["process"] = {"pid": pid}
    tid = _int_or_none(raw.thread_id)
    if tid is not None:
        _sub(winlog, "process")["thread"] = {"id": tid}
    version = _int_or_none(raw.version)
    if version is not None:
        winlog["version"] = version
    opcode = _int_or_none(raw.opcode)
    if opcode is not None:
        winlog["opcode"] = _OPCODES.get(opcode, str(opcode))
    task = _int_or_none(raw.task)
    if task is not None:
        winlog["task"] = str(task)
    if raw.user_sid:
        winlog["user"] = {"identifier": _text(raw.user_sid)}
    if st.data:
        winlog["event_data"] = st.data
    doc["winlog"] = winlog


def _original(raw: RawEvent) -> str:
    if raw.original:
        return to_text(raw.original)
    try:
        return orjson.dumps(raw.event_data, default=to_text, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, ValueError):
        return repr(raw.event_data)


def _raw_data(raw: RawEvent) -> Mapping[str, object]:
    data = raw.event_data
    return data if isinstance(data, Mapping) else {}


def _map(raw: RawEvent, data: dict[str, str]) -> Doc:
    """Map ``raw`` whose normalised EventData is ``data`` (consumed: the caller's copy)."""
    eid = raw.event_id if isinstance(raw.event_id, int) and not isinstance(raw.event_id, bool) else None
    event_code = str(eid) if eid is not None else to_text(raw.event_id)
    st = _State(data)
    doc: Doc = {}

    event: Doc = {
        "kind": "event",
        "code": event_code,
        "module": MODULE,
        "dataset": DATASET,
        "provider": _text(raw.provider),
    }
    spec = EVENTS.get(eid) if eid is not None else None
    if spec is not None:
        if spec.category:
            event["category"] = list(spec.category)
        event["type"] = list(spec.type)
        event["action"] = spec.action

    created: str | None = None
    if raw.time_created is not None:
        created = parse_iso_time(_text(raw.time_created))
        if created is None:
            st.errors.append(f"TimeCreated: cannot convert {raw.time_created!r} to a time")
        else:
            event["created"] = created
    utc = st.data.get("UtcTime")
    if utc is not None:
        timestamp = parse_utc_time(utc)
        if timestamp is None:
            st.fail("UtcTime", utc, "a time")
        else:
            doc["@timestamp"] = timestamp
            del st.data["UtcTime"]
    if "@timestamp" not in doc and created is not None:
        doc["@timestamp"] = iso_to_millis(created)
    doc["event"] = event

    if raw.computer:
        computer = _text(raw.computer)
        doc["host"] = {"name": computer, "hostname": computer.lower()}
    level = _int_or_none(raw.level)
    if level is not None and level in _LOG_LEVELS:
        doc["log"] = {"level": _LOG_LEVELS[level]}
    rule = st.data.pop("RuleName", None)
    if rule is not None:
        doc["rule"] = {"name": rule}
    if raw.user_sid:
        doc["user"] = {"id": _text(raw.user_sid)}

    _map_event_data(st, doc, eid)

    related: Doc = {}
    if st.users:
        related["user"] = st.users
    if st.hashes:
        related["hash"] = st.hashes
    if st.ips:
        related["ip"] = st.ips
    if st.hosts:
        related["hosts"] = st.hosts
    if related:
        doc["related"] = related

    _map_winlog(raw, st, doc, event_code)
    doc["ecs"] = {"version": ECS_VERSION}

    if st.errors:
        _mark_error(doc, raw, "; ".join(st.errors))
    return doc


def _mark_error(doc: Doc, raw: RawEvent, message: str) -> None:
    event = _sub(doc, "event")
    event["kind"] = "pipeline_error"
    event["original"] = _original(raw)
    error = _sub(doc, "error")
    previous = error.get("message")  # a Sysmon error report's own message (event 255)
    error["message"] = [previous, message] if isinstance(previous, str) else message
    error["type"] = "mapping"


def _fallback(raw: RawEvent, exc: Exception) -> Doc:
    """The document for an event the mapper itself failed on: everything raw, tagged."""
    message = f"mapping failed: {type(exc).__name__}: {exc}"
    try:
        data = raw.event_data if isinstance(raw.event_data, Mapping) else {}
        event_data = {to_text(k): to_text(v) for k, v in data.items()}
        doc: Doc = {
            "event": {
                "kind": "pipeline_error",
                "code": to_text(raw.event_id),
                "module": MODULE,
                "dataset": DATASET,
                "provider": to_text(raw.provider),
                "original": _original(raw),
            },
            "error": {"type": "mapping", "message": message},
            "winlog": {"event_data": event_data} if event_data else {},
            "ecs": {"version": ECS_VERSION},
        }
        if not doc["winlog"]:
            del doc["winlog"]
        return doc
    except Exception:
        return {
            "event": {"kind": "pipeline_error", "module": MODULE, "dataset": DATASET},
            "error": {"type": "mapping", "message": message},
            "ecs": {"version": ECS_VERSION},
        }


def to_ecs(raw: RawEvent) -> dict[str, Any]:
    """The nested ECS document of one event. Never raises: a value that cannot be converted is
    kept raw under ``winlog.event_data`` and the document is tagged ``pipeline_error``."""
    try:
        return _map(raw, normalise_event_data(_raw_data(raw)))
    except Exception as exc:  # the mapper's own bug must not stop a stream of millions
        return _fallback(raw, exc)


def to_ecs_and_id(raw: RawEvent) -> tuple[dict[str, Any], str]:
    """``(to_ecs(raw), document_id(raw))`` with the EventData normalised once, not twice."""
    try:
        data = normalise_event_data(_raw_data(raw))
    except Exception:
        return to_ecs(raw), document_id(raw)
    doc_id = _document_id(raw, data)  # before the mapper consumes ``data``
    try:
        return _map(raw, data), doc_id
    except Exception as exc:  # the mapper's own bug must not stop a stream of millions
        return _fallback(raw, exc), doc_id


def error_document(
    kind: str,
    message: str,
    source: str,
    position: str,
    original: str | None,
    when: str | None = None,
) -> dict[str, Any]:
    """The document for a record a reader could not read at all (a ``ReadError``).

    ``when`` is an ISO-8601 time (e.g. the read time) for ``@timestamp``; without it the
    document has none and the sink decides.
    """
    where = f"{source} ({position})" if position else source
    event: Doc = {"kind": "pipeline_error", "module": MODULE, "dataset": DATASET}
    if original is not None:
        event["original"] = original
    doc: Doc = {}
    if when is not None:
        parsed = parse_iso_time(when)
        if parsed is not None:
            doc["@timestamp"] = iso_to_millis(parsed)
    doc["event"] = event
    doc["error"] = {"type": kind, "message": f"{where}: {message}" if where else message}
    if source:
        doc["log"] = {"file": {"path": source}}
    doc["ecs"] = {"version": ECS_VERSION}
    return doc


def document_id(raw: RawEvent) -> str:
    """A stable ``_id``: base64url (no padding) of a 160-bit BLAKE2b over (computer lower-cased,
    channel, provider, record id, event id, UtcTime), all normalised first. When the record id
    or the computer is missing (rendered text), a digest of the normalised EventData is added so
    that different events never collide."""
    try:
        data = normalise_event_data(_raw_data(raw))
    except Exception:
        return _digest(repr(raw).encode("utf-8", "backslashreplace"))
    return _document_id(raw, data)


def _document_id(raw: RawEvent, data: Mapping[str, str]) -> str:
    """:func:`document_id` from the already normalised EventData ``data`` (left unchanged)."""
    try:
        utc = data.get("UtcTime", "")
        computer = _text(raw.computer).lower()
        provider = _text(raw.provider)
        channel = _text(raw.channel) or (SYSMON_CHANNEL if provider == SYSMON_PROVIDER else "")
        record_id = parse_int(raw.record_id) if raw.record_id is not None else None
        parts = [
            computer,
            channel,
            provider,
            "" if record_id is None else str(record_id),
            to_text(raw.event_id),
            parse_utc_time(utc) or utc,
        ]
        if record_id is None or not computer:
            parts.append(orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode())
        material = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    except Exception:
        material = repr(raw).encode("utf-8", "backslashreplace")
    return _digest(material)


def _digest(material: bytes) -> str:
    digest = hashlib.blake2b(material, digest_size=20).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

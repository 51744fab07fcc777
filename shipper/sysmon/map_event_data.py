"""EventData → ECS fields: the plain copies here, the rest per group (process, file, hashes,
network, DNS, registry) in their ``map_*`` modules (the native core's ``map/fields.rs``)."""

from __future__ import annotations

from typing import Final

from shipper.sysmon.events import EVENTS
from shipper.sysmon.map_dns import map_dns
from shipper.sysmon.map_file import map_file
from shipper.sysmon.map_hashes import map_hashes
from shipper.sysmon.map_network import map_network
from shipper.sysmon.map_process import map_process
from shipper.sysmon.map_registry import map_registry
from shipper.sysmon.map_tree import MAX_LONG, MAX_PORT, Doc, Path, State, dotted, has, put, sub

# Plain string copies: EventData name → ECS path (first present name wins for a shared path).
STRINGS: Final[tuple[tuple[str, Path], ...]] = tuple(
    (name, dotted(path))
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
INTS: Final[tuple[tuple[str, Path, int], ...]] = tuple(
    (name, dotted(path), top)
    for name, path, top in (
        ("ProcessId", "process.pid", MAX_LONG),
        ("SourceProcessId", "process.pid", MAX_LONG),
        ("SourceThreadId", "process.thread.id", MAX_LONG),
        ("ParentProcessId", "process.parent.pid", MAX_LONG),
        ("SourcePort", "source.port", MAX_PORT),
        ("DestinationPort", "destination.port", MAX_PORT),
    )
)
BOOL_TARGETS: Final[tuple[tuple[str, Path], ...]] = (
    ("Signed", dotted("file.code_signature.signed")),
    ("Archived", dotted("sysmon.file.archived")),
    ("IsExecutable", dotted("sysmon.file.is_executable")),
)


def map_event_data(st: State, doc: Doc, eid: int | None) -> None:
    data = st.data
    for name, path in STRINGS:
        value = data.get(name)
        if value is not None and not has(doc, path):
            put(doc, path, value)
            del data[name]
    for name, path, top in INTS:
        if name in data and not has(doc, path):
            n = st.take_int(name, top)
            if n is not None:
                put(doc, path, n)
    spec = EVENTS.get(eid) if eid is not None else None
    map_process(st, doc, spec)
    map_file(st, doc)
    for name, path in BOOL_TARGETS:
        b = st.take_bool(name)
        if b is not None:
            put(doc, path, b)
    if spec is not None and spec.hash_target is not None:
        map_hashes(st, doc, spec.hash_target)
    if eid == 3 or "SourceIp" in data or "DestinationIp" in data:
        map_network(st, doc)
    if eid == 22 or "QueryName" in data:
        map_dns(st, doc, eid)
    if "TargetObject" in data or "Details" in data:
        map_registry(st, doc)
    if eid == 25:
        tampering = data.pop("Type", None)
        if tampering is not None:
            doc["message"] = tampering
    elif eid == 255:
        code = data.pop("ID", None)
        if code is not None:
            sub(doc, "error")["code"] = code
        description = data.pop("Description", None)
        if description is not None:
            sub(doc, "error")["message"] = description.rstrip("\r\n")

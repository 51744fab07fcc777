"""Registry fields: path (hive, key, value) and value data (the native core's
``map/registry.rs``; the values themselves are parsed by :mod:`shipper.sysmon.registry`)."""

from __future__ import annotations

from shipper.sysmon.map_tree import Doc, State, sub
from shipper.sysmon.registry import parse_details, parse_registry_path


def map_registry(st: State, doc: Doc) -> None:
    data = st.data
    target = data.pop("TargetObject", None)
    if target is not None:
        event_type = data.get("EventType", "")
        names_value = event_type.endswith("Value") if event_type else "Details" in data
        reg = parse_registry_path(target, names_value)
        registry = sub(doc, "registry")
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
        sub(sub(doc, "registry"), "data").update(type=parsed.type, strings=list(parsed.strings))

"""The Sigma field table agrees with the mapper: for every event code, each Sysmon field it lists
(other than the special ones, rewritten by detectors.sigma.values) lands where the table says
when the mapper maps an event carrying it."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.sigma import schema
from shipper.raw import SYSMON_PROVIDER, RawEvent
from shipper.sysmon.ecs import to_ecs

_SPECIAL_VALUES = {
    "ProcessId": "4242",
    "SourceProcessId": "4242",
    "ParentProcessId": "4243",
    "SourceThreadId": "4244",
    "SourcePort": "4245",
    "DestinationPort": "4246",
    "SourceIp": "198.51.100.42",
    "DestinationIp": "198.51.100.43",
    "Signed": "true",
    "IsExecutable": "true",
    "Archived": "false",
    "UtcTime": "2024-05-06 07:08:09.123",
    "Protocol": "tcp",
}


def _value(name: str) -> str:
    if name in _SPECIAL_VALUES:
        return _SPECIAL_VALUES[name]
    if name.lower().endswith("guid"):
        return "{11111111-2222-3333-4444-555555555555}"
    if name in ("TargetObject",):
        return "HKLM\\SOFTWARE\\Marker\\Value"
    return f"C:\\Marker\\{name}.exe"


def _get(doc: dict[str, Any], dotted: str) -> Any:
    if dotted.startswith(schema.ED):
        return doc.get("winlog", {}).get("event_data", {}).get(dotted[len(schema.ED) :])
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


PLAIN = [
    (code, name, target)
    for code, table in schema.FIELDS.items()
    for name, target in table.items()
    if name not in schema.SPECIAL and name != "UtcTime"
]


@pytest.mark.parametrize(("code", "name", "target"), PLAIN, ids=[f"{c}-{n}" for c, n, _ in PLAIN])
def test_plain_field_lands_where_the_table_says(code: str, name: str, target: str) -> None:
    value = _value(name)
    doc = to_ecs(RawEvent(provider=SYSMON_PROVIDER, event_id=int(code), event_data={name: value}))
    got = _get(doc, target)
    assert got is not None, f"event {code}: {name} is not at {target}: {doc}"
    if isinstance(got, list):
        got = got[0]
    if isinstance(got, bool):
        assert got == (value == "true")
    else:
        assert str(got).lower() == value.lower(), f"event {code}: {name} → {target} holds {got!r}"


def test_every_category_names_known_event_codes() -> None:
    for category, codes in schema.CATEGORIES.items():
        assert codes and all(c in schema.FIELDS for c in codes), category

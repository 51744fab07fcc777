"""The Sysmon event ID table: ECS categorisation and the rendered title of each event ID.

Static data only; built once at import. ``EVENTS`` follows docs/ecs-mapping.md ("Event IDs");
``TITLES`` is the first line of the rendered message as the Event Viewer shows it (without the
trailing colon), which the rendered-text reader uses to recognise an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

HashTarget = Literal["process", "file"]


@dataclass(frozen=True, slots=True)
class EventSpec:
    """How one Sysmon event ID is categorised in ECS.

    ``hash_target`` is where ``Hashes``/``Hash`` go (``process`` or ``file``), or None when the
    event carries no hashes. ``pe_target`` is where the PE version fields (``OriginalFileName``,
    ``Company``, ``Description``…) go, or None when the event has none (event 255 has a
    ``Description`` that is not a PE field).
    """

    category: tuple[str, ...]
    type: tuple[str, ...]
    action: str
    hash_target: HashTarget | None = None
    pe_target: HashTarget | None = None


EVENTS: dict[int, EventSpec] = {
    1: EventSpec(("process",), ("start",), "Process creation", "process", "process"),
    2: EventSpec(("file",), ("change",), "File creation time changed"),
    3: EventSpec(("network",), ("start", "connection", "protocol"), "Network connection"),
    4: EventSpec(("process",), ("change",), "Sysmon service state changed"),
    5: EventSpec(("process",), ("end",), "Process terminated"),
    6: EventSpec(("driver",), ("start",), "Driver loaded", "file"),
    7: EventSpec(("process", "library"), ("change", "start"), "Image loaded", "file", "file"),
    8: EventSpec(("process",), ("change",), "CreateRemoteThread"),
    9: EventSpec(("process",), ("access",), "RawAccessRead"),
    10: EventSpec(("process",), ("access",), "ProcessAccess"),
    11: EventSpec(("file",), ("creation",), "File created"),
    12: EventSpec(("configuration", "registry"), ("change",), "Registry object added or deleted"),
    13: EventSpec(("configuration", "registry"), ("change",), "Registry value set"),
    14: EventSpec(("configuration", "registry"), ("change",), "Registry object renamed"),
    15: EventSpec(("file",), ("access",), "File stream created", "file"),
    16: EventSpec(("configuration",), ("change",), "Sysmon configuration changed"),
    17: EventSpec(("file",), ("creation",), "Pipe created"),
    18: EventSpec(("file",), ("access",), "Pipe connected"),
    19: EventSpec(("process",), ("creation",), "WmiEventFilter activity detected"),
    20: EventSpec(("process",), ("creation",), "WmiEventConsumer activity detected"),
    21: EventSpec(("process",), ("access",), "WmiEventConsumerToFilter activity detected"),
    22: EventSpec(("network",), ("connection", "protocol", "info"), "DNS query"),
    23: EventSpec(("file",), ("deletion",), "File delete archived", "process"),
    24: EventSpec((), ("change",), "Clipboard changed", "process"),
    25: EventSpec(("process",), ("change",), "Process tampering", "process"),
    26: EventSpec(("file",), ("deletion",), "File delete logged", "file"),
    # 27 and 28 carry the hashes of the blocked file; the contract lists no target for them, and
    # `file` is what the events describe (like 26 and 29).
    27: EventSpec(("file",), ("creation", "denied"), "File block executable", "file"),
    28: EventSpec(("file",), ("deletion", "denied"), "File block shredding", "file"),
    29: EventSpec(("file",), ("creation",), "File executable detected", "file"),
    255: EventSpec(("process",), ("error",), "Sysmon error"),
}

#: First line of the rendered message (Event Viewer, NXLog ``Message``), without the colon.
TITLES: dict[int, str] = {
    1: "Process Create",
    2: "File creation time changed",
    3: "Network connection detected",
    4: "Sysmon service state changed",
    5: "Process terminated",
    6: "Driver loaded",
    7: "Image loaded",
    8: "CreateRemoteThread detected",
    9: "RawAccessRead detected",
    10: "Process accessed",
    11: "File created",
    12: "Registry object added or deleted",
    13: "Registry value set",
    14: "Registry object renamed",
    15: "File stream created",
    16: "Sysmon config state changed",
    17: "Pipe Created",
    18: "Pipe Connected",
    19: "WmiEventFilter activity detected",
    20: "WmiEventConsumer activity detected",
    21: "WmiEventConsumerToFilter activity detected",
    22: "Dns query",
    23: "File Delete archived",
    24: "Clipboard changed",
    25: "Process Tampering",
    26: "File Delete logged",
    27: "File Block Executable",
    28: "File Block Shredding",
    29: "File Executable Detected",
    255: "Error report",
}

#: Titles older Sysmon versions rendered for an event ID that has since been renamed.
LEGACY_TITLES: dict[str, int] = {
    "File Delete": 23,  # Sysmon 11.x, before event 26 split "archived" from "logged"
}

#: Title (case-folded, no colon) → event ID, current and legacy titles, for the text reader.
EVENT_ID_BY_TITLE: dict[str, int] = {
    **{title.casefold(): eid for title, eid in LEGACY_TITLES.items()},
    **{title.casefold(): eid for eid, title in TITLES.items()},
}

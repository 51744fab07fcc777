"""Process, parent and user fields (the native core's ``map/process.rs``)."""

from __future__ import annotations

from typing import Final

from shipper.sysmon.cmdline import split_command_line
from shipper.sysmon.events import EventSpec
from shipper.sysmon.map_tree import Doc, State, add_unique, basename, sub

PE_FIELDS: Final[tuple[tuple[str, str], ...]] = (
    ("OriginalFileName", "original_file_name"),
    ("Company", "company"),
    ("Description", "description"),
    ("FileVersion", "file_version"),
    ("Product", "product"),
)


def map_user(st: State, target: Doc, user_value: str) -> None:
    parts = user_value.split("\\")
    if len(parts) == 2 and parts[0] and parts[1]:
        target["domain"] = parts[0]
        target["name"] = parts[1]
        add_unique(st.users, parts[1])
    else:
        target["name"] = user_value
        add_unique(st.users, user_value)


def map_command_line(target: Doc, command_line: str) -> None:
    target["command_line"] = command_line
    args = split_command_line(command_line)
    if args:
        target["args"] = args
        target["args_count"] = len(args)


def map_process(st: State, doc: Doc, spec: EventSpec | None) -> None:
    data = st.data
    image = data.pop("Image", None) or data.pop("SourceImage", None)
    if image is not None:
        proc = sub(doc, "process")
        proc["executable"] = image
        proc["name"] = basename(image)
    command_line = data.pop("CommandLine", None)
    if command_line is not None:
        map_command_line(sub(doc, "process"), command_line)
    parent_image = data.pop("ParentImage", None)
    if parent_image is not None:
        parent = sub(sub(doc, "process"), "parent")
        parent["executable"] = parent_image
        parent["name"] = basename(parent_image)
    parent_command_line = data.pop("ParentCommandLine", None)
    if parent_command_line is not None:
        map_command_line(sub(sub(doc, "process"), "parent"), parent_command_line)
    user = data.pop("User", None)
    if user is not None:
        map_user(st, sub(doc, "user"), user)
    parent_user = data.pop("ParentUser", None)
    if parent_user is not None:
        map_user(st, sub(sub(sub(doc, "process"), "parent"), "user"), parent_user)
    pe_root = spec.pe_target if spec is not None else None
    if pe_root is not None:
        for name, ecs_name in PE_FIELDS:
            value = data.pop(name, None)
            if value is not None:
                sub(sub(doc, pe_root), "pe")[ecs_name] = value

"""File paths, pipe names and code signatures (the native core's ``map/file.rs``)."""

from __future__ import annotations

from typing import Final

from shipper.sysmon.map_tree import Doc, State, has, sub

FILE_PATH_FIELDS: Final = ("TargetFilename", "ImageLoaded", "Device")


def map_file_path(file: Doc, path: str) -> None:
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


def map_file(st: State, doc: Doc) -> None:
    data = st.data
    for name in FILE_PATH_FIELDS:
        value = data.pop(name, None)
        if value is not None:
            map_file_path(sub(doc, "file"), value)
            break
    pipe = data.get("PipeName")
    if pipe is not None and not has(doc, ("file", "name")):
        sub(doc, "file")["name"] = pipe
        del data["PipeName"]
    status = data.pop("SignatureStatus", None)
    if status is not None:
        signature = sub(sub(doc, "file"), "code_signature")
        signature["status"] = status
        signature["valid"] = status == "Valid"

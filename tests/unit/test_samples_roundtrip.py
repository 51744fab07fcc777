"""The four sample forms, read by the shipper's readers and mapped to ECS, give the same documents
(except for what a form does not carry)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from click.testing import CliRunner

import shipper.readers.registry as readers
import shipper.sysmon.ecs as ecs
from samples.__main__ import main

# What each form lacks, so its ECS document lacks it too.
SYSTEM_FIELDS = {
    "event.created",
    "host.name",
    "host.hostname",
    "log.level",
    "user.id",
    "winlog.computer_name",
    "winlog.opcode",
    "winlog.process.pid",
    "winlog.process.thread.id",
    "winlog.provider_guid",
    "winlog.record_id",
    "winlog.task",
    "winlog.user.identifier",
    "winlog.version",
}
MISSING: dict[str, set[str]] = {
    "sysmon.xml": set(),
    # winlogbeat renders task and opcode as text; the reader turns them back into numbers.
    "winlogbeat.ndjson": set(),
    # NXLog's EventTime is the collector's local time to the second: no exact TimeCreated.
    "nxlog.ndjson": {"event.created"},
    # The rendered message has no System fields at all.
    "sysmon.txt": SYSTEM_FIELDS,
}


def _flat(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _read(path: Path, form: str) -> list[dict[str, Any]]:
    reader: Callable[[Any], Iterator[Any]] = readers.READERS[form]
    with path.open("rb") as handle:
        stream: IO[bytes] = handle
        opened = readers.Opened(stream=stream, path=path, source=str(path))
        docs = []
        for raw in reader(opened):
            assert not hasattr(raw, "kind"), raw  # a ReadError
            doc = _flat(ecs.to_ecs(raw))
            doc["_id"] = ecs.document_id(raw)
            docs.append(doc)
        return docs


def test_every_form_maps_to_the_same_ecs_documents(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["generate", "--out", str(tmp_path), "--events", "1500", "--seed", "5"])
    assert result.exit_code == 0, result.output
    forms = {"sysmon.xml": "xml", "winlogbeat.ndjson": "json", "nxlog.ndjson": "json", "sysmon.txt": "text"}
    docs = {name: _read(tmp_path / name, form) for name, form in forms.items()}
    reference = docs["sysmon.xml"]
    assert len(reference) == 1500
    assert not any(d.get("event.kind") == "pipeline_error" for d in reference)
    for name, got in docs.items():
        assert len(got) == len(reference), name
        # The _id must agree wherever the form carries computer and record id.
        skip = MISSING[name] | {"event.original"} | ({"_id"} if name == "sysmon.txt" else set())
        for want, have in zip(reference, got, strict=True):
            w = {k: v for k, v in want.items() if k not in skip}
            h = {k: v for k, v in have.items() if k not in skip}
            assert h == w, name

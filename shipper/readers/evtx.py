"""EVTX reader: pyevtx-rs (``evtx``, Rust) first, python-evtx (``Evtx``) as the fallback.

Fast path: ``PyEvtxParser(path).records_json()``; each record's JSON is decoded with orjson
and mapped straight to a RawEvent.

How pyevtx-rs reports damage (evtx 0.14, established with corrupted copies of real files):

- a record it cannot decode raises ``RuntimeError("Failed to parse record number N: …")``
  from ``next()``; the iterator stays usable and goes on with the next record. N is the
  record-header number. → ReadError ``evtx_record`` naming ``record N``.
- a chunk whose header it rejects raises ``RuntimeError("Failed to parse chunk number N: …")``
  (N counts chunks from 0) and skips the whole chunk. → that chunk is re-read with
  python-evtx (which does not insist on the header magic), record by record.
- a file cut short inside a chunk: the partial chunk is dropped *silently*. → after the fast
  pass the reader checks the file size; a trailing partial chunk is re-read with python-evtx
  (every complete record in it is recovered) and a ReadError reports the truncation.
- a file header it rejects fails ``PyEvtxParser()`` itself. → the whole file is read with the
  python backend, which walks the 64 KiB chunks without needing the file header.

The python backend (``shipper.readers.evtx_chunks``) walks the chunks itself.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import orjson

from shipper.raw import RawEvent, ReadError
from shipper.readers._common import guid_braced, keywords_hex, text_value, to_int, utc_iso
from shipper.readers.evtx_chunks import (
    CHUNK_MAGIC,
    CHUNK_SIZE,
    FILE_HEADER_SIZE,
    FILE_MAGIC,
    RECORD_MAGIC,
    RECORDS_START,
    chunk_events,
    read_python,
)

__all__ = [
    "CHUNK_MAGIC",
    "CHUNK_SIZE",
    "FILE_HEADER_SIZE",
    "FILE_MAGIC",
    "RECORDS_START",
    "RECORD_MAGIC",
    "EvtxBackend",
    "event_from_json",
    "parser_error",
    "read_evtx",
    "recover_tail",
    "rejected_file",
]

EvtxBackend = Literal["auto", "rust", "python"]
RECENT_RECORDS = 8192  # record ids remembered to avoid yielding a record twice after a fallback

_RUST_RECORD_ERR = re.compile(r"record number (\d+)")
_RUST_CHUNK_ERR = re.compile(r"chunk number (\d+)")


def read_evtx(
    path: str | Path,
    *,
    source: str | None = None,
    backend: EvtxBackend = "auto",
    threads: int | None = None,
) -> Iterator[RawEvent | ReadError]:
    """Yield every record of the EVTX file at ``path`` (all providers) as RawEvent, and a
    ReadError for each record, chunk or tail that cannot be read. ``threads``: how many
    threads the fast parser may use (None: its default, one per core)."""
    name = source if source is not None else str(path)
    if backend == "python":
        yield from read_python(str(path), name)
        return
    yield from _read_rust(str(path), name, fallback=backend == "auto", threads=threads)


# --------------------------------------------------------------------------- fast path


def event_from_json(data: Any, source: str, header_id: int) -> RawEvent:
    """Fast path for the shape Windows writes; anything unusual takes the careful path."""
    try:
        event = data["Event"]
        system = event["System"]
        attrs = system["Provider"]["#attributes"]
        event_id = system["EventID"]
        stamp = system["TimeCreated"]["#attributes"]["SystemTime"]
        execution = system["Execution"]["#attributes"]
        record_id = system["EventRecordID"]
        keywords = system["Keywords"]
        version = system["Version"]
        level = system["Level"]
        task = system["Task"]
        opcode = system["Opcode"]
        guid = attrs["Guid"]
        process_id = execution["ProcessID"]
        thread_id = execution["ThreadID"]
        user_sid = system["Security"]["#attributes"]["UserID"]
        data_in = event["EventData"]
        out: dict[str, str] = {}
        for key, value in data_in.items():
            kind = type(value)
            if kind is str:
                out[key] = value
            elif kind is int:
                out[key] = str(value)
            elif value is not None:
                raise _Unusual
        if (
            type(event_id) is not int
            or type(record_id) is not int
            or type(stamp) is not str
            or stamp[-1:] != "Z"
            or type(keywords) is not str
        ):
            raise _Unusual
        return RawEvent(
            attrs["Name"],
            event_id,
            out,
            record_id,
            system["Computer"],
            system["Channel"],
            stamp,
            "{" + guid.upper() + "}" if guid[:1] != "{" else guid.upper(),
            version if type(version) is int else None,
            level if type(level) is int else None,
            task if type(task) is int else None,
            opcode if type(opcode) is int else None,
            keywords,
            process_id if type(process_id) is int else None,
            thread_id if type(thread_id) is int else None,
            user_sid,
            source,
            f"record {record_id}",
        )
    except (KeyError, TypeError, AttributeError, _Unusual):
        return _event_from_json_careful(data, source, header_id)


class _Unusual(Exception):
    """Raised inside the fast path to hand a record to the careful path."""


def _event_from_json_careful(data: Any, source: str, header_id: int) -> RawEvent:
    event = data["Event"]
    system = event["System"]
    provider = system.get("Provider")
    attrs = provider.get("#attributes", {}) if isinstance(provider, dict) else {}
    event_id = system.get("EventID")
    if isinstance(event_id, dict):
        event_id = event_id.get("#text")
    if not isinstance(event_id, int):
        event_id = to_int(event_id)
        if event_id is None:
            raise ValueError("record has no numeric System/EventID")
    time = system.get("TimeCreated")
    stamp = (
        time["#attributes"].get("SystemTime") if isinstance(time, dict) and "#attributes" in time else None
    )
    if stamp is not None and not (stamp.endswith("Z") and stamp[10:11] == "T"):
        stamp = utc_iso(stamp)
    execution = system.get("Execution")
    exec_attrs = execution.get("#attributes", {}) if isinstance(execution, dict) else {}
    security = system.get("Security")
    sec_attrs = security.get("#attributes", {}) if isinstance(security, dict) else {}
    record_id = system.get("EventRecordID")
    keywords = system.get("Keywords")
    return RawEvent(
        provider=attrs.get("Name") or attrs.get("EventSourceName") or "",
        event_id=event_id,
        event_data=_event_data(event),
        record_id=record_id if isinstance(record_id, int) else to_int(record_id),
        computer=system.get("Computer"),
        channel=system.get("Channel"),
        time_created=stamp,
        provider_guid=guid_braced(attrs.get("Guid")),
        version=_int(system.get("Version")),
        level=_int(system.get("Level")),
        task=_int(system.get("Task")),
        opcode=_int(system.get("Opcode")),
        keywords=keywords if isinstance(keywords, str) else keywords_hex(keywords),
        process_id=_int(exec_attrs.get("ProcessID")),
        thread_id=_int(exec_attrs.get("ThreadID")),
        user_sid=sec_attrs.get("UserID"),
        source=source,
        position=f"record {record_id if record_id is not None else header_id}",
    )


def _int(value: Any) -> int | None:
    return value if type(value) is int else to_int(value)


def _event_data(event: dict[str, Any]) -> dict[str, str]:
    data = event.get("EventData")
    out: dict[str, str] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            if type(value) is str:
                out[key] = value
            elif key == "#attributes" or value is None:
                continue
            elif key == "Data" and isinstance(value, list | dict):
                _unnamed(value, out)
            else:
                text = text_value(value)
                if text is not None:
                    out[key] = text
        return out
    user = event.get("UserData")
    if isinstance(user, dict):
        for holder in user.values():
            if isinstance(holder, dict):
                for key, value in holder.items():
                    text = text_value(value) if key != "#attributes" else None
                    if text is not None:
                        out[key] = text
    return out


def _unnamed(value: Any, out: dict[str, str]) -> None:
    """``<Data>`` elements without a Name: ``param1``, ``param2``… (as winlogbeat names them)."""
    items = value if isinstance(value, list) else [value]
    for index, item in enumerate(items, 1):
        text = text_value(item)
        if text is not None:
            out[f"param{index}"] = text


def _read_rust(
    path: str, source: str, *, fallback: bool, threads: int | None = None
) -> Iterator[RawEvent | ReadError]:
    import evtx  # local: keeps the python backend usable if the wheel is missing

    try:
        parser = (
            evtx.PyEvtxParser(path) if threads is None else evtx.PyEvtxParser(path, number_of_threads=threads)
        )
    except (RuntimeError, OSError, ValueError) as exc:
        yield from rejected_file(exc, path, source, fallback)
        return
    loads = orjson.loads
    recent: deque[int] = deque(maxlen=RECENT_RECORDS)
    records = parser.records_json()
    while True:
        try:
            record: Any = next(records)
        except StopIteration:
            break
        except RuntimeError as exc:
            yield from parser_error(str(exc), path, source, recent, fallback)
            continue
        header_id = record["event_record_id"]
        try:
            event = event_from_json(loads(record["data"]), source, header_id)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            yield ReadError("evtx_record", f"undecodable record: {exc}", source, f"record {header_id}")
            continue
        recent.append(header_id)
        yield event
    if fallback:
        yield from recover_tail(path, source, recent)


def rejected_file(exc: Exception, path: str, source: str, fallback: bool) -> Iterator[RawEvent | ReadError]:
    """The fast parser refused the file header: walk the chunks with python-evtx, or report."""
    if not fallback:
        yield ReadError("evtx_chunk", f"fast EVTX parser rejected the file: {exc}", source, "file header")
        return
    yield from read_python(path, source, header_note=str(exc))


def parser_error(
    message: str, path: str, source: str, recent: deque[int], fallback: bool
) -> Iterator[RawEvent | ReadError]:
    """A record or chunk the fast parser rejected: recover the chunk with python-evtx, or report."""
    chunk = _RUST_CHUNK_ERR.search(message)
    if chunk is not None and fallback:
        yield from _recover_chunk(path, source, int(chunk.group(1)), recent, reason=message)
        return
    found = _RUST_RECORD_ERR.search(message)
    if found is not None:
        yield ReadError("evtx_record", message, source, f"record {found.group(1)}")
    elif chunk is not None:
        yield ReadError("evtx_chunk", message, source, f"chunk {chunk.group(1)}")
    else:
        yield ReadError("evtx_record", message, source, "unknown record")


def recover_tail(path: str, source: str, recent: deque[int]) -> Iterator[RawEvent | ReadError]:
    """Re-read a trailing partial chunk that the fast parser skipped without a word."""
    size = os.path.getsize(path)
    body = size - FILE_HEADER_SIZE
    if body <= 0 or body % CHUNK_SIZE == 0:
        return
    index = body // CHUNK_SIZE
    with open(path, "rb") as handle:
        handle.seek(FILE_HEADER_SIZE + index * CHUNK_SIZE)
        block = handle.read(CHUNK_SIZE)
    if not block.strip(b"\x00"):
        return
    yield ReadError(
        "evtx_chunk",
        f"file is truncated: chunk {index} has {len(block)} of {CHUNK_SIZE} bytes; "
        "complete records in it are recovered, the rest is lost",
        source,
        f"chunk {index}",
    )
    yield from chunk_events(block, index, source, set(recent))


def _recover_chunk(
    path: str, source: str, index: int, recent: deque[int], *, reason: str
) -> Iterator[RawEvent | ReadError]:
    with open(path, "rb") as handle:
        handle.seek(FILE_HEADER_SIZE + index * CHUNK_SIZE)
        block = handle.read(CHUNK_SIZE)
    found = False
    for item in chunk_events(block, index, source, set(recent)):
        found = found or isinstance(item, RawEvent)
        yield item
    if not found:
        yield ReadError("evtx_chunk", f"unreadable chunk: {reason}", source, f"chunk {index}")

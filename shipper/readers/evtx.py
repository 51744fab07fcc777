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

The python backend (``backend="python"``) walks chunks itself: each chunk is read into memory
alone (64 KiB), records are found by their ``**\\0\\0`` magic and size fields, a damaged record
costs only itself, and rendering goes through python-evtx's XML and ``xml.event_from_element``.
Its EventData strings are python-evtx's renderings (braced lower-case GUIDs, zero-padded hex),
which normalisation in ``shipper.sysmon`` evens out.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import orjson

from shipper.raw import MappedBatch, RawEvent, ReadError
from shipper.readers._common import guid_braced, keywords_hex, text_value, to_int, utc_iso
from shipper.readers.xml import event_from_element

# python-evtx warns through logging about damaged template tables; the reader reports damage
# itself as ReadErrors, so keep those warnings off stderr unless the application configures them.
logging.getLogger("Evtx").addHandler(logging.NullHandler())

EvtxBackend = Literal["auto", "rust", "python"]

FILE_MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
RECORD_MAGIC = b"\x2a\x2a\x00\x00"
FILE_HEADER_SIZE = 0x1000
CHUNK_SIZE = 0x10000
RECORDS_START = 0x200
_RECENT = 8192  # record ids remembered to avoid yielding a record twice after a fallback

_RUST_RECORD_ERR = re.compile(r"record number (\d+)")
_RUST_CHUNK_ERR = re.compile(r"chunk number (\d+)")
_RECORD_MAGIC_INT = 0x2A2A
_U32 = struct.Struct("<I")
_REC_HEAD = struct.Struct("<IIQ")


def read_evtx(
    path: str | Path,
    *,
    source: str | None = None,
    backend: EvtxBackend = "auto",
    threads: int | None = None,
    premapped: bool = False,
) -> Iterator[RawEvent | MappedBatch | ReadError]:
    """Yield every record of the EVTX file at ``path`` (all providers) as RawEvent, and a
    ReadError for each record, chunk or tail that cannot be read. ``threads``: how many
    threads the fast parser may use (None: its default, one per core).

    ``premapped``: when the native core is installed (``shipper.native``), yield a MappedBatch
    for each run of Sysmon records it maps (the rest as RawEvent, errors as before)."""
    name = source if source is not None else str(path)
    if backend == "python":
        yield from _read_python(str(path), name)
        return
    if premapped:
        from shipper.native import native

        core = native()
        if core is not None:
            yield from _read_native(core, str(path), name, fallback=backend == "auto", threads=threads)
            return
    yield from _read_rust(str(path), name, fallback=backend == "auto", threads=threads)


# --------------------------------------------------------------------------- fast path


def _event_from_json(data: Any, source: str, header_id: int) -> RawEvent:
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
        yield from _rejected_file(exc, path, source, fallback)
        return
    loads = orjson.loads
    recent: deque[int] = deque(maxlen=_RECENT)
    records = parser.records_json()
    while True:
        try:
            record: Any = next(records)
        except StopIteration:
            break
        except RuntimeError as exc:
            yield from _parser_error(str(exc), path, source, recent, fallback)
            continue
        header_id = record["event_record_id"]
        try:
            event = _event_from_json(loads(record["data"]), source, header_id)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            yield ReadError("evtx_record", f"undecodable record: {exc}", source, f"record {header_id}")
            continue
        recent.append(header_id)
        yield event
    if fallback:
        yield from _recover_tail(path, source, recent)


def _rejected_file(exc: Exception, path: str, source: str, fallback: bool) -> Iterator[RawEvent | ReadError]:
    """The fast parser refused the file header: walk the chunks with python-evtx, or report."""
    if not fallback:
        yield ReadError("evtx_chunk", f"fast EVTX parser rejected the file: {exc}", source, "file header")
        return
    yield from _read_python(path, source, header_note=str(exc))


def _parser_error(
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


#: EVTX files already being parsed by the native core ahead of their readers: (path, threads)
#: → its EvtxDocuments. See :func:`prefetch`. Small files are the common case in an archive, and
#: handing one file to a thread and waiting for it costs more than the file itself: with a few
#: files in flight the reader rarely waits.
PREFETCH_AHEAD = 4
_PREFETCHED: dict[tuple[str, int], Any] = {}


def prefetch(path: str, threads: int | None = None) -> None:
    """Start parsing the EVTX file at ``path`` now, in the native core's own threads, so that
    its reader finds records waiting (the pipeline calls this for the next source while it
    reads the current one). A no-op without the native core or for any other file; only the
    latest ``PREFETCH_AHEAD`` are kept (bounded memory: the core buffers a few batches per file,
    then waits)."""
    from shipper.native import native

    core = native()
    if core is None:
        return
    key = (path, threads or 0)
    if key in _PREFETCHED:
        return
    while len(_PREFETCHED) > PREFETCH_AHEAD:  # the current source's and the next ones; an
        del _PREFETCHED[next(iter(_PREFETCHED))]  # unused one is dropped, and its worker stops
    try:  # the core reads the file header itself and refuses anything that is not EVTX
        _PREFETCHED[key] = core.EvtxDocuments(path, threads or 0)
    except (RuntimeError, OSError, ValueError):
        return  # its reader will meet the same problem and report it


def drop_prefetched() -> None:
    """Forget every prefetched file (their workers stop): when a pipeline ends or is abandoned."""
    _PREFETCHED.clear()


def _read_native(
    core: Any, path: str, source: str, *, fallback: bool, threads: int | None
) -> Iterator[RawEvent | MappedBatch | ReadError]:
    """:func:`_read_rust` with the native core: the same records, errors and recovery, but
    runs of ordinary Sysmon records arrive already mapped (MappedBatch)."""
    try:
        records = _PREFETCHED.pop((path, threads or 0), None) or core.EvtxDocuments(path, threads or 0)
    except (RuntimeError, OSError, ValueError) as exc:
        yield from _rejected_file(exc, path, source, fallback)
        return
    loads = orjson.loads
    recent: deque[int] = deque(maxlen=_RECENT)
    mapped_run, python_record = core.MappedRun, core.PythonRecord
    while (batch := records.next_batch()) is not None:
        for item in batch:
            kind = type(item)
            if kind is mapped_run:
                recent.extend(item.header_ids)
                yield MappedBatch(item.event_ids, item.docs, item.ids, item.record_ids, source)
            elif kind is python_record:
                header_id = item.header_id
                try:
                    event = _event_from_json(loads(item.json), source, header_id)
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                    where = f"record {header_id}"
                    yield ReadError("evtx_record", f"undecodable record: {exc}", source, where)
                    continue
                recent.append(header_id)
                yield event
            else:  # a ParserError
                yield from _parser_error(item.message, path, source, recent, fallback)
    if fallback:
        yield from _recover_tail(path, source, recent)


def _recover_tail(path: str, source: str, recent: deque[int]) -> Iterator[RawEvent | ReadError]:
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
    yield from _chunk_events(block, index, source, set(recent))


def _recover_chunk(
    path: str, source: str, index: int, recent: deque[int], *, reason: str
) -> Iterator[RawEvent | ReadError]:
    with open(path, "rb") as handle:
        handle.seek(FILE_HEADER_SIZE + index * CHUNK_SIZE)
        block = handle.read(CHUNK_SIZE)
    found = False
    for item in _chunk_events(block, index, source, set(recent)):
        found = found or isinstance(item, RawEvent)
        yield item
    if not found:
        yield ReadError("evtx_chunk", f"unreadable chunk: {reason}", source, f"chunk {index}")


# --------------------------------------------------------------------------- python backend


def _read_python(path: str, source: str, header_note: str | None = None) -> Iterator[RawEvent | ReadError]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed in finally, across yields
    except OSError as exc:
        yield ReadError("evtx_chunk", f"cannot open: {exc}", source, "file header")
        return
    try:
        head = handle.read(FILE_HEADER_SIZE)
        if header_note is not None or not head.startswith(FILE_MAGIC):
            note = header_note or "missing ElfFile magic"
            yield ReadError(
                "evtx_chunk", f"bad EVTX file header ({note}); reading chunks anyway", source, "file header"
            )
        index = 0
        any_chunk = False
        while True:
            block = handle.read(CHUNK_SIZE)
            if not block:
                break
            if block.startswith(CHUNK_MAGIC) or (
                block.strip(b"\x00") and block[RECORDS_START : RECORDS_START + 4] == RECORD_MAGIC
            ):
                any_chunk = True
                if len(block) < CHUNK_SIZE:
                    yield ReadError(
                        "evtx_chunk",
                        f"file is truncated: chunk {index} has {len(block)} of {CHUNK_SIZE} bytes",
                        source,
                        f"chunk {index}",
                    )
                yield from _chunk_events(block, index, source, set())
            elif block.strip(b"\x00"):
                yield ReadError(
                    "evtx_chunk", "not an EVTX chunk (bad magic, no records)", source, f"chunk {index}"
                )
            index += 1
        if not any_chunk and not head.startswith(FILE_MAGIC):
            yield ReadError("evtx_chunk", "no EVTX chunks found: not an EVTX file", source, "file header")
    finally:
        handle.close()


def _chunk_events(block: bytes, index: int, source: str, skip: set[int]) -> Iterator[RawEvent | ReadError]:
    """Records of one chunk's bytes (possibly truncated or with a damaged header)."""
    from Evtx.Evtx import ChunkHeader, Record  # local: only the fallback needs python-evtx

    real = len(block)
    if real < CHUNK_SIZE:
        # zero padding: template/string tables pointing past a cut end then read as empty
        # instead of failing the whole chunk; records are still bounded by the real length
        block += bytes(CHUNK_SIZE - real)
    chunk = ChunkHeader(block, 0)
    free = chunk.next_record_offset()
    end = min(free if RECORDS_START < free <= CHUNK_SIZE else CHUNK_SIZE, real)
    offset = RECORDS_START
    while offset + 24 <= end:
        magic, size, number = _REC_HEAD.unpack_from(block, offset)
        if magic != _RECORD_MAGIC_INT:
            nxt = block.find(RECORD_MAGIC, offset + 8, end)
            if not block[offset:end].strip(b"\x00"):
                return
            yield ReadError(
                "evtx_record",
                f"garbage at chunk offset {offset:#x}",
                source,
                f"chunk {index} offset {offset:#x}",
            )
            if nxt < 0:
                return
            offset = nxt
            continue
        where = f"record {number}"
        if size < 28 or size > CHUNK_SIZE:
            yield ReadError("evtx_record", f"record has an impossible size {size}", source, where)
            nxt = block.find(RECORD_MAGIC, offset + 8, end)
            if nxt < 0:
                return
            offset = nxt
            continue
        if offset + size > real:
            yield ReadError("evtx_record", "record cut off by the end of the file", source, where)
            return
        if _U32.unpack_from(block, offset + size - 4)[0] != size:
            yield ReadError("evtx_record", "record size fields disagree (damaged record)", source, where)
            nxt = block.find(RECORD_MAGIC, offset + 8, end)
            if nxt < 0:
                return
            offset = nxt
            continue
        if number not in skip:
            yield _render_python(Record(block, offset, chunk), source, where)
        offset += size


def _render_python(record: Any, source: str, where: str) -> RawEvent | ReadError:
    try:
        root = ET.fromstring(record.xml())
        event = event_from_element(root, source, where, None)
    except Exception as exc:  # python-evtx raises many kinds on damaged binxml
        return ReadError("evtx_record", f"undecodable record: {type(exc).__name__}: {exc}", source, where)
    if event.record_id is not None:
        return replace(event, position=f"record {event.record_id}")
    return event

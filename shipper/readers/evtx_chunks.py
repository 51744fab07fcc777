"""EVTX chunks walked without pyevtx-rs: the python backend (``evtx_backend="python"``), and
the recovery of chunks and tails the fast parser rejects or drops.

Each chunk is read into memory alone (64 KiB), records are found by their ``**\\0\\0`` magic and
size fields, a damaged record costs only itself, and rendering goes through python-evtx's XML
and ``xml.event_from_element``. Its EventData strings are python-evtx's renderings (braced
lower-case GUIDs, zero-padded hex), which normalisation in ``shipper.sysmon`` evens out.
"""

from __future__ import annotations

import logging
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from shipper.raw import RawEvent, ReadError
from shipper.readers.xml import event_from_element

# python-evtx warns through logging about damaged template tables; the reader reports damage
# itself as ReadErrors, so keep those warnings off stderr unless the application configures them.
logging.getLogger("Evtx").addHandler(logging.NullHandler())

FILE_MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
RECORD_MAGIC = b"\x2a\x2a\x00\x00"
FILE_HEADER_SIZE = 0x1000
CHUNK_SIZE = 0x10000
RECORDS_START = 0x200

_RECORD_MAGIC_INT = 0x2A2A
_U32 = struct.Struct("<I")
_REC_HEAD = struct.Struct("<IIQ")


def read_python(path: str, source: str, header_note: str | None = None) -> Iterator[RawEvent | ReadError]:
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
                yield from chunk_events(block, index, source, set())
            elif block.strip(b"\x00"):
                yield ReadError(
                    "evtx_chunk", "not an EVTX chunk (bad magic, no records)", source, f"chunk {index}"
                )
            index += 1
        if not any_chunk and not head.startswith(FILE_MAGIC):
            yield ReadError("evtx_chunk", "no EVTX chunks found: not an EVTX file", source, "file header")
    finally:
        handle.close()


def chunk_events(block: bytes, index: int, source: str, skip: set[int]) -> Iterator[RawEvent | ReadError]:
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

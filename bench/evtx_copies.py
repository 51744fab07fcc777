"""Distinct copies of EVTX files for the ingest benchmark.

A byte-for-byte copy of an EVTX file holds the same events: the shipper's deterministic
``_id`` (computer, channel, provider, EventRecordID, event ID, UtcTime) makes every record of
a second copy a duplicate, which is right for a re-ship but is not "100k new events". A
*distinct* copy is the same file with every record's EventRecordID moved by a fixed offset,
as if the same activity had been logged again later in the same channel: each record is a new
event to every tool, and parsing, mapping and indexing cost what the original costs.

EventRecordID is a 64-bit substitution value in each record's binary XML. It is found as the
only occurrence of its little-endian bytes in the record (located with the ``evtx`` parser's
own reading of the record), replaced, and the chunk's CRC32 checksums (records, header) are
recomputed. A record where the value is not found exactly once is left as it is and counted. Each source
file is read and located once (``record_id_slots``), then written once per copy (``write_copy``).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import evtx
import orjson

FILE_HEADER = 4096
CHUNK = 65536
CHUNK_HEADER = 512
RECORD_MAGIC = b"\x2a\x2a\x00\x00"


def _record_ids(path: Path) -> dict[int, int]:
    """header record number → System/EventRecordID, as the parser reads them."""
    out: dict[int, int] = {}
    for rec in evtx.PyEvtxParser(str(path)).records_json():
        system = orjson.loads(rec["data"])["Event"]["System"]
        rid = system.get("EventRecordID")
        if isinstance(rid, int):
            out[rec["event_record_id"]] = rid
    return out


def record_id_slots(src: Path) -> tuple[bytes, list[tuple[int, int]], int]:
    """``(file bytes, [(byte position of a record's EventRecordID value, the value)], records
    seen)`` — read and located once per file, for any number of copies."""
    data = src.read_bytes()
    ids = _record_ids(src)
    slots: list[tuple[int, int]] = []
    seen = 0
    for start in range(FILE_HEADER, len(data) - CHUNK_HEADER + 1, CHUNK):
        if data[start : start + 8] != b"ElfChnk\x00":
            continue
        free = struct.unpack_from("<I", data, start + 48)[0]
        if not CHUNK_HEADER <= free <= CHUNK:
            continue
        pos = start + CHUNK_HEADER
        while pos + 24 <= start + free and data[pos : pos + 4] == RECORD_MAGIC:
            size, header_id = struct.unpack_from("<IQ", data, pos + 4)
            if size < 28 or pos + size > start + free:
                break
            seen += 1
            rid = ids.get(header_id)
            if rid is not None:
                needle = struct.pack("<Q", rid)
                at = data.find(needle, pos + 24, pos + size - 4)
                if at >= 0 and data.find(needle, at + 1, pos + size - 4) < 0:
                    slots.append((at, rid))
            pos += size
    return data, slots, seen


def write_copy(data: bytes, slots: list[tuple[int, int]], dst: Path, offset: int) -> int:
    """Write ``data`` to ``dst`` with each slot's EventRecordID increased by ``offset`` and the
    CRC32s of every changed chunk recomputed. Returns the records moved."""
    out = bytearray(data)
    chunks: set[int] = set()
    moved = 0
    for at, rid in slots:
        if 0 <= rid + offset < 1 << 63:
            struct.pack_into("<Q", out, at, rid + offset)
            chunks.add(FILE_HEADER + (at - FILE_HEADER) // CHUNK * CHUNK)
            moved += 1
    for start in chunks:
        free = struct.unpack_from("<I", out, start + 48)[0]
        struct.pack_into("<I", out, start + 52, zlib.crc32(out[start + CHUNK_HEADER : start + free]))
        header = bytes(out[start : start + 120]) + bytes(out[start + 128 : start + CHUNK_HEADER])
        struct.pack_into("<I", out, start + 124, zlib.crc32(header))
    dst.write_bytes(out)
    return moved

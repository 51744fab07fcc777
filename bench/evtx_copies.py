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
recomputed. A record where the value is not found exactly once is left as it is and counted.
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


def distinct_copy(src: Path, dst: Path, offset: int) -> tuple[int, int]:
    """Write ``src`` to ``dst`` with every record's EventRecordID increased by ``offset``.
    Returns (records patched, records seen)."""
    data = bytearray(src.read_bytes())
    ids = _record_ids(src)
    patched = seen = 0
    for start in range(FILE_HEADER, len(data) - CHUNK_HEADER + 1, CHUNK):
        chunk = memoryview(data)[start : start + CHUNK]
        if bytes(chunk[:8]) != b"ElfChnk\x00":
            continue
        free = struct.unpack_from("<I", chunk, 48)[0]
        if not CHUNK_HEADER <= free <= CHUNK:
            continue
        pos = CHUNK_HEADER
        changed = False
        while pos + 24 <= free and bytes(chunk[pos : pos + 4]) == RECORD_MAGIC:
            size, header_id = struct.unpack_from("<IQ", chunk, pos + 4)
            if size < 28 or pos + size > free:
                break
            seen += 1
            rid = ids.get(header_id)
            if rid is not None and 0 <= rid + offset < 1 << 63:
                body = bytes(chunk[pos + 24 : pos + size - 4])
                needle = struct.pack("<Q", rid)
                at = body.find(needle)
                if at >= 0 and body.find(needle, at + 1) < 0:
                    struct.pack_into("<Q", chunk, pos + 24 + at, rid + offset)
                    patched += 1
                    changed = True
            pos += size
        if changed:
            struct.pack_into("<I", chunk, 52, zlib.crc32(chunk[CHUNK_HEADER:free]))
            header = bytes(chunk[:120]) + bytes(chunk[128:CHUNK_HEADER])
            struct.pack_into("<I", chunk, 124, zlib.crc32(header))
        chunk.release()
    dst.write_bytes(data)
    return patched, seen

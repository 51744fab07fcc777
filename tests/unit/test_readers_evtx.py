"""EVTX reader: every real file converts with exact counts; corrupted copies keep every intact
record and report the damage with file and record."""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

import pytest

from shipper.raw import RawEvent, ReadError
from shipper.readers import ReadOptions, open_source
from shipper.readers.evtx import CHUNK_SIZE, FILE_HEADER_SIZE, RECORDS_START, read_evtx
from tests.shared_data import evtx_manifest, sysmon_data

# A multi-chunk file (14 chunks, 565 records) used for the corruption tests.
SAMPLE = "AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx"


def _split(items: list[RawEvent | ReadError]) -> tuple[list[RawEvent], list[ReadError]]:
    events = [item for item in items if isinstance(item, RawEvent)]
    errors = [item for item in items if isinstance(item, ReadError)]
    assert len(events) + len(errors) == len(items)
    return events, errors


def _records(data: bytes) -> list[tuple[int, int, int, int]]:
    """(chunk index, absolute offset, size, header record number) of every record, walked from
    the headers. The header number is what a ReadError names (the System EventRecordID of an
    undecodable record is unknowable); in this file the two differ."""
    found = []
    for index, start in enumerate(range(FILE_HEADER_SIZE, len(data), CHUNK_SIZE)):
        chunk = data[start : start + CHUNK_SIZE]
        if not chunk.startswith(b"ElfChnk\x00"):
            continue
        free = struct.unpack_from("<I", chunk, 0x30)[0]
        offset = RECORDS_START
        while offset < free:
            magic, size, number = struct.unpack_from("<IIQ", chunk, offset)
            assert magic == 0x2A2A
            found.append((index, start + offset, size, number))
            offset += size
    return found


Layout = list[tuple[int, int, int, int]]
Sample = tuple[bytes, list[RawEvent], Layout]


@pytest.fixture(scope="module")
def sample() -> Sample:
    path = sysmon_data() / "evtx-attack-samples" / SAMPLE
    data = path.read_bytes()
    events, errors = _split(list(read_evtx(path)))
    assert not errors
    layout = _records(data)
    assert len(layout) == len(events) == 565
    return data, events, layout


def test_all_shared_evtx_files_match_manifest_counts() -> None:
    entries = evtx_manifest()
    assert sum(entry.sysmon_events for entry in entries) == 3160
    total = Counter[int]()
    for entry in entries:
        events, errors = _split(list(open_source(entry.path)))
        assert errors == [], entry.path
        counts = Counter(event.event_id for event in events if event.is_sysmon)
        assert dict(counts) == entry.sysmon_eid_counts, entry.path
        assert len(events) == entry.total_events, entry.path
        others = {event.provider for event in events if not event.is_sysmon}
        assert bool(others) == bool(entry.other_providers), entry.path
        total += counts
    assert sum(total.values()) == 3160


def test_fast_path_maps_system_fields() -> None:
    path = sysmon_data() / "evtx-attack-samples" / "UACME_59_Sysmon.evtx"
    first = next(iter(read_evtx(path)))
    assert isinstance(first, RawEvent)
    assert first.is_sysmon and first.event_id == 10
    assert first.record_id == 2164886 and first.position == "record 2164886"
    assert first.computer == "LAPTOP-JU4M3I0E"
    assert first.channel == "Microsoft-Windows-Sysmon/Operational"
    assert first.time_created == "2020-10-05T20:43:58.351744Z"
    assert first.provider_guid == "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"
    assert (first.version, first.level, first.task, first.opcode) == (3, 4, 10, 0)
    assert first.keywords == "0x8000000000000000"
    assert (first.process_id, first.thread_id, first.user_sid) == (5424, 6708, "S-1-5-18")
    # integers in the JSON come back as the decimal string Windows renders
    assert first.event_data["SourceProcessId"] == "27356"
    assert first.event_data["GrantedAccess"] == "0x1410"
    assert first.event_data["RuleName"] == ""
    assert first.original is None


def test_python_backend_reads_the_same_records() -> None:
    path = sysmon_data() / "evtx-attack-samples" / "UACME_59_Sysmon.evtx"
    fast, fast_errors = _split(list(read_evtx(path)))
    slow, slow_errors = _split(list(read_evtx(path, backend="python")))
    assert not fast_errors and not slow_errors
    assert [e.record_id for e in slow] == [e.record_id for e in fast]
    for a, b in zip(fast, slow, strict=True):
        assert (a.event_id, a.provider, a.computer, a.provider_guid) == (
            b.event_id,
            b.provider,
            b.computer,
            b.provider_guid,
        )
        # python-evtx rounds the 100 ns FILETIME to the microsecond, pyevtx-rs truncates
        assert a.time_created and b.time_created and a.time_created[:19] == b.time_created[:19]
        assert a.event_data.keys() == b.event_data.keys()
        assert a.event_data["UtcTime"] == b.event_data["UtcTime"]


def test_truncated_mid_chunk_keeps_every_complete_record(sample: Sample, tmp_path: Path) -> None:
    data, events, layout = sample
    cut = FILE_HEADER_SIZE + CHUNK_SIZE + 30000  # inside the second chunk
    copy = tmp_path / "truncated.evtx"
    copy.write_bytes(data[:cut])
    expected = {
        ev.record_id for ev, (_c, off, size, _n) in zip(events, layout, strict=True) if off + size <= cut
    }
    got, errors = _split(list(read_evtx(copy)))
    assert {ev.record_id for ev in got} == expected
    assert len(got) == len(expected)  # nothing twice
    assert any(err.kind == "evtx_chunk" and err.position == "chunk 1" for err in errors)
    assert all(err.source == str(copy) for err in errors)
    cut_record = next(number for (_c, off, size, number) in layout if off + size > cut)
    assert any(err.position == f"record {cut_record}" for err in errors)


def test_flipped_bytes_in_a_record_cost_only_that_record(sample: Sample, tmp_path: Path) -> None:
    data, events, layout = sample
    # the last record of chunk 3: no later record of its chunk can depend on its templates
    victim = max(i for i, (chunk, _o, _s, _n) in enumerate(layout) if chunk == 3)
    _chunk, offset, _size, number = layout[victim]
    damaged = bytearray(data)
    for at in range(offset + 24, offset + 40):  # the record's BinXML fragment header
        damaged[at] ^= 0xFF
    copy = tmp_path / "flipped.evtx"
    copy.write_bytes(bytes(damaged))
    for backend in ("auto", "python"):
        got, errors = _split(list(read_evtx(copy, backend=backend)))
        lost = events[victim].record_id
        assert {ev.record_id for ev in got} == {ev.record_id for ev in events} - {lost}, backend
        assert [err.position for err in errors] == [f"record {number}"], backend
        assert errors[0].kind == "evtx_record" and errors[0].source == str(copy)
        if backend == "auto":  # same records, same content, same order
            kept = [(ev.record_id, ev.event_data) for ev in events if ev.record_id != lost]
            assert [(ev.record_id, ev.event_data) for ev in got] == kept


def test_bad_chunk_header_is_recovered_with_python_evtx(sample: Sample, tmp_path: Path) -> None:
    data, events, _layout = sample
    damaged = bytearray(data)
    start = FILE_HEADER_SIZE + 2 * CHUNK_SIZE
    damaged[start : start + 8] = b"XXXXXXXX"  # chunk magic destroyed
    copy = tmp_path / "badchunk.evtx"
    copy.write_bytes(bytes(damaged))
    got, errors = _split(list(read_evtx(copy)))
    assert sorted(ev.record_id for ev in got) == sorted(ev.record_id for ev in events)
    assert errors == []
    by_id = {ev.record_id: ev for ev in events}
    for ev in got:
        assert ev.event_id == by_id[ev.record_id].event_id


def test_unreadable_chunk_is_reported_and_the_rest_read(sample: Sample, tmp_path: Path) -> None:
    data, events, layout = sample
    damaged = bytearray(data)
    start = FILE_HEADER_SIZE + 4 * CHUNK_SIZE
    damaged[start : start + CHUNK_SIZE] = bytes([0x5A]) * CHUNK_SIZE  # chunk 4 is noise
    copy = tmp_path / "noise.evtx"
    copy.write_bytes(bytes(damaged))
    got, errors = _split(list(read_evtx(copy)))
    lost = {ev.record_id for ev, (chunk, _o, _s, _n) in zip(events, layout, strict=True) if chunk == 4}
    assert {ev.record_id for ev in got} == {ev.record_id for ev in events} - lost
    assert [err.position for err in errors if err.kind == "evtx_chunk"] == ["chunk 4"]


def test_bad_file_header_falls_back_to_chunk_walk(sample: Sample, tmp_path: Path) -> None:
    data, events, _layout = sample
    copy = tmp_path / "badheader.evtx"
    copy.write_bytes(b"garbage!" + data[8:])
    got, errors = _split(list(open_source(copy, ReadOptions(fmt="evtx"))))
    assert {ev.record_id for ev in got} == {ev.record_id for ev in events}
    assert [err.position for err in errors] == ["file header"]


def test_not_an_evtx_file(tmp_path: Path) -> None:
    copy = tmp_path / "nothing.evtx"
    copy.write_bytes(b"hello\n" * 100)
    got, errors = _split(list(open_source(copy, ReadOptions(fmt="evtx"))))
    assert got == [] and errors and errors[-1].kind == "evtx_chunk"

"""Resuming line-based readers at a byte offset: every record's ``end_offset``/``end_line`` is a
point where a read can start again and yield exactly the rest of a full read (same records,
same positions), whatever the encoding; other sources refuse an offset."""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

import pytest

from shipper.checkpoint import ResumePoint
from shipper.errors import InputError
from shipper.raw import RawEvent, ReadError
from shipper.readers.registry import open_source

Record = RawEvent | ReadError


def _winlogbeat(n: int, image: str = "C:\\a.exe") -> dict[str, Any]:
    return {
        "@timestamp": f"2021-03-04T05:06:{n % 60:02d}.123Z",
        "winlog": {
            "channel": "Microsoft-Windows-Sysmon/Operational",
            "computer_name": "ws1",
            "event_id": "1",
            "provider_name": "Microsoft-Windows-Sysmon",
            "record_id": str(n),
            "event_data": {"ProcessId": n, "Image": image},
        },
    }


def _nxlog(n: int) -> dict[str, Any]:
    return {"EventID": 3, "SourceName": "Microsoft-Windows-Sysmon", "RecordNumber": n, "Image": "ü.exe"}


def _jsonl() -> bytes:
    lines = [
        json.dumps(_winlogbeat(1)),
        json.dumps(_winlogbeat(2, "C:\\Ünïcode\\日本.exe"), ensure_ascii=False),
        "",
        json.dumps(_nxlog(3)) + "\r",
        '{"broken": ',
        "not json at all",
        json.dumps(_winlogbeat(4)),
        "   ",
        json.dumps(_nxlog(5)),
        "[1, 2]",
        json.dumps(_winlogbeat(6)),
    ]
    return "\n".join(lines).encode()  # the last line has no newline


def _event(n: int, extra: str = "") -> str:
    return (
        '<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">\n'
        "  <System><Provider Name='Microsoft-Windows-Sysmon'/>"
        f"<EventID>1</EventID><EventRecordID>{n}</EventRecordID></System>\n"
        f"  <EventData><Data Name='Image'>C:\\{extra}{n}.exe</Data></EventData>\n"
        "</Event>"
    )


def _xml() -> str:
    return "\r\n".join(
        [
            "<Events>",
            _event(1),
            _event(2, "Ärger-日本"),
            "<Event><System><Provider Name='x'/><EventID>1</Event>",  # malformed
            _event(3),
            "<Event><System>",  # unterminated: the next event starts
            _event(4),
            "</Events>",
            "",
        ]
    )


def _text() -> bytes:
    blocks = [
        "Process Create:\r\nRuleName: -\r\nImage: C:\\a.exe\r\nCommandLine: a.exe\r\n  --flag\r\n",
        "Network connection detected:\r\nImage: C:\\ü.exe\r\nDestinationPort: 443\r\n",
        "No Such Title Here:\r\nImage: C:\\x.exe\r\n",
        "<looks like xml>\r\nImage: y\r\n",
        "Sysmon Event ID 5\r\nImage: C:\\z.exe\r\n",
    ]
    # blocks 2 and 3 are not separated by a blank line: the title ends the previous block
    text = blocks[0] + "\r\n" + blocks[1] + blocks[2] + "\r\n" + blocks[3] + "\r\n\r\n" + blocks[4]
    text += "Process terminated:\r\nImage: C:\\last.exe"
    return text.encode()


def _all(path: Path, offset: int = 0, line: int = 1) -> list[Record]:
    return list(open_source(path, start=ResumePoint(offset, line, 0)))


def _check_every_boundary(path: Path) -> list[Record]:
    full = _all(path)
    points = [(i, r.end_offset, r.end_line) for i, r in enumerate(full) if r.end_offset is not None]
    assert points, "no resumable record"
    size = path.stat().st_size
    previous = 0
    for i, offset, line in points:
        assert offset is not None and line is not None
        assert previous < offset <= size
        previous = offset
        assert _all(path, offset, line) == full[i + 1 :]
    # resuming at the very start is a plain read
    assert _all(path, 0, 1) == full
    return full


def test_jsonl_resume_at_every_line_end(tmp_path: Path) -> None:
    data = _jsonl()
    path = tmp_path / "events.jsonl"
    path.write_bytes(data)
    full = _check_every_boundary(path)
    assert [r.position for r in full] == [
        *(f"line {n}" for n in (1, 2, 4, 5, 7, 9)),
        "element 0",
        "element 1",
        "line 11",
    ]
    good = [r for r in full if r.end_offset is not None]
    assert len(good) == 6  # the malformed line and the array elements carry none
    for rec in good:
        assert rec.original is not None and rec.end_offset is not None
        line = rec.original.encode()
        head = data[: rec.end_offset]
        assert head.endswith((line + b"\n", line + b"\r\n")) or rec.end_offset == len(data)
        at_end = rec.end_offset == len(data)  # the last line has no newline
        assert rec.end_line == int(rec.position.split()[1]) + (0 if at_end else 1)
    assert full[-1].end_offset == len(data)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-be"])
def test_xml_resume_at_every_event_end(tmp_path: Path, encoding: str) -> None:
    text = _xml()
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    path = tmp_path / "events.xml"
    path.write_bytes(data)
    full = _check_every_boundary(path)
    assert [r.position for r in full] == ["line 2", "line 6", "line 10", "line 11", "line 15", "line 16"]
    kinds = ["RawEvent", "RawEvent", "ReadError", "RawEvent", "ReadError", "RawEvent"]
    assert [type(r).__name__ for r in full] == kinds
    plain = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "utf-16": "utf-16-le", "utf-16-be": "utf-16-be"}
    bom = len(data) - len(text.encode(plain[encoding]))
    for rec in full:
        assert rec.end_offset is not None and rec.original is not None
        before = data[bom : rec.end_offset].decode(plain[encoding])
        assert before.endswith(rec.original)
        assert rec.end_line == 1 + before.count("\n")


def test_text_resume_at_every_block_boundary(tmp_path: Path) -> None:
    data = _text()
    path = tmp_path / "events.txt"
    path.write_bytes(data)
    full = _check_every_boundary(path)
    assert [r.position for r in full] == ["line 1", "line 7", "line 10", "line 13", "line 17", "line 19"]
    assert [r.end_offset is not None for r in full] == [True, True, False, False, True, False]
    for rec in full:
        if rec.end_offset is None:
            continue
        assert rec.original is not None and rec.end_line is not None
        last = rec.original.splitlines()[-1].encode()
        assert data[: rec.end_offset].endswith(last + b"\r\n")
        assert data[: rec.end_offset].count(b"\n") == rec.end_line - 1
    # the last block, ended by the end of the file, may still grow: no offset past it
    assert isinstance(full[-1], RawEvent) and full[-1].end_offset is None


def test_undecodable_bytes_make_later_offsets_unknown(tmp_path: Path) -> None:
    lines = [json.dumps(_winlogbeat(n)).encode() for n in range(3)]
    lines[1] = lines[1].replace(b"a.exe", b"\xff.exe")
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    full = _all(path)
    assert [r.end_offset for r in full] == [len(lines[0]) + 1, None, None]
    assert _all(path, len(lines[0]) + 1, 2) == full[1:]


def test_format_is_detected_from_the_head_not_the_resume_point(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_bytes(b'Process Create:\nImage: a\n\n{"EventID": 1}\n<Event/>\n')
    full = _all(path)
    assert isinstance(full[0], RawEvent) and full[0].end_offset == len(b"Process Create:\nImage: a\n")
    rest = _all(path, full[0].end_offset, 3)
    assert rest == full[1:]
    assert all(isinstance(r, ReadError) and r.kind == "text" for r in rest)


def test_offsets_refused_where_they_mean_nothing(tmp_path: Path) -> None:
    evtx = tmp_path / "x.evtx"
    evtx.write_bytes(b"ElfFile\x00" + b"\x00" * 120)
    with pytest.raises(InputError, match="offset"):
        open_source(evtx, start=ResumePoint(10, 1, 0))
    with pytest.raises(InputError, match="offset"):
        open_source("-", start=ResumePoint(10, 1, 0))
    with pytest.raises(InputError):
        open_source(evtx, start=ResumePoint(-1, 1, 0))
    # a plain start is still fine for every form
    assert isinstance(open_source(tmp_path / "x.evtx", start=ResumePoint(0, 1, 0)), object)


def test_evtx_and_json_arrays_carry_no_offsets(tmp_path: Path) -> None:
    path = tmp_path / "array.json"
    path.write_text(json.dumps([_winlogbeat(1), _winlogbeat(2)]))
    assert [r.end_offset for r in _all(path)] == [None, None]
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(_winlogbeat(1), indent=2))
    assert [r.end_offset for r in _all(pretty)] == [None]


def test_standard_input_records_carry_no_offsets(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    class _Stdin:
        buffer = io.BufferedReader(io.BytesIO(_jsonl()))  # type: ignore[arg-type]

    monkeypatch.setattr(sys, "stdin", _Stdin)
    records = list(open_source("-"))
    assert len(records) == 9
    assert all(r.end_offset is None and r.end_line is None for r in records)

"""Registry and entry point, one event in every text form, and "no input crashes a reader"."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipper.errors import InputError
from shipper.raw import RawEvent, ReadError
from shipper.readers import READERS, ReadOptions, detect_format, open_source
from shipper.readers.evtx import read_evtx
from shipper.readers.jsonl import read_json
from shipper.readers.text import read_text
from shipper.readers.xml import read_xml
from shipper.sysmon.normalise import normalise_event_data
from tests.shared_data import sysmon_data

REPO = Path(__file__).resolve().parents[2]
NS = "http://schemas.microsoft.com/win/2004/08/events/event"

# One network connection, as each form writes it.
FIELDS = {
    "RuleName": "-",
    "UtcTime": "2021-03-04 05:06:07.120",
    "ProcessGuid": "{5770385F-0000-0000-0000-000000000001}",
    "ProcessId": "4242",
    "Image": "C:\\Program Files\\App\\app.exe",
    "User": "CORP\\alice",
    "Protocol": "tcp",
    "Initiated": "true",
    "SourceIsIpv6": "false",
    "SourceIp": "10.0.0.5",
    "SourceHostname": "ws1.corp.example",
    "SourcePort": "50123",
    "SourcePortName": "-",
    "DestinationIsIpv6": "false",
    "DestinationIp": "93.184.216.34",
    "DestinationHostname": "-",
    "DestinationPort": "443",
    "DestinationPortName": "https",
}
XML = (
    f"<Event xmlns='{NS}'><System><Provider Name='Microsoft-Windows-Sysmon' "
    "Guid='{5770385f-c22a-43e0-bf4c-06f5698ffbd9}'/><EventID>3</EventID><EventRecordID>9</EventRecordID>"
    "<Channel>Microsoft-Windows-Sysmon/Operational</Channel><Computer>ws1</Computer></System><EventData>"
    + "".join(f"<Data Name='{k}'>{v.lower() if k == 'ProcessGuid' else v}</Data>" for k, v in FIELDS.items())
    + "</EventData></Event>"
)
WINLOGBEAT = {
    "winlog": {
        "event_id": 3,
        "provider_name": "Microsoft-Windows-Sysmon",
        "record_id": 9,
        "computer_name": "ws1",
        "channel": "Microsoft-Windows-Sysmon/Operational",
        # winlogbeat keeps the strings, but typed values must come back the same
        "event_data": {
            **FIELDS,
            "ProcessId": 4242,
            "Initiated": True,
            "SourceIsIpv6": False,
            "DestinationIsIpv6": False,
        },
    }
}
NXLOG = {
    "EventID": 3,
    "SourceName": "Microsoft-Windows-Sysmon",
    "RecordNumber": 9,
    "Hostname": "ws1",
    "Channel": "Microsoft-Windows-Sysmon/Operational",
    "EventTime": "2021-03-04 00:06:07",
    "EventType": "INFO",
    "Severity": "INFO",
    "SeverityValue": 2,
    "Category": "Network connection detected (rule: NetworkConnect)",
    "Message": "Network connection detected:\r\n...",
    "@version": "1",
    "tags": ["x"],
    **FIELDS,
}
TEXT = "Network connection detected:\r\n" + "\r\n".join(f"{k}: {v}" for k, v in FIELDS.items()) + "\r\n"


def _one(items: list[RawEvent | ReadError]) -> RawEvent:
    assert len(items) == 1 and isinstance(items[0], RawEvent), items
    return items[0]


def test_same_event_in_every_text_form_has_equal_event_data() -> None:
    forms = {
        "xml": _one(list(read_xml(io.BytesIO(XML.encode()), "x"))),
        "winlogbeat": _one(list(read_json(io.BytesIO(json.dumps(WINLOGBEAT).encode()), "w"))),
        "nxlog": _one(list(read_json(io.BytesIO(json.dumps(NXLOG).encode()), "n"))),
        "text": _one(list(read_text(io.BytesIO(TEXT.encode()), "t"))),
    }
    expected = normalise_event_data(FIELDS)
    for name, event in forms.items():
        assert event.is_sysmon and event.event_id == 3, name
        assert list(event.event_data) == list(FIELDS), name
        assert normalise_event_data(event.event_data) == expected, name
    # the raw strings themselves agree too, except for the GUID's case written by XML
    assert forms["winlogbeat"].event_data == forms["nxlog"].event_data == forms["text"].event_data == FIELDS


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"ElfFile\x00rest", "evtx"),
        (b"<?xml version='1.0'?><Events>", "xml"),
        (b"\xef\xbb\xbf  <Event xmlns=''>", "xml"),
        ("<Events>".encode("utf-16"), "xml"),
        (b'\n {"winlog": {}}', "json"),
        (b"[{", "json"),
        (b"Process Create:\r\n", "text"),
        (b"", "text"),
    ],
)
def test_detect_format(head: bytes, fmt: str) -> None:
    assert detect_format(head) == fmt


def test_open_source_detects_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    path.write_text(XML + "\n" + XML)
    assert detect_format(path) == "xml"
    assert [ev.event_id for ev in open_source(path) if isinstance(ev, RawEvent)] == [3, 3]
    # forced to text, the XML is not a known block: errors, not a crash
    assert all(isinstance(ev, ReadError) for ev in open_source(str(path), ReadOptions(fmt="text")))


def test_open_source_refuses_what_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open"):
        open_source(tmp_path / "missing.evtx")
    with pytest.raises(InputError, match="unknown input format"):
        open_source(tmp_path, ReadOptions(fmt="csv"))
    assert set(READERS) >= {"evtx", "xml", "json", "text"}


def test_standard_input_for_text_forms() -> None:
    code = (
        "from shipper.readers import open_source\nfor ev in open_source('-'): print(ev.source, ev.event_id)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(NXLOG).encode(),
        capture_output=True,
        cwd=REPO,
        check=True,
    )
    assert done.stdout.decode().split() == ["<stdin>", "3"]


def test_evtx_from_standard_input_is_refused() -> None:
    code = "from shipper.readers import open_source\nopen_source('-')"
    done = subprocess.run(
        [sys.executable, "-c", code], input=b"ElfFile\x00" + bytes(64), capture_output=True, cwd=REPO
    )
    assert done.returncode != 0 and b"standard input" in done.stderr


def _drain(items: object) -> None:
    for item in items:  # type: ignore[attr-defined]
        assert isinstance(item, RawEvent | ReadError), item


STREAM_READERS = {
    "xml": lambda data: read_xml(io.BytesIO(data), "fuzz"),
    "json": lambda data: read_json(io.BytesIO(data), "fuzz"),
    "text": lambda data: read_text(io.BytesIO(data), "fuzz"),
}
pieces = st.sampled_from(
    [
        XML,
        XML[:120],
        "<Event>",
        "</Event>",
        "<Events>",
        "<!DOCTYPE",
        json.dumps(NXLOG),
        json.dumps(WINLOGBEAT),
        "{",
        "}",
        "[",
        "]",
        ",",
        '"x":',
        "\n",
        "\r\n",
        TEXT,
        "Process Create:",
        "Name: value",
        ": ",
        "Sysmon Event ID 9",
        "Sysmon Event ID x",
        "\x00",
        "\ufeff",
    ]
)
documents = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=500).map(str.encode),
    st.lists(st.one_of(pieces, st.text(max_size=20)), max_size=30).map(lambda parts: "".join(parts).encode()),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(STREAM_READERS)), documents)
def test_no_input_crashes_a_stream_reader(name: str, data: bytes) -> None:
    _drain(STREAM_READERS[name](data))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 0x10FFF), st.integers(0, 255)), max_size=40),
    st.one_of(st.none(), st.integers(0, 0x11000)),
)
def test_no_damage_crashes_the_evtx_reader(
    tmp_path_factory: pytest.TempPathFactory, flips: list[tuple[int, int]], cut: int | None
) -> None:
    original = (sysmon_data() / "evtx-attack-samples" / "UACME_59_Sysmon.evtx").read_bytes()
    damaged = bytearray(original)
    for offset, value in flips:
        damaged[offset % len(damaged)] = value
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.evtx"
    path.write_bytes(bytes(damaged[:cut]))
    for backend in ("auto", "python"):
        _drain(read_evtx(path, backend=backend))  # type: ignore[arg-type]


def test_arbitrary_bytes_as_evtx(tmp_path: Path) -> None:
    for index, blob in enumerate(
        [b"", b"ElfFile\x00", b"ElfFile\x00" + bytes(5000), bytes(range(256)) * 300]
    ):
        path = tmp_path / f"{index}.evtx"
        path.write_bytes(blob)
        for backend in ("auto", "python"):
            _drain(read_evtx(path, backend=backend))  # type: ignore[arg-type]


def test_an_evtx_file_with_a_damaged_header_is_still_read_as_evtx(tmp_path: Path) -> None:
    """Detected by its first chunk's signature: every event of the intact chunks comes back."""
    sample = max(sysmon_data().rglob("*.evtx"), key=lambda p: p.stat().st_size)
    data = bytearray(sample.read_bytes())
    data[:8] = b"XXXXXXXX"  # the ElfFile magic is gone
    damaged = tmp_path / "damaged.evtx"
    damaged.write_bytes(bytes(data))
    assert detect_format(damaged) == "evtx"
    assert detect_format(bytes(data[:8192])) == "evtx"
    assert detect_format(b"XXXXXXXX" + b"\n" * 5000) == "text"

    def events(path: Path) -> list[str]:
        return [str(r.record_id) for r in open_source(path) if isinstance(r, RawEvent)]

    intact = events(sample)
    assert len(intact) > 10
    assert events(damaged) == intact

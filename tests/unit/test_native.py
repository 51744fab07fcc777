"""The native mapping core (``native/``, ``sysmon_native``) gives exactly the Python mapper's
documents and ids: on every real EVTX file, on corrupted copies, and on random records built
in the evtx JSON shape; its helpers agree with the Python ones they replace.

In CI (``CI=true``) a missing native module fails these tests instead of skipping them: the
build installs it (``make test`` → ``pip install ./native``)."""

from __future__ import annotations

import os
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipper import native as native_mod
from shipper.native import MappedBatch, native_session
from shipper.pipeline import Item, Stats, iter_documents
from shipper.raw import RawEvent, ReadError
from shipper.readers.evtx import CHUNK_SIZE, FILE_HEADER_SIZE, event_from_json
from shipper.readers.registry import closed_after, open_input
from shipper.sysmon import cmdline, dns, psl
from shipper.sysmon.ecs import to_ecs_and_id
from shipper.sysmon.events import EVENTS
from tests.shared_data import sysmon_data
from tests.unit.test_readers_evtx import _records

try:
    import sysmon_native
except ImportError:  # pragma: no cover - the build installs it
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("sysmon_native is not installed (pip install ./native)", allow_module_level=True)


@pytest.fixture(autouse=True)
def _native_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SYSMON_NATIVE", raising=False)
    native_mod.native.cache_clear()
    assert native_mod.available()
    yield
    native_mod.native.cache_clear()


def _run(
    paths: list[str], native: bool, monkeypatch: pytest.MonkeyPatch, fmt: str | None = None
) -> tuple[list[Any], Stats]:
    monkeypatch.setenv("SYSMON_NATIVE", "1" if native else "0")
    native_mod.native.cache_clear()
    st = Stats()
    items = [
        (i.doc, i.doc_id, i.index_suffix, i.source, i.seq, i.position, i.end_offset)
        for i in iter_documents(paths, fmt=fmt, stats=st)
    ]
    return items, st


def counts(st: Stats) -> dict[str, Any]:
    """The counts of a run but why the core left records to Python (only a native run has
    those: ``test_native_fallbacks.py``)."""
    return {k: v for k, v in st.as_dict().items() if k != "native_fallbacks"}


def _evtx_files() -> list[str]:
    return sorted(str(p) for p in sysmon_data().rglob("*.evtx"))


def test_shared_evtx_documents_equal_the_python_path(monkeypatch: pytest.MonkeyPatch) -> None:
    files = _evtx_files()
    assert len(files) > 100
    python, st_python = _run(files, False, monkeypatch)
    fast, st_fast = _run(files, True, monkeypatch)
    assert counts(st_fast) == counts(st_python)
    assert len(fast) == len(python) == 3160
    for a, b in zip(python, fast, strict=True):
        assert a == b, a[5]


def _native_records(path: str) -> Iterator[RawEvent | MappedBatch | ReadError]:
    """The records of the EVTX file at ``path`` as the native core reads them."""
    opened = open_input(path)
    with native_session() as session:
        assert session is not None
        events = session.read(opened, Stats())
        assert events is not None
        yield from closed_after(opened, events)


def test_most_shared_records_are_mapped_natively() -> None:
    mapped = other = 0
    for path in _evtx_files():
        for rec in _native_records(path):
            if isinstance(rec, MappedBatch):
                mapped += len(rec)
            elif isinstance(rec, RawEvent):
                other += 1
    assert mapped + other == 3160
    assert mapped >= 0.95 * 3160, (mapped, other)


def test_native_documents_have_the_layout_the_sink_splices() -> None:
    path = _evtx_files()[0]
    for rec in _native_records(path):
        if isinstance(rec, MappedBatch):
            for raw in rec.docs:
                assert raw.startswith(b'{"@timestamp":"')
                assert raw[39:50] == b'","event":{'
            return
    raise AssertionError("no natively mapped record")


def _corrupt(data: bytes, how: str) -> bytes:
    """The damage of tests/unit/test_readers_evtx.py, each kind on its own copy."""
    buf = bytearray(data)
    if how == "truncated":  # cut inside chunk 3
        return bytes(buf[: FILE_HEADER_SIZE + 3 * CHUNK_SIZE + 20_000])
    if how == "chunk-header":  # chunk 2's magic destroyed: re-read with python-evtx
        start = FILE_HEADER_SIZE + 2 * CHUNK_SIZE
        buf[start : start + 8] = b"XXXXXXXX"
    elif how == "record-bytes":  # the BinXML header of chunk 3's last record
        victim = max((r for r in _records(data) if r[0] == 3), key=lambda r: r[1])
        for at in range(victim[1] + 24, victim[1] + 40):
            buf[at] ^= 0xFF
    elif how == "noise-chunk":  # chunk 4 is noise
        start = FILE_HEADER_SIZE + 4 * CHUNK_SIZE
        buf[start : start + CHUNK_SIZE] = bytes([0x5A]) * CHUNK_SIZE
    elif how == "file-header":
        buf[0:8] = b"garbage!"
    return bytes(buf)


@pytest.mark.parametrize(
    ("how", "reported"),
    [
        ("truncated", True),
        ("chunk-header", False),
        ("record-bytes", True),
        ("noise-chunk", True),
        ("file-header", True),
    ],
)
def test_corrupted_copies_equal_the_python_path(
    how: str, reported: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = sysmon_data() / "evtx-attack-samples" / "AutomatedTestingTools"
    data = (source / "PanacheSysmon_vs_AtomicRedTeam01.evtx").read_bytes()
    path = tmp_path / f"{how}.evtx"
    path.write_bytes(_corrupt(data, how))
    python, st_python = _run([str(path)], False, monkeypatch, "evtx")
    fast, st_fast = _run([str(path)], True, monkeypatch, "evtx")
    assert counts(st_fast) == counts(st_python)
    assert fast == python
    assert bool(st_python.errors) == reported  # the damage is reported (or silently repaired)
    assert len(python) > (120 if how == "truncated" else 500)  # the intact records are all there


def test_native_and_python_convert_output_equal_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Item.json()`` of a native document is the document the dict path serialises."""
    files = _evtx_files()[:20]
    monkeypatch.setenv("SYSMON_NATIVE", "1")
    native_mod.native.cache_clear()
    fast = [orjson.loads(i.json()) for i in iter_documents(files)]
    monkeypatch.setenv("SYSMON_NATIVE", "0")
    native_mod.native.cache_clear()
    python = [orjson.loads(i.json()) for i in iter_documents(files)]
    assert fast == python


def test_item_json_and_doc() -> None:
    raw = b'{"@timestamp":"2024-01-02T03:04:05.678Z","event":{"kind":"event"}}'
    item = Item(None, "id", "2024.01", "s", 1, "record 1", doc_json=raw)
    assert item.json() is raw
    assert not item.is_error
    assert item.doc == {"@timestamp": "2024-01-02T03:04:05.678Z", "event": {"kind": "event"}}
    with pytest.raises(ValueError):
        Item(None, "id", "2024.01", "s", 1, "record 1")


# --------------------------------------------------------------------------- random records

GUIDS = st.one_of(
    st.uuids().map(lambda u: "{" + str(u).upper() + "}"),
    st.uuids().map(str),
    st.uuids().map(lambda u: " {" + str(u) + "} "),
    st.just("{00000000-0000-0000-0000-000000000000}"),
    st.text(string.hexdigits + "-{}", max_size=40),
)
WINDOWS_TEXT = st.text(
    alphabet=st.sampled_from(
        [*(string.ascii_letters + string.digits + ' \\"\t:.-_=,;%'), "é", "®", "\u00a0"]
    ),
    max_size=60,
)
IPS = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: str(a).upper()),
    st.sampled_from(["::ffff:10.0.0.1", "fe80::1%12", " 10.1.2.3 ", "010.1.2.3", "1.2.3", "::", "1::", "x"]),
)
HASHES = st.lists(
    st.tuples(
        st.sampled_from(["SHA1", "MD5", "SHA256", "IMPHASH", "sha384", "CRC", " md5 "]),
        st.one_of(st.text(string.hexdigits, min_size=1, max_size=64), st.just("0000")),
    ),
    max_size=5,
).map(lambda pairs: ",".join(f"{a}={d}" for a, d in pairs))
LABELS = st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=8)
DOMAINS = st.one_of(
    st.lists(
        st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=8), min_size=1, max_size=4
    ).map(".".join),
    st.sampled_from(
        ["www.example.co.uk", "a.b.github.io", "localhost", "x.ck", "www.ck", "EXAMPLE.COM.", "1.2.3.4"]
    ),
)
RESULTS = st.lists(
    st.one_of(IPS, st.builds(lambda n, h: f"type:  {n} {h}", st.integers(0, 300), DOMAINS)), max_size=4
).map(lambda parts: ";".join(parts) + ";")
INTS = st.one_of(
    st.integers(0, 70000).map(str),
    st.integers(0, 70000),
    st.sampled_from(["+12", " 7 ", "-1", "0x10", "99999999999999999999", ""]),
)

FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "RuleName": st.one_of(st.just("-"), WINDOWS_TEXT),
    "UtcTime": st.one_of(
        st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S.") + f"{d.microsecond // 1000:03d}"),
        st.sampled_from(["2019-02-30 10:00:00.000", "garbage", "2019-01-01T10:00:00Z"]),
    ),
    "ProcessGuid": GUIDS,
    "SourceProcessGUID": GUIDS,
    "ParentProcessGuid": GUIDS,
    "ProcessId": INTS,
    "ParentProcessId": INTS,
    "SourceThreadId": INTS,
    "Image": WINDOWS_TEXT,
    "SourceImage": WINDOWS_TEXT,
    "CommandLine": WINDOWS_TEXT,
    "ParentCommandLine": WINDOWS_TEXT,
    "CurrentDirectory": WINDOWS_TEXT,
    "User": st.one_of(WINDOWS_TEXT, st.sampled_from(["NT AUTHORITY\\SYSTEM", "a\\b\\c", "\\x", "bob"])),
    "ParentUser": WINDOWS_TEXT,
    "LogonId": st.one_of(st.integers(0, 1 << 40).map(hex), st.sampled_from(["0X00AB", " 0x0 ", "zz"])),
    "GrantedAccess": st.sampled_from(["0x1010", "0X1FFFFF", "0x0000", "1010"]),
    "Hashes": HASHES,
    "Hash": HASHES,
    "Signed": st.sampled_from(["true", "False", " TRUE ", "maybe", "false - shredded file"]),
    "Archived": st.sampled_from(["true", "false", "false - pattern 0x00", True, False]),
    "IsExecutable": st.sampled_from(["true", "false"]),
    "SignatureStatus": st.sampled_from(["Valid", "Expired", "Unavailable"]),
    "Signature": WINDOWS_TEXT,
    "TargetFilename": WINDOWS_TEXT,
    "ImageLoaded": WINDOWS_TEXT,
    "PipeName": WINDOWS_TEXT,
    "Protocol": st.sampled_from(["tcp", "UDP", "icmp", "Sctp"]),
    "Initiated": st.sampled_from(["true", "false", True, "x"]),
    "SourceIsIpv6": st.sampled_from(["true", "false", False]),
    "SourceIp": IPS,
    "DestinationIp": IPS,
    "SourcePort": INTS,
    "DestinationPort": INTS,
    "SourcePortName": st.sampled_from(["", "-", "HTTP", "netbios-ssn"]),
    "DestinationPortName": st.sampled_from(["", "https", "LDAP"]),
    "SourceHostname": DOMAINS,
    "DestinationHostname": DOMAINS,
    "QueryName": st.one_of(DOMAINS, WINDOWS_TEXT),
    "QueryStatus": st.sampled_from(["0", "9003", "87", " 1460 ", "123456", "x"]),
    "QueryResults": RESULTS,
    "EventType": st.sampled_from(["SetValue", "CreateKey", "DeleteValue", "RenameKey", ""]),
    "TargetObject": st.one_of(
        st.sampled_from(
            [
                "HKLM\\SOFTWARE\\Run\\x",
                "HKU\\S-1-5\\Software",
                "\\REGISTRY\\MACHINE\\SYSTEM\\a",
                "\\registry\\user\\S-1\\b",
                "HKCR",
                "HKLM\\",
                "Other\\key",
            ]
        ),
        WINDOWS_TEXT,
    ),
    "Details": st.sampled_from(
        ["DWORD (0x00000001)", "QWORD (0x00000001-0x00000002)", "Binary Data", "DWORD (0x1", "text"]
    ),
    "Type": st.sampled_from(["Image is replaced", "Image is locked for access"]),
    "ID": st.sampled_from(["1", "255"]),
    "Description": st.sampled_from(["Failed\r\n", "MCI API DLL"]),
    "Company": WINDOWS_TEXT,
    "OriginalFileName": WINDOWS_TEXT,
    "Device": WINDOWS_TEXT,
    "Extra Field": st.one_of(WINDOWS_TEXT, st.integers(0, 5), st.none()),
}


@st.composite
def records(draw: st.DrawFn) -> tuple[bytes, int]:
    eid = draw(st.sampled_from([*EVENTS, 999]))
    names = draw(st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=14, unique=True))
    data = {name: draw(FIELDS[name]) for name in names}
    header = draw(st.integers(1, 10**6))
    record = {
        "Event": {
            "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
            "System": {
                "Provider": {
                    "#attributes": {
                        "Name": draw(st.sampled_from(["Microsoft-Windows-Sysmon"] * 5 + ["Other"])),
                        "Guid": draw(st.sampled_from(["5770385F-C22A-43E0-BF4C-06F5698FFBD9", "{abc}", ""])),
                    }
                },
                "EventID": eid,
                "Version": draw(st.sampled_from([5, 0, None, "3"])),
                "Level": draw(st.sampled_from([4, 2, 9, None])),
                "Task": draw(st.sampled_from([1, 22, None])),
                "Opcode": draw(st.sampled_from([0, 1, 240, 77, None])),
                "Keywords": "0x8000000000000000",
                "TimeCreated": {
                    "#attributes": {
                        "SystemTime": draw(
                            st.sampled_from(["2024-03-05T10:11:12.123456Z", "2024-03-05T10:11:12Z"])
                        )
                    }
                },
                "EventRecordID": draw(st.integers(0, 10**9)),
                "Correlation": None,
                "Execution": {"#attributes": {"ProcessID": draw(st.integers(0, 9999)), "ThreadID": 42}},
                "Channel": "Microsoft-Windows-Sysmon/Operational",
                "Computer": draw(st.sampled_from(["WS01.corp.local", "Dc01", "HÔTE"])),
                "Security": {"#attributes": {"UserID": "S-1-5-18"}},
            },
            "EventData": data,
        }
    }
    return orjson.dumps(record), header


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_random_records_map_exactly_like_python(case: tuple[bytes, int]) -> None:
    native_mod.native()  # the public suffix rules are handed over
    raw_json, header = case
    got = sysmon_native.map_record_json(raw_json)
    if got is None:
        return  # left to Python: nothing to compare
    doc_json, doc_id = got
    event = event_from_json(orjson.loads(raw_json), "test", header)
    expected_doc, expected_id = to_ecs_and_id(event)
    assert orjson.loads(doc_json) == expected_doc
    assert doc_id == expected_id
    assert (expected_doc.get("event") or {}).get("kind") == "event"


def test_ordinary_records_are_mapped_natively_and_equal() -> None:
    """Ordinary process creations (quotes, escapes, a domain user, hashes) are all mapped here,
    so the comparison above is not satisfied by leaving everything to Python."""
    native_mod.native()
    for i in range(300):
        raw_json, header = _plain_record(i)
        got = sysmon_native.map_record_json(raw_json)
        assert got is not None, i
        expected_doc, expected_id = to_ecs_and_id(event_from_json(orjson.loads(raw_json), "t", header))
        assert (orjson.loads(got[0]), got[1]) == (expected_doc, expected_id)


GUID = "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"


def _plain_record(i: int) -> tuple[bytes, int]:
    data = {
        "RuleName": "-",
        "UtcTime": "2024-03-05 10:11:12.123",
        "ProcessGuid": "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}",
        "ProcessId": str(1000 + i),
        "Image": f"C:\\Windows\\System32\\tool{i}.exe",
        "CommandLine": f'"C:\\Windows\\System32\\tool{i}.exe" /c "a b" \\"q\\"',
        "User": "CORP\\bob",
        "Hashes": f"SHA256={i:064x},MD5={i:032x}",
    }
    record = {
        "Event": {
            "System": {
                "Provider": {
                    "#attributes": {
                        "Name": "Microsoft-Windows-Sysmon",
                        "Guid": "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}",
                    }
                },
                "EventID": 1,
                "Version": 5,
                "Level": 4,
                "Task": 1,
                "Opcode": 0,
                "Keywords": "0x8000000000000000",
                "TimeCreated": {"#attributes": {"SystemTime": "2024-03-05T10:11:12.123456Z"}},
                "EventRecordID": i,
                "Execution": {"#attributes": {"ProcessID": 4, "ThreadID": 8}},
                "Channel": "Microsoft-Windows-Sysmon/Operational",
                "Computer": "WS01",
                "Security": {"#attributes": {"UserID": "S-1-5-18"}},
            },
            "EventData": data,
        }
    }
    return orjson.dumps(record), i


# --------------------------------------------------------------------------- helpers and tables


@settings(max_examples=800, deadline=None)
@given(st.one_of(IPS, st.text(string.hexdigits + ":.% ", max_size=45)))
def test_parse_ip_matches_python(value: str) -> None:
    assert sysmon_native.parse_ip(value) == dns.parse_ip(value)


@settings(max_examples=800, deadline=None)
@given(st.text(alphabet=st.sampled_from([*' \t"\\ab', "é"]), max_size=30))
def test_split_command_line_matches_python(value: str) -> None:
    assert sysmon_native.split_command_line(value) == cmdline.split_command_line(value)


@settings(max_examples=500, deadline=None)
@given(DOMAINS)
def test_split_domain_matches_python(name: str) -> None:
    native_mod.native()
    host = name.strip().rstrip(".")
    if host.replace(".", "").isdigit() or ":" in host:
        return  # IP-like names are left to Python by the native mapper
    parts = psl.split_domain(name)
    expected = None if parts is None else (parts.registered_domain, parts.top_level_domain, parts.subdomain)
    assert sysmon_native.split_domain(name) == expected


def test_event_table_matches_python() -> None:
    native_table = {eid: rest for eid, *rest in sysmon_native.spec_table()}
    python_table = {
        eid: [list(s.category), list(s.type), s.action, s.hash_target, s.pe_target]
        for eid, s in EVENTS.items()
    }
    assert native_table == python_table


def test_dns_tables_match_python() -> None:
    status, types = sysmon_native.dns_tables()
    assert dict(status) == dns.DNS_STATUS
    assert dict(types) == dns.DNS_TYPES

"""The native core on JSON lines (winlogbeat and NXLog documents) gives exactly what the Python
reader and mapper give: documents, ids, positions, resume points and stats, on the generated
sample day, the shared OTRF (NXLog) exports, random documents, and files that mix in every
shape the reader handles (blank lines, CRLF, BOMs, UTF-16, arrays, pretty-printed and broken
documents, other providers, a last line without a newline).

In CI (``CI=true``) a missing native module fails these tests instead of skipping them."""

from __future__ import annotations

import codecs
import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipper import native as native_mod
from shipper.checkpoint import ResumePoint
from shipper.native import MappedBatch
from shipper.native.jsonl import read_json_native
from shipper.pipeline import ItemRun, Stats, iter_documents, stream
from shipper.raw import RawEvent, ReadError
from shipper.readers import jsonl as jsonl_mod
from shipper.readers.jsonl import NXLOG_EVENT_TYPES, NXLOG_METADATA, event_from_document, read_json
from shipper.stream import ReadOptions, SourceEnded, SourceRead, SourceStarted
from shipper.sysmon.ecs import to_ecs_and_id
from shipper.sysmon.events import EVENTS
from tests.shared_data import sysmon_data
from tests.unit.test_native import FIELDS, GUIDS, _native_on, counts  # noqa: F401 - the autouse fixture

try:
    import sysmon_native
except ImportError:  # pragma: no cover - the build installs it
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("sysmon_native is not installed (pip install ./native)", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]


def _native_json(stream: IO[bytes], source: str, **kw: Any) -> Iterator[RawEvent | MappedBatch | ReadError]:
    """``read_json``'s records as the native core reads them."""
    core = native_mod.native()
    assert core is not None
    return read_json_native(core, stream, source, Stats(), **kw)


def _run(
    paths: list[str],
    native: bool,
    monkeypatch: pytest.MonkeyPatch,
    start: dict[str, ResumePoint] | None = None,
) -> tuple[list[Any], Stats, int]:
    """Every document of ``paths`` with where it came from, the stats, and how many documents
    arrived as native JSON."""
    monkeypatch.setenv("SYSMON_NATIVE", "1" if native else "0")
    native_mod.native.cache_clear()
    st_ = Stats()
    out = []
    fast = 0
    for i in iter_documents(paths, stats=st_, start=start):
        fast += i.doc_json is not None and i._doc is None
        out.append((i.doc, i.doc_id, i.index_suffix, i.source, i.seq, i.position, i.end_offset, i.end_line))
    return out, st_, fast


def _same(paths: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], int]:
    python, st_python, none = _run(paths, False, monkeypatch)
    fast, st_fast, mapped = _run(paths, True, monkeypatch)
    assert none == 0
    assert counts(st_fast) == counts(st_python)
    assert len(fast) == len(python)
    for a, b in zip(python, fast, strict=True):
        assert a == b, a[5]
    return fast, mapped


def test_nxlog_keys_match_python() -> None:
    metadata, types = sysmon_native.nxlog_keys()
    assert set(metadata) == NXLOG_METADATA and len(metadata) == len(NXLOG_METADATA)
    assert set(types) == NXLOG_EVENT_TYPES


@pytest.fixture(scope="module")
def sample_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    subprocess.run(
        [sys.executable, "-m", "samples", "generate", "--out", str(out), "--events", "3000", "--seed", "5"],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    return out


def test_generated_winlogbeat_and_nxlog_equal_the_python_path(
    sample_day: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = sorted(str(p) for p in sample_day.iterdir() if p.suffix in (".ndjson", ".json", ".jsonl"))
    assert any("winlogbeat" in f for f in files), files
    fast, mapped = _same(files, monkeypatch)
    assert len(fast) >= 3000
    assert mapped >= 0.9 * len(fast), (mapped, len(fast))


def test_shared_nxlog_exports_equal_the_python_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = []
    for z in sorted((sysmon_data() / "otrf").glob("*.zip"))[:3]:
        with zipfile.ZipFile(z) as zf:
            for name in zf.namelist():
                if name.endswith(".json") and "__MACOSX" not in name:
                    target = tmp_path / Path(name).name
                    target.write_bytes(zf.read(name))
                    files.append(str(target))
    assert files
    fast, mapped = _same(files, monkeypatch)
    assert mapped >= 0.99 * len(fast), (mapped, len(fast))  # other providers between them too


def test_resuming_from_a_native_record_equals_the_python_path(
    sample_day: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(sample_day / "winlogbeat.ndjson")
    full, _, _ = _run([path], True, monkeypatch)
    mid = full[len(full) // 2]
    start = {path: ResumePoint(mid[6], mid[7], mid[4])}
    fast, _, mapped = _run([path], True, monkeypatch, start)
    python, _, _ = _run([path], False, monkeypatch, start)
    assert mapped > 0
    assert fast == python == full[len(full) // 2 + 1 :]


# --------------------------------------------------------------------------- mixed files

GUID = "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"


def _wlb(i: int, **extra: Any) -> dict[str, Any]:
    doc = {
        "@timestamp": f"2024-05-0{1 + i % 3}T10:00:{i % 60:02d}.123Z",
        "event": {"code": "1", "provider": "Microsoft-Windows-Sysmon"},
        "log": {"level": "information"},
        "winlog": {
            "channel": "Microsoft-Windows-Sysmon/Operational",
            "computer_name": "WS01.corp.local",
            "event_id": "1",
            "record_id": 1000 + i,
            "provider_name": "Microsoft-Windows-Sysmon",
            "provider_guid": GUID.lower(),
            "opcode": "Info",
            "task": "Process Create (rule: ProcessCreate)",
            "process": {"pid": 2000, "thread": {"id": 3000}},
            "user": {"identifier": "S-1-5-18"},
            "event_data": {
                "RuleName": "-",
                "UtcTime": f"2024-05-0{1 + i % 3} 10:00:{i % 60:02d}.120",
                "ProcessGuid": "{a0220f23-37bc-6ae7-1500-000000001000}",
                "ProcessId": str(4000 + i),
                "Image": "C:\\Windows\\System32\\cmd.exe",
                "CommandLine": f'cmd.exe /c "echo {i}"',
                "User": "CORP\\alice",
                "Hashes": "SHA256=" + "AB" * 32,
            },
        },
    }
    doc["winlog"].update(extra)  # type: ignore[attr-defined]
    return doc


def _nxlog(i: int) -> dict[str, Any]:
    return {
        "EventTime": "2024-05-01 12:00:00",
        "Hostname": "dc01.corp.local",
        "Keywords": -9223372036854775808,
        "EventType": "INFO",
        "SeverityValue": 2,
        "EventID": 3,
        "SourceName": "Microsoft-Windows-Sysmon",
        "ProviderGuid": GUID,
        "RecordNumber": 500 + i,
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "ExecutionProcessID": 2000,
        "ThreadID": 3000,
        "UserID": "S-1-5-18",
        "UtcTime": "2024-05-01 10:00:00.000",
        "ProcessGuid": "{a0220f23-37bc-6ae7-1500-000000001000}",
        "ProcessId": "88",
        "Image": "C:\\x.exe",
        "Protocol": "tcp",
        "SourceIp": "10.0.0.5",
        "SourcePort": "50000",
        "DestinationIp": "::ffff:8.8.8.8",
        "DestinationPort": "53",
        "@timestamp": "2024-05-01T10:00:01.000Z",
        "host": {"name": "collector"},
    }


def _line(doc: Any) -> str:
    return orjson.dumps(doc).decode()


def _mixed_text() -> str:
    other = _wlb(50, provider_name="Microsoft-Windows-Security-Auditing", event_id="4624")
    parts = [
        _line(_wlb(0)),
        _line(_wlb(1)),
        "",
        "   ",
        _line(_wlb(2)) + "\r",  # CRLF
        _line(other),
        _line(_nxlog(0)),
        _line(_nxlog(1)),
        "{broken json",
        "this line is skipped after a broken document",
        _line(_wlb(3)),
        orjson.dumps(_wlb(4), option=orjson.OPT_INDENT_2).decode(),  # pretty-printed
        "[" + _line(_wlb(5)) + ",",
        _line(_wlb(6)),
        "]",
        _line(_wlb(7)) + " " + _line(_wlb(8)),  # two documents on one line
        _line(_wlb(9, computer_name="HÔTE-01")),  # non-ASCII where Python folds case
        '{"winlog": {"event_data": {"Image": "a", "Image": null}, "event_id": 1, "record_id": 9,'
        ' "provider_name": "Microsoft-Windows-Sysmon", "computer_name": "x", "channel": "c",'
        ' "time_created": "2024-05-01T10:00:00Z"}}',  # a repeated name: the last value wins
        _line(_wlb(10, event_data={"UtcTime": "2024-05-01 10:00:00.000", "Extra": 1.5})),
        "\ufeff" + _line(_wlb(11)),
        _line(_wlb(14, event_data={**_wlb(14)["winlog"]["event_data"], "Company": "Ünï 😀 Corp"})),
        _line(_wlb(15)),  # after a line with a character beyond the BMP (4 bytes in UTF-16)
        _line(_wlb(12)),
        '"a string, not an object"',
        _line(_wlb(13)),  # and the last line has no newline
    ]
    return "\n".join(parts)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le"])
def test_mixed_file_equals_the_python_path(
    encoding: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / f"mixed-{encoding}.json"
    path.write_bytes(_mixed_text().encode(encoding))
    fast, mapped = _same([str(path)], monkeypatch)
    assert mapped >= 6, mapped  # runs of ordinary lines between the odd ones
    assert any(i[5].startswith("line") for i in fast)
    if encoding == "utf-16-le":  # no BOM: line positions still exact
        assert {i[5] for i in fast} >= {"line 1", "line 2", "line 5"}


def _flatten(events: Iterator[RawEvent | MappedBatch | ReadError]) -> list[Any]:
    out: list[Any] = []
    for rec in events:
        if isinstance(rec, MappedBatch):
            lines = rec.start_lines or []
            others = dict(rec.others)
            docs = iter(zip(rec.docs, rec.doc_ids, strict=True))
            for k in range(len(rec)):
                end = None if rec.end_offsets is None else rec.end_offsets[k]
                if k in others:
                    out.append(("other", f"line {lines[k]}", end, others[k]))
                    continue
                doc, doc_id = next(docs)
                out.append(
                    (
                        f"line {lines[k]}",
                        end,
                        None if rec.end_lines() is None else rec.end_lines()[k],  # type: ignore[index]
                        orjson.loads(doc),
                        doc_id,
                    )
                )
            assert next(docs, None) is None
        elif isinstance(rec, ReadError):
            out.append(("error", rec.position, rec.message, rec.end_offset))
        elif rec.is_sysmon:
            doc, doc_id = to_ecs_and_id(rec)
            out.append((rec.position, rec.end_offset, rec.end_line, doc, doc_id))
        else:
            out.append(("other", rec.position, rec.end_offset, rec.provider))
    return out


@pytest.mark.parametrize("block", [1 << 16, 1 << 20])
def test_stream_without_offsets_and_small_blocks_equal_the_python_path(
    block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Standard input (no byte offsets), and documents cut by block boundaries."""
    monkeypatch.setattr(jsonl_mod, "JSON_BLOCK_SIZE", block)
    text = "\n".join(_line(_wlb(i)) for i in range(400)) + "\n" + _mixed_text()
    data = text.encode()
    assert len(data) > 3 * (1 << 16)
    got = _flatten(_native_json(io.BytesIO(data), "-", start_offset=None))
    want = _flatten(read_json(io.BytesIO(data), "-", start_offset=None))
    assert got == want
    assert all(g[1] is None for g in got if g[0].startswith("line"))
    with_offsets = _flatten(_native_json(io.BytesIO(data), "f"))
    assert with_offsets == _flatten(read_json(io.BytesIO(data), "f"))
    # every resume point is where the next line starts
    for g in with_offsets:
        if g[0].startswith("line") and g[1] is not None and g[1] < len(data):
            assert data[g[1] - 1 : g[1]] == b"\n"


def _utf8_lines() -> bytes:
    """UTF-8 lines with characters of 2, 3 and 4 bytes everywhere (so block boundaries fall
    inside characters), a line with bytes that are not UTF-8 and one with a literal U+FFFD."""
    lines = []
    for i in range(900):
        company = ["Microsoft® Corporation", "Ünïcödé ГмбХ", "公司 😀", "plain"][i % 4]
        data = {**_wlb(i)["winlog"]["event_data"], "Company": company, "Description": "é" * (i % 7)}
        lines.append(_line(_wlb(i, event_data=data)).encode())
    lines[303] = lines[303].replace(b"plain", b"pl\xff\xfein")  # not UTF-8: U+FFFD when decoded
    lines[603] = lines[603].replace(b"plain", "pl\ufffdin".encode())
    return b"\n".join(lines) + b"\n"


def _native_docs(events: Iterator[RawEvent | MappedBatch | ReadError]) -> tuple[list[Any], int]:
    events = list(events)
    return _flatten(iter(events)), sum(len(e.docs) for e in events if isinstance(e, MappedBatch))


@pytest.mark.parametrize(("bom", "block"), [(b"", 1 << 16), (codecs.BOM_UTF8, 1 << 16), (b"", 1 << 20)])
def test_utf8_bytes_read_by_the_core_equal_the_python_path(
    bom: bytes, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The core reads a UTF-8 file's bytes rather than the decoded text: same documents,
    positions and resume points, across block boundaries inside characters, past undecodable
    bytes (from there on the text is read, its offsets unknown) and from a resume point."""
    native_mod.native()
    from_bytes = []
    read_bytes = sysmon_native.map_json_bytes

    def counted(data: bytes, start: int, line: int, offset: int | None) -> Any:
        run = read_bytes(data, start, line, offset)
        from_bytes.append(len(run.docs))
        return run

    monkeypatch.setattr(sysmon_native, "map_json_bytes", counted)
    monkeypatch.setattr(jsonl_mod, "JSON_BLOCK_SIZE", block)
    data = bom + _utf8_lines()
    assert len(data) > 10 * (1 << 16)
    got, native_docs = _native_docs(_native_json(io.BytesIO(data), "f"))
    want = _flatten(read_json(io.BytesIO(data), "f"))
    assert got == want
    assert native_docs >= 290  # the lines before the undecodable ones, at least
    assert 290 <= sum(from_bytes) < native_docs  # from the bytes until the undecodable line
    assert [g[1] for g in got[:3]] == [len(bom) + len(x) + 1 for x in _cumulative(data[len(bom) :], 3)]
    # resume after line 100 (its end offset), reading bytes from there on
    stop = got[99][1]
    tail = data[stop:]
    got, native_docs = _native_docs(
        _native_json(io.BytesIO(tail), "f", start_offset=stop, start_line=101, codec="utf-8")
    )
    want = _flatten(read_json(io.BytesIO(tail), "f", start_offset=stop, start_line=101, codec="utf-8"))
    assert got == want and got[0][0] == "line 101" and native_docs >= 190


def _cumulative(data: bytes, n: int) -> list[bytes]:
    """The first ``n`` prefixes of ``data`` that end just before a newline."""
    out, at = [], 0
    for _ in range(n):
        at = data.index(b"\n", at + 1)
        out.append(data[:at])
    return out


# --------------------------------------------------------------------------- random documents

TIMES = st.one_of(
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond:06d}Z"),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S") + "z"),
    st.builds(
        lambda d, h, m, sign: d.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + f"{sign}{h:02d}:{m:02d}",
        st.datetimes(),
        st.integers(0, 23),
        st.integers(0, 59),
        st.sampled_from("+-"),
    ),
    st.sampled_from(
        [
            "2024-03-05T10:11:12Z",
            "2024-03-05 10:11:12",
            "2024-03-05T10:11:12+0530",
            "2024-03-05T10:11:12,5Z",
            "2024-02-30T10:11:12Z",
            "0001-01-01T00:10:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2024-03-05T24:00:00Z",
            "2024-03-05T10:11:12.x5Z",
            " 2024-03-05T10:11:12Z ",
            "2024-03-05",
            "",
        ]
    ),
    st.none(),
    st.integers(-(2**63), 2**64 - 1),
)
LOOSE_INTS = st.one_of(
    st.integers(-5, 10**12),
    st.integers(0, 70000).map(str),
    st.sampled_from(
        [" 12 ", "0x1F", "0X10", "-0x1", "+7", "1_000", "x", "", "١٢", 1.5, True, None, 2**63, {}]
    ),
)
TEXTS = st.one_of(
    st.sampled_from(["WS01.corp.local", "dc01", "HÔTE", "", " ", 5, True, None, {"#text": "x"}, [1]]),
    st.text(max_size=12),
)


def _maybe(draw: st.DrawFn, target: dict[str, Any], key: str, strategy: st.SearchStrategy[Any]) -> None:
    if draw(st.integers(0, 9)):
        target[key] = draw(strategy)


def _event_data(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=12, unique=True))
    data = {name: draw(FIELDS[name]) for name in names}
    if draw(st.booleans()):
        data[draw(st.sampled_from(names))] = draw(
            st.sampled_from([{"#text": "v"}, 2.5, [1], None, {"a": 1}, -3, 2**63])
        )
    return data


@st.composite
def winlogbeat_docs(draw: st.DrawFn) -> dict[str, Any]:
    eid = draw(st.sampled_from([*EVENTS, 999]))
    winlog: dict[str, Any] = {}
    _maybe(draw, winlog, "event_id", st.one_of(st.just(str(eid)), st.just(eid), LOOSE_INTS))
    _maybe(
        draw,
        winlog,
        "provider_name",
        st.sampled_from(["Microsoft-Windows-Sysmon"] * 6 + ["Other", "", None, 3]),
    )
    _maybe(draw, winlog, "computer_name", TEXTS)
    _maybe(draw, winlog, "channel", st.sampled_from(["Microsoft-Windows-Sysmon/Operational", "", None, "é"]))
    _maybe(draw, winlog, "record_id", LOOSE_INTS)
    _maybe(draw, winlog, "time_created", TIMES)
    _maybe(draw, winlog, "provider_guid", st.one_of(GUIDS, st.sampled_from(["", "  ", None, 7])))
    _maybe(draw, winlog, "version", LOOSE_INTS)
    _maybe(
        draw,
        winlog,
        "task",
        st.one_of(
            LOOSE_INTS, st.sampled_from(["Process Create (rule: ProcessCreate)", "", [], {"#text": ""}])
        ),
    )
    _maybe(
        draw,
        winlog,
        "opcode",
        st.one_of(
            LOOSE_INTS, st.sampled_from(["Info", " START ", "stop", "DataCollectionStop", "İnfo", "x"])
        ),
    )
    _maybe(
        draw,
        winlog,
        "process",
        st.one_of(
            st.builds(lambda p, t: {"pid": p, "thread": {"id": t}}, LOOSE_INTS, LOOSE_INTS),
            st.sampled_from(["x", None, {"thread": 5}]),
        ),
    )
    _maybe(draw, winlog, "user", st.one_of(st.builds(lambda s: {"identifier": s}, TEXTS), st.just("u")))
    _maybe(draw, winlog, "keywords", st.sampled_from(["0x8000000000000000", ["Audit Success"], -1]))
    winlog["event_data"] = _event_data(draw)
    doc: dict[str, Any] = {"winlog": winlog}
    _maybe(draw, doc, "@timestamp", TIMES)
    _maybe(
        draw,
        doc,
        "event",
        st.one_of(
            st.fixed_dictionaries(
                {"code": st.one_of(st.just(str(eid)), LOOSE_INTS), "provider": TEXTS, "created": TIMES}
            ),
            st.just("x"),
        ),
    )
    _maybe(
        draw,
        doc,
        "log",
        st.one_of(
            st.builds(
                lambda v: {"level": v},
                st.one_of(LOOSE_INTS, st.sampled_from(["information", " Warning ", "ERROR", "verbose", "x"])),
            ),
            st.just([]),
        ),
    )
    _maybe(draw, doc, "message", st.text(max_size=30))
    return doc


@st.composite
def nxlog_docs(draw: st.DrawFn) -> dict[str, Any]:
    eid = draw(st.sampled_from([*EVENTS, 999]))
    doc: dict[str, Any] = {}
    _maybe(draw, doc, "EventID", st.one_of(st.just(eid), LOOSE_INTS))
    _maybe(draw, doc, "SourceName", st.sampled_from(["Microsoft-Windows-Sysmon"] * 6 + ["Other", "", None]))
    _maybe(draw, doc, "ProviderName", st.sampled_from(["Microsoft-Windows-Sysmon", None]))
    _maybe(draw, doc, "Hostname", TEXTS)
    _maybe(draw, doc, "Channel", st.sampled_from(["Microsoft-Windows-Sysmon/Operational", ""]))
    _maybe(draw, doc, "RecordNumber", LOOSE_INTS)
    _maybe(draw, doc, "EventTime", TIMES)
    _maybe(draw, doc, "ProviderGuid", GUIDS)
    _maybe(draw, doc, "Level", LOOSE_INTS)
    _maybe(draw, doc, "SeverityValue", st.one_of(st.integers(0, 6), LOOSE_INTS))
    _maybe(draw, doc, "Task", LOOSE_INTS)
    _maybe(draw, doc, "OpcodeValue", LOOSE_INTS)
    _maybe(draw, doc, "ExecutionProcessID", LOOSE_INTS)
    _maybe(draw, doc, "ThreadID", LOOSE_INTS)
    _maybe(draw, doc, "UserID", TEXTS)
    _maybe(draw, doc, "SID", TEXTS)
    _maybe(draw, doc, "EventType", st.sampled_from(["INFO", "AUDIT_SUCCESS", "SetValue", "CreateKey", 4]))
    _maybe(draw, doc, "EventTypeOrignal", st.just("INFO"))
    _maybe(draw, doc, "host", st.sampled_from(["collector", {"name": "c"}]))
    for key, value in _event_data(draw).items():
        doc.setdefault(key, value)
    return doc


def _compare(doc: dict[str, Any]) -> bool:
    """Native and Python agree on ``doc`` (as one JSON line); True when the core mapped it."""
    native_mod.native()  # the public suffix rules are handed over
    line = _line(doc)
    got = sysmon_native.map_json_line(line)
    if got is None:
        return False  # left to Python: nothing to compare
    event = event_from_document(orjson.loads(line), "t", "line 1", line)
    if got[0] is None:  # another provider's record: Python reads it without an error too
        assert isinstance(event, RawEvent) and not event.is_sysmon, event
        assert event.provider == got[1]
        return True
    assert isinstance(event, RawEvent) and event.is_sysmon, event
    expected_doc, expected_id = to_ecs_and_id(event)
    assert orjson.loads(got[0]) == expected_doc
    assert got[1] == expected_id
    assert (expected_doc.get("event") or {}).get("kind") == "event"
    return True


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(winlogbeat_docs())
def test_random_winlogbeat_documents_map_exactly_like_python(doc: dict[str, Any]) -> None:
    _compare(doc)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nxlog_docs())
def test_random_nxlog_documents_map_exactly_like_python(doc: dict[str, Any]) -> None:
    _compare(doc)


def test_ordinary_documents_are_mapped_natively() -> None:
    """So the random comparisons are not satisfied by leaving everything to Python."""
    for i in range(200):
        assert _compare(_wlb(i)), i
        assert _compare(_nxlog(i)), i
    times = ["2024-05-01T12:30:00.5+02:00", "2024-05-01 23:59:59-00:30", "2024-05-01T00:00:00.1234567Z"]
    for t in times:
        assert _compare(_wlb(0, time_created=t)), t


def test_other_providers_records_are_named_only_where_python_reads_them() -> None:
    native_mod.native()
    security = _wlb(0, provider_name="Microsoft-Windows-Security-Auditing", event_id="4624")
    assert sysmon_native.map_json_line(_line(security)) == (None, "Microsoft-Windows-Security-Auditing")
    assert _compare(security)
    by_name = {**_nxlog(0), "SourceName": "", "ProviderName": "Service Control Manager", "EventID": 7036}
    assert sysmon_native.map_json_line(_line(by_name)) == (None, "Service Control Manager")
    assert _compare(by_name)
    # Python gives a read error for these (no provider, no event ID): they are left to it
    for doc in (
        {**_nxlog(0), "SourceName": "", "ProviderName": None},
        {**_nxlog(0), "SourceName": "Other", "EventID": "x"},
        {**_wlb(0, provider_name=""), "event": {"code": "1"}},
    ):
        assert sysmon_native.map_json_line(_line(doc)) is None
        assert isinstance(event_from_document(doc, "t", "line 1", None), ReadError)
    # a time the core does not convert: Python reads the line
    late = _wlb(0, provider_name="Other", time_created="0001-01-01T00:10:00+01:00")
    assert sysmon_native.map_json_line(_line(late)) is None


def test_parallel_workers_count_what_one_process_counts(sample_day: Path, tmp_path: Path) -> None:
    """Native runs of documents straddle a worker's stats hand-overs: every one is counted (a
    Counter cached across a hand-over once lost those the queue's feeder had already sent)."""
    lines = (sample_day / "winlogbeat.ndjson").read_text(encoding="utf-8").splitlines()
    paths = []
    for i in range(2):  # hand-overs every 1,000 documents, most of them inside a native run
        part = tmp_path / f"part-{i}.ndjson"
        part.write_text("\n".join(lines[:2900] * 5) + "\n", encoding="utf-8")
        paths.append(str(part))
    one, two = Stats(), Stats()
    docs_one = [(i.source, i.seq, i.doc_id) for i in iter_documents(paths, stats=one, workers=1)]
    docs_two = [(i.source, i.seq, i.doc_id) for i in iter_documents(paths, stats=two, workers=2)]
    assert docs_two == docs_one
    assert two.as_dict() == one.as_dict()
    assert one.as_dict()["sysmon_events"] == 2 * 5 * 2900


def _interleaved_text() -> str:
    """Sysmon lines with other providers' records between them, as a collector's file of all
    channels has them: winlogbeat and NXLog, some alone, some in a row, and one Python reads
    as an error (no event ID)."""
    lines = []
    for i in range(300):
        if i % 3 == 1:
            lines.append(_line(_wlb(i, provider_name="Microsoft-Windows-Security-Auditing", event_id="4624")))
        elif i % 7 == 2:
            lines.append(_line({**_nxlog(i), "SourceName": "Microsoft-Windows-PowerShell", "EventID": 4104}))
        elif i == 101:
            lines.append(_line({**_nxlog(i), "SourceName": "Service Control Manager", "EventID": None}))
        elif i % 11 == 0:
            lines.append(_line(_nxlog(i)))
        else:
            lines.append(_line(_wlb(i)))
    return "\n".join(lines) + "\n"


def test_other_providers_between_sysmon_lines_are_read_natively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records of other providers are counted by the core, so a file of all channels stays on
    the native path; documents, positions and stats are Python's."""
    path = tmp_path / "all-channels.ndjson"
    path.write_text(_interleaved_text(), encoding="utf-8")
    fast, mapped = _same([str(path)], monkeypatch)
    assert mapped == len(fast) - 1 > 100  # all but the error document
    _, st_fast, _ = _run([str(path)], True, monkeypatch)
    assert st_fast.other_providers["Microsoft-Windows-Security-Auditing"] == 100
    assert st_fast.other_providers["Microsoft-Windows-PowerShell"] > 10
    assert st_fast.errors == {"json": 1}  # the record without an event ID, read by Python
    got = _flatten(_native_json(io.BytesIO(path.read_bytes()), "f"))
    want = _flatten(read_json(io.BytesIO(path.read_bytes()), "f"))
    assert got == want
    assert (
        sum(1 for g in got if g[0] == "other")
        == 100 + st_fast.other_providers["Microsoft-Windows-PowerShell"]
    )


@pytest.mark.parametrize("skip", [0, 1, 37, 1000, 2999, 10_000])
def test_runs_are_the_items_of_the_same_records(sample_day: Path, tmp_path: Path, skip: int) -> None:
    """A stream with ``runs`` (what the shipper reads) hands over exactly the documents, seqs and resume
    points ``iter_documents`` gives, with the same stats, also when a skip count ends inside a
    run (a resume by count) and when other providers' records split a native batch."""
    evtx = sorted(str(p) for p in sysmon_data().rglob("*.evtx"))[:5]
    channels = tmp_path / "all-channels.ndjson"
    channels.write_text(_interleaved_text(), encoding="utf-8")
    paths = [str(sample_day / "winlogbeat.ndjson"), str(channels), *evtx]
    skips = {p: skip for p in paths}
    items_stats, runs_stats = Stats(), Stats()
    items = [
        (i.source, i.seq, i.doc_id, i.json(), i.end_offset, i.end_line)
        for i in iter_documents(paths, stats=items_stats, skip=skips)
    ]
    flat = []
    kinds = set()
    reads = [SourceRead(p, skips[p]) for p in paths]
    for r in stream(reads, ReadOptions(), runs_stats, runs=True):
        if isinstance(r, SourceStarted | SourceEnded):
            continue
        kinds.add(type(r).__name__)
        if isinstance(r, ItemRun):
            for k in range(len(r)):
                end = None if r.end_offsets is None else r.end_offsets[k]
                end_line = None if r.end_lines is None else r.end_lines[k]
                flat.append((r.source, r.first_seq + k, r.doc_ids[k], r.docs[k], end, end_line))
        else:
            flat.append((r.source, r.seq, r.doc_id, r.json(), r.end_offset, r.end_line))
    assert flat == items
    assert runs_stats.as_dict() == items_stats.as_dict()
    assert "ItemRun" in kinds or skip >= 2999


def test_documents_of_one_run_keep_their_own_months(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run of natively mapped lines spans months and years: each document's index suffix is
    its own month's, as on the Python path."""
    stamps = ["2024-05-31 23:59:59.999", "2024-06-01 00:00:00.000", "2023-05-02 10:00:00.000"]
    lines = []
    for i in range(30):
        doc = _wlb(i)
        doc["winlog"]["event_data"]["UtcTime"] = stamps[i % 3]
        lines.append(_line(doc))
    path = tmp_path / "months.ndjson"
    path.write_text("\n".join(lines) + "\n")
    fast, mapped = _same([str(path)], monkeypatch)
    assert mapped == 30
    assert [d[2] for d in fast] == ["2024.05", "2024.06", "2023.05"] * 10

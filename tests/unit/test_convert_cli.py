"""``sysmon-ship convert`` through click's CliRunner: NDJSON on stdout or in a file, ``--format``,
``--evtx-backend python``, ``--skip-errors``, ``--json-summary`` and the summary on stderr."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from samples.__main__ import main as samples_main
from shipper.cli import main
from shipper.native import available as native_available
from tests.shared_data import evtx_manifest

EVENTS = 150
NS = "http://schemas.microsoft.com/win/2004/08/events/event"


def _event(eid: int, record: int, data: dict[str, str], provider: str = "Microsoft-Windows-Sysmon") -> str:
    channel = "Microsoft-Windows-Sysmon/Operational" if provider.endswith("Sysmon") else "Security"
    fields = "".join(f"<Data Name='{k}'>{v}</Data>" for k, v in data.items())
    return (
        f"<Event xmlns='{NS}'><System><Provider Name='{provider}'/><EventID>{eid}</EventID>"
        f"<TimeCreated SystemTime='2024-03-05T10:00:0{record % 10}.1234567Z'/>"
        f"<EventRecordID>{record}</EventRecordID><Channel>{channel}</Channel>"
        f"<Computer>WS01.corp</Computer></System><EventData>{fields}</EventData></Event>"
    )


def _run(args: list[str], stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(main, ["convert", *args], input=stdin, catch_exceptions=False)


def _docs(data: bytes) -> list[dict[str, Any]]:
    assert data.endswith(b"\n")
    return [orjson.loads(line) for line in data.splitlines()]


def _summary(stderr: str) -> dict[str, str]:
    """``convert: sources=1 records=… by_id: 1=3 …`` → its ``key=value`` fields and ``by_id``."""
    (line,) = [ln for ln in stderr.splitlines() if ln.startswith("convert: sources=")]
    head, _, by_id = line.removeprefix("convert: ").partition(" by_id: ")
    out = dict(part.split("=", 1) for part in head.split())
    out["by_id"] = by_id
    return out


def _by_id(counts: Counter[int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(counts.items()))


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("day")
    result = CliRunner().invoke(
        samples_main,
        ["generate", "--out", str(out), "--events", str(EVENTS), "--seed", "11", "--forms", "xml,winlogbeat"],
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def day_ids(day: Path) -> Counter[int]:
    """Event IDs of the generated XML, counted independently of the shipper."""
    text = (day / "sysmon.xml").read_text(encoding="utf-8")
    return Counter(int(m) for m in re.findall(r"<EventID>(\d+)</EventID>", text))


@pytest.fixture
def broken(tmp_path: Path) -> tuple[Path, Path]:
    """An XML file (good, malformed on line 2, a Security event, good) and a JSON-lines file
    (good, broken on line 2, good)."""
    xml = tmp_path / "broken.xml"
    xml.write_text(
        "\n".join(
            [
                _event(1, 1, {"UtcTime": "2024-03-05 10:00:01.000", "Image": r"C:\Windows\cmd.exe"}),
                "<Event><System><EventID>3</EventID><oops></Event>",
                _event(4624, 2, {"TargetUserName": "bob"}, provider="Microsoft-Windows-Security-Auditing"),
                _event(22, 3, {"UtcTime": "2024-03-05 10:00:03.000", "QueryName": "example.org"}),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    jsonl = tmp_path / "broken.ndjson"
    good = {
        "EventID": 1,
        "SourceName": "Microsoft-Windows-Sysmon",
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Hostname": "WS02",
        "RecordNumber": 9,
        "UtcTime": "2024-03-06 11:00:00.000",
        "Image": r"C:\x.exe",
    }
    lines = [
        orjson.dumps(good).decode(),
        '{"EventID": 3, "Image":',
        orjson.dumps(good | {"RecordNumber": 10}).decode(),
    ]
    jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return xml, jsonl


def test_ndjson_on_stdout_with_a_summary_on_stderr(day: Path, day_ids: Counter[int]) -> None:
    result = _run([str(day / "sysmon.xml")])
    assert result.exit_code == 0, result.stderr
    docs = _docs(result.stdout_bytes)
    assert len(docs) == EVENTS == sum(day_ids.values())
    assert Counter(int(d["event"]["code"]) for d in docs) == day_ids
    assert all(
        d["event"]["kind"] == "event" and d["event"]["provider"] == "Microsoft-Windows-Sysmon" for d in docs
    )
    s = _summary(result.stderr)
    assert s["sources"] == "1"
    assert s["records"] == s["sysmon"] == s["documents"] == str(EVENTS)
    assert s["other_providers"] == s["unknown_ids"] == s["errors"] == s["errors_skipped"] == "0"
    assert s["by_id"] == _by_id(day_ids)
    assert "error" not in result.stderr.replace("errors=0 errors_skipped=0", "")


def test_output_file_holds_what_stdout_would(day: Path, tmp_path: Path) -> None:
    reference = _run([str(day / "sysmon.xml")]).stdout_bytes
    target = tmp_path / "out.ndjson"
    result = _run([str(day / "sysmon.xml"), "--output", str(target)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == b""
    assert target.read_bytes() == reference
    assert _summary(result.stderr)["documents"] == str(EVENTS)


def test_the_same_day_in_another_form_gives_the_same_events(day: Path, day_ids: Counter[int]) -> None:
    xml = _docs(_run([str(day / "sysmon.xml")]).stdout_bytes)
    wlb = _docs(_run([str(day / "winlogbeat.ndjson")]).stdout_bytes)
    assert [d["event"]["code"] for d in wlb] == [d["event"]["code"] for d in xml]
    assert [d["@timestamp"] for d in wlb] == [d["@timestamp"] for d in xml]


def test_format_override(day: Path, tmp_path: Path) -> None:
    # content detection does not care about the name; --format says what it is
    renamed = tmp_path / "events.log"
    shutil.copy(day / "winlogbeat.ndjson", renamed)
    detected = _run([str(renamed)])
    forced = _run([str(renamed), "--format", "json"])
    assert forced.exit_code == detected.exit_code == 0
    assert forced.stdout_bytes == detected.stdout_bytes
    assert len(_docs(forced.stdout_bytes)) == EVENTS
    # forcing the wrong form is honoured too, and loses nothing silently: the JSON lines read
    # as event XML are reported, not dropped
    wrong = _run([str(renamed), "--format", "xml", "--json-summary"])
    assert wrong.exit_code == 0, wrong.stderr
    summary = orjson.loads(wrong.stderr)
    assert summary["sysmon_events"] == 0
    assert summary["errors"] == {"xml": 1}, summary
    assert summary["error_samples"][0].startswith(f"{renamed} (line 1): text outside any <Event>")
    (doc,) = _docs(wrong.stdout_bytes)
    assert doc["event"]["kind"] == "pipeline_error"
    assert doc["event"]["original"].startswith('{"@timestamp":')
    bad = _run([str(renamed), "--format", "csv"])
    assert bad.exit_code == 2
    assert "csv" in bad.stderr


def test_a_damaged_event_start_tag_is_reported_not_dropped(tmp_path: Path) -> None:
    """Text between events that is neither white space, a declaration, a comment nor the
    ``<Events>`` wrapper (here an event whose start tag is damaged, and trailing junk) is an
    error naming its line; the events around it are read."""
    path = tmp_path / "damaged.xml"
    good = _event(1, 1, {"UtcTime": "2024-03-05 10:00:01.000", "Image": r"C:\a.exe"})
    damaged = _event(1, 2, {"UtcTime": "2024-03-05 10:00:02.000"}).replace("<Event ", "<Evnt ", 1)
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<!-- wevtutil qe -->\n<Events>\n'
        + "\n".join([good, damaged, good.replace(">1</EventRecordID>", ">3</EventRecordID>")])
        + "\n</Events>\ntrailing junk\n",
        encoding="utf-8",
    )
    result = _run([str(path), "--json-summary"])
    summary = orjson.loads(result.stderr)
    assert summary["sysmon_by_id"] == {"1": 2}
    assert summary["errors"] == {"xml": 2}
    assert [s.split(": ")[0] for s in summary["error_samples"]] == [f"{path} (line 5)", f"{path} (line 8)"]
    docs = _docs(result.stdout_bytes)
    assert [d["event"]["kind"] for d in docs] == ["event", "pipeline_error", "event", "pipeline_error"]
    assert docs[1]["event"]["original"].startswith("<Evnt ")
    assert docs[3]["event"]["original"].strip().endswith("trailing junk")
    # a clean export has nothing of the kind
    path.write_text('<?xml version="1.0"?>\n<Events>\n' + good + "\n</Events>\n", encoding="utf-8")
    clean = orjson.loads(_run([str(path), "--json-summary"]).stderr)
    assert (clean["errors"], clean["documents"]) == ({}, 1)


def test_evtx_backend_python_on_a_shared_file() -> None:
    entry = next(
        e for e in evtx_manifest() if e.path.name == "DE_timestomp_and_dll_sideloading_and_RunPersist.evtx"
    )
    fast = _run([str(entry.path), "--json-summary"])
    slow = _run([str(entry.path), "--evtx-backend", "python", "--json-summary"])
    for result in (fast, slow):
        assert result.exit_code == 0, result.stderr
        summary = orjson.loads(result.stderr)
        assert summary["sysmon_by_id"] == {str(k): v for k, v in sorted(entry.sysmon_eid_counts.items())}
        assert summary["records"] == entry.total_events
        assert summary["errors"] == {}
    fast_docs, slow_docs = _docs(fast.stdout_bytes), _docs(slow.stdout_bytes)
    assert len(slow_docs) == entry.sysmon_events == 23
    # same events, same order (python-evtx rounds sub-microsecond times: compare the event itself)
    assert [d["winlog"]["record_id"] for d in slow_docs] == [d["winlog"]["record_id"] for d in fast_docs]
    assert [d["event"]["code"] for d in slow_docs] == [d["event"]["code"] for d in fast_docs]
    assert [d["@timestamp"] for d in slow_docs] == [d["@timestamp"] for d in fast_docs]
    assert [d.get("process") for d in slow_docs] == [d.get("process") for d in fast_docs]


def test_bad_records_are_kept_tagged_and_summarised(broken: tuple[Path, Path]) -> None:
    xml, jsonl = broken
    result = _run([str(xml), str(jsonl)])
    assert result.exit_code == 0, result.stderr
    docs = _docs(result.stdout_bytes)
    # 4 + 3 records, the Security event makes no document
    assert len(docs) == 6
    errors = [d for d in docs if d["event"]["kind"] == "pipeline_error"]
    assert sorted(d["error"]["message"].split(": ")[0] for d in errors) == sorted(
        [f"{xml} (line 2)", f"{jsonl} (line 2)"]
    )
    assert {d["event"]["original"].strip() for d in errors} == {
        "<Event><System><EventID>3</EventID><oops></Event>",
        '{"EventID": 3, "Image":',
    }
    err = result.stderr
    assert f"error: {xml} (line 2): malformed event XML" in err
    assert f"error: {jsonl} (line 2): malformed JSON" in err
    assert "convert: errors by kind: json=1 xml=1" in err
    assert "convert: other providers (skipped): Microsoft-Windows-Security-Auditing=1" in err
    s = _summary(err)
    assert (s["sources"], s["records"], s["sysmon"], s["documents"]) == ("2", "7", "4", "6")
    assert (s["other_providers"], s["errors"], s["errors_skipped"]) == ("1", "2", "0")
    assert s["by_id"] == "1=3 22=1"


def test_skip_errors_drops_bad_records_and_counts_them(broken: tuple[Path, Path]) -> None:
    xml, jsonl = broken
    result = _run([str(xml), str(jsonl), "--skip-errors"])
    assert result.exit_code == 0, result.stderr
    docs = _docs(result.stdout_bytes)
    assert [d["event"]["code"] for d in docs] == ["1", "22", "1", "1"]
    assert all(d["event"]["kind"] == "event" for d in docs)
    assert f"error: {xml} (line 2)" in result.stderr
    assert f"error: {jsonl} (line 2)" in result.stderr
    s = _summary(result.stderr)
    assert (s["records"], s["documents"], s["errors"], s["errors_skipped"]) == ("7", "4", "2", "2")


def test_json_summary(broken: tuple[Path, Path]) -> None:
    xml, jsonl = broken
    result = _run([str(xml), str(jsonl), "--skip-errors", "--json-summary"])
    assert result.exit_code == 0
    summary = orjson.loads(result.stderr)  # the whole of stderr is one JSON object
    assert summary == {
        "sources": 2,
        "records": 7,
        "documents": 4,
        "sysmon_events": 4,
        "sysmon_by_id": {"1": 3, "22": 1},
        "other_providers": {"Microsoft-Windows-Security-Auditing": 1},
        "unknown_event_ids": {},
        "errors": {"json": 1, "xml": 1},
        "errors_skipped": 2,
        "error_samples": summary["error_samples"],
        # the broken JSON line, which the native core leaves to Python (where it is installed)
        "native_fallbacks": {"broken_line": 1} if native_available() else {},
    }
    assert sorted(s.split(": ")[0] for s in summary["error_samples"]) == sorted(
        [f"{xml} (line 2)", f"{jsonl} (line 2)"]
    )
    assert len(_docs(result.stdout_bytes)) == 4


def test_standard_input_with_host(day: Path) -> None:
    text = (day / "sysmon.xml").read_bytes()
    result = _run(["-", "--host", "IGNORED-FOR-XML"], stdin=text)
    assert result.exit_code == 0, result.stderr
    docs = _docs(result.stdout_bytes)
    assert len(docs) == EVENTS
    # the XML carries its own computer name: --host only fills in for forms that lack one
    assert not any((d.get("host") or {}).get("name") == "IGNORED-FOR-XML" for d in docs)


def test_a_missing_input_fails_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.evtx"
    result = _run([str(missing)])
    assert result.exit_code == 1
    assert str(missing) in result.stderr
    assert result.stdout_bytes == b""


def test_the_input_forms_offered_are_the_readers() -> None:
    """``--format`` offers exactly the forms the readers registry reads."""
    from shipper.cli.options import FORMATS
    from shipper.readers import READERS

    assert sorted(FORMATS) == sorted(READERS)

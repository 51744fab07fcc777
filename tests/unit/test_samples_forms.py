"""The four written forms, the CLI, truth.json and the intel files of the sample generator."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from samples import catalog as C
from samples.__main__ import main
from samples.day import CATEGORIES, attack_hosts, generate
from samples.model import FIELDS, PROVIDER, TITLES, SysmonEvent
from samples.writers import FORMS

NS = "{http://schemas.microsoft.com/win/2004/08/events/event}"
N_EVENTS = 700


def _run(out: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["generate", "--out", str(out), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def day_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("day")
    _run(out, "--events", str(N_EVENTS), "--seed", "42")
    return out


@pytest.fixture(scope="module")
def model_events() -> list[SysmonEvent]:
    return list(generate(N_EVENTS, 42))


def _xml_events(path: Path) -> list[dict[str, Any]]:
    root = ET.parse(path).getroot()
    assert root.tag == "Events"
    out = []
    for ev in root:
        system = ev.find(f"{NS}System")
        assert system is not None
        provider = system.find(f"{NS}Provider")
        assert provider is not None and provider.get("Name") == PROVIDER
        tc = system.find(f"{NS}TimeCreated")
        assert tc is not None
        ex = system.find(f"{NS}Execution")
        assert ex is not None
        out.append(
            {
                "event_id": int(system.findtext(f"{NS}EventID", "")),
                "record_id": int(system.findtext(f"{NS}EventRecordID", "")),
                "computer": system.findtext(f"{NS}Computer"),
                "time": tc.get("SystemTime"),
                "pid": int(ex.get("ProcessID", "")),
                "data": {d.get("Name"): d.text or "" for d in ev.iter(f"{NS}Data")},
            }
        )
    return out


def _text_blocks(path: Path) -> list[tuple[int, dict[str, str]]]:
    raw = path.read_bytes().decode("utf-8")
    assert raw.endswith("\r\n\r\n")
    by_title = {t: eid for eid, t in TITLES.items()}
    out = []
    for block in raw[:-4].split("\r\n\r\n"):
        title, *lines = block.split("\r\n")
        assert title.endswith(":")
        data = dict(line.split(": ", 1) for line in lines)
        out.append((by_title[title[:-1]], data))
    return out


def test_cli_writes_every_form_and_a_parseable_summary(day_dir: Path) -> None:
    for name, _ in FORMS.values():
        assert (day_dir / name).stat().st_size > 0
    assert (day_dir / "truth.json").is_file()
    for name in (
        "bad-ips.txt",
        "bad-domains.txt",
        "bad-hashes.csv",
        "allowlist-hashes.txt",
        "allowlist-images.txt",
    ):
        assert (day_dir / "intel" / name).is_file()


def test_summary_line_and_forms_option(tmp_path: Path) -> None:
    output = _run(
        tmp_path, "--events", "300", "--forms", "nxlog,text", "--hosts", "4", "--start", "2026-12-01"
    )
    fields = dict(kv.split("=", 1) for kv in output.strip().splitlines()[-1].split()[1:])
    assert fields["events"] == "300" and fields["hosts"] == "4" and fields["forms"] == "nxlog,text"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["intel", "nxlog.ndjson", "sysmon.txt", "truth.json"]
    assert "2026-12-01 " in (tmp_path / "sysmon.txt").read_text(encoding="utf-8")


def test_cli_rejects_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    bad_form = runner.invoke(main, ["generate", "--out", str(tmp_path), "--events", "500", "--forms", "csv"])
    assert bad_form.exit_code != 0
    too_few = runner.invoke(main, ["generate", "--out", str(tmp_path), "--events", "10"])
    assert too_few.exit_code != 0 and "at least" in too_few.output


def test_same_seed_identical_bytes_different_seed_differs(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _run(a, "--events", "600", "--seed", "9")
    _run(b, "--events", "600", "--seed", "9")
    _run(c, "--events", "600", "--seed", "10")
    files = [p.relative_to(a) for p in sorted(a.rglob("*")) if p.is_file()]
    assert len(files) == 10
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "sysmon.xml").read_bytes() != (c / "sysmon.xml").read_bytes()


def test_xml_matches_model(day_dir: Path, model_events: list[SysmonEvent]) -> None:
    xml = _xml_events(day_dir / "sysmon.xml")
    assert len(xml) == N_EVENTS
    for x, m in zip(xml, model_events, strict=True):
        assert (x["event_id"], x["record_id"], x["computer"], x["pid"]) == (
            m.event_id,
            m.record_id,
            m.host,
            m.process_id,
        )
        assert x["data"] == m.data
        assert list(x["data"]) == list(FIELDS[m.event_id])
        assert len(x["time"].split(".")[1]) == 8  # 7 digits and the Z


def test_every_json_line_parses_and_matches(day_dir: Path, model_events: list[SysmonEvent]) -> None:
    wlb = [orjson.loads(line) for line in (day_dir / "winlogbeat.ndjson").read_bytes().splitlines()]
    nxl = [orjson.loads(line) for line in (day_dir / "nxlog.ndjson").read_bytes().splitlines()]
    assert len(wlb) == len(nxl) == N_EVENTS
    for w, n, m in zip(wlb, nxl, model_events, strict=True):
        wl = w["winlog"]
        assert wl["event_data"] == m.data
        assert wl["event_id"] == str(m.event_id) == w["event"]["code"]
        assert wl["record_id"] == m.record_id and wl["computer_name"] == m.host
        assert wl["process"] == {"pid": m.process_id, "thread": {"id": m.thread_id}}
        assert w["log"]["level"] == "information" and wl["api"] == "wineventlog"
        assert w["@timestamp"].endswith("Z") and w["event"]["created"] >= w["@timestamp"]
        assert wl["time_created"][:19] == w["@timestamp"][:19] and wl["time_created"].endswith("Z")
        assert n["EventID"] == m.event_id and n["RecordNumber"] == m.record_id and n["Hostname"] == m.host
        assert n["ExecutionProcessID"] == m.process_id and n["ThreadID"] == m.thread_id
        flat = {k: n[k] for k in FIELDS[m.event_id]}
        if "LogonId" in flat:
            assert flat["LogonId"] == m.data["LogonId"].lower()
            flat["LogonId"] = m.data["LogonId"]
        assert flat == m.data
        assert n["Message"].split("\r\n")[0] == TITLES[m.event_id] + ":"
        assert n["EventTime"] >= m.data["UtcTime"][:19]


def test_text_form_matches(day_dir: Path, model_events: list[SysmonEvent]) -> None:
    blocks = _text_blocks(day_dir / "sysmon.txt")
    assert len(blocks) == N_EVENTS
    for (eid, data), m in zip(blocks, model_events, strict=True):
        assert eid == m.event_id
        if "LogonId" in data:
            assert data["LogonId"].lower() == m.data["LogonId"]
            data["LogonId"] = m.data["LogonId"]
        assert data == m.data


def test_truth_is_consistent_with_the_data(day_dir: Path) -> None:
    truth = orjson.loads((day_dir / "truth.json").read_bytes())
    xml = {(x["computer"], x["record_id"]): x for x in _xml_events(day_dir / "sysmon.xml")}
    assert truth["generator"]["events"] == N_EVENTS
    assert set(truth["categories"]) == set(CATEGORIES)
    refs = list(truth["malicious_events"])
    for cat in CATEGORIES:
        assert truth["categories"][cat]["events"], cat
        refs.extend(truth["categories"][cat]["events"])
    for ref in refs:
        x = xml[(ref["host"], ref["record_id"])]
        assert x["event_id"] == ref["event_id"]
        assert x["data"]["UtcTime"].replace(" ", "T") + "Z" == ref["utc_time"]
        if "process_guid" in ref:
            assert ref["process_guid"] in x["data"].values()
    pz, targets = attack_hosts(6)
    spread = truth["categories"]["spread"]
    assert spread["patient_zero"] == pz == truth["scenario"]["patient_zero"]
    assert [h["host"] for h in spread["hosts"]] == [pz, *targets]
    firsts = [h["first_seen"] for h in spread["hosts"]]
    assert firsts == sorted(firsts) and len(set(firsts)) == len(firsts)
    assert spread["sha256"] == C.DROPPER.sha256.lower()
    # Nothing outside malicious_events is tagged as malicious in any category.
    malicious = {(r["host"], r["record_id"]) for r in truth["malicious_events"]}
    for cat in CATEGORIES:
        assert {(r["host"], r["record_id"]) for r in truth["categories"][cat]["events"]} <= malicious


def test_intel_files_match_the_scenario(day_dir: Path) -> None:
    intel = day_dir / "intel"

    def lines(name: str) -> list[str]:
        text = (intel / name).read_text(encoding="utf-8")
        return [x for x in text.splitlines() if x and not x.startswith("#")]

    assert lines("bad-ips.txt") == [C.BAD_IP, C.BAD_CIDR]
    assert C.BAD_REGISTERED_DOMAIN in lines("bad-domains.txt")
    rows = list(csv.reader(io.StringIO("\n".join(lines("bad-hashes.csv"))), skipinitialspace=True))
    assert {r[1] for r in rows} == {C.DROPPER.sha256.lower(), C.BAD_DLL.sha256.lower()}
    allow = set(lines("allowlist-hashes.txt"))
    for bad in (C.DROPPER, C.BAD_DLL, C.BAD_DRIVER):
        assert bad.sha256.lower() not in allow
    # Every hash of a benign event 1/6/7 in the data is allowlisted; the malicious ones are not.
    truth = orjson.loads((day_dir / "truth.json").read_bytes())
    new_binary = {
        (r["host"], r["record_id"]) for r in truth["categories"]["new_binary_not_allowlisted"]["events"]
    }
    for x in _xml_events(day_dir / "sysmon.xml"):
        if x["event_id"] in (1, 6, 7):
            sha = dict(p.split("=", 1) for p in x["data"]["Hashes"].split(","))["SHA256"].lower()
            assert (sha not in allow) == ((x["computer"], x["record_id"]) in new_binary)
    images = set(lines("allowlist-images.txt"))
    assert C.BIN["explorer.exe"].path in images
    assert all(not p.endswith(C.DROPPER_NAME) for p in images)


def test_generator_titles_agree_with_the_readers_table() -> None:
    from samples.model import TITLES as WORLD
    from shipper.sysmon.events import TITLES as READER

    assert {k: v.lower() for k, v in WORLD.items()} == {k: v.lower() for k, v in READER.items() if k in WORLD}

"""``make demo`` (devtools/demo.py ``main``) against the real node, under a fresh prefix and a small
day: the printed tables (events per event ID, hosts, top images by SHA256) equal what the same
generated day holds, and the alerts part shows the attack chain."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from elasticsearch import Elasticsearch

from devtools import demo
from samples.__main__ import main as samples_main
from shipper.es import ClusterSettings
from shipper.pipeline import iter_documents

EVENTS = 1500
SEED = "7"


def _table(out: str, title_start: str) -> tuple[str, list[list[str]]]:
    """The title line and the rows (cells split on runs of 2+ spaces) of a printed table."""
    lines = out.splitlines()
    (at,) = [i for i, ln in enumerate(lines) if ln.startswith(title_start)]
    rows: list[list[str]] = []
    for ln in lines[at + 2 :]:  # title, header, rows
        if not ln.startswith("  ") or not ln.strip():
            break
        rows.append(re.split(r"\s{2,}", ln.strip()))
    return lines[at], rows


def test_demo_prints_what_the_sample_day_holds(
    es: Elasticsearch,
    es_settings: ClusterSettings,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # what the demo ships, read here without a cluster
    day = tmp_path / "day"
    gen = CliRunner().invoke(
        samples_main,
        ["generate", "--out", str(day), "--events", str(EVENTS), "--seed", SEED, "--forms", "winlogbeat"],
    )
    assert gen.exit_code == 0, gen.output
    docs = [i.doc for i in iter_documents([str(day / "winlogbeat.ndjson")])]
    assert len(docs) == EVENTS
    ids = Counter(int(d["event"]["code"]) for d in docs)
    hosts = Counter(d["host"]["name"] for d in docs)
    pairs = Counter(
        (d["process"]["executable"], d["process"]["hash"]["sha256"])
        for d in docs
        if d["event"]["code"] == "1" and (d.get("process") or {}).get("hash", {}).get("sha256")
    )

    for key in [k for k in os.environ if k.startswith("ES_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("ES_URL", es_settings.url)
    monkeypatch.setenv("SYSMON_INDEX_PREFIX", prefix)
    monkeypatch.setenv("DEMO_EVENTS", str(EVENTS))
    monkeypatch.setenv("DEMO_SEED", SEED)
    assert demo.main() == 0
    captured = capfd.readouterr()
    out = captured.out

    assert f"ship: shipped={EVENTS} duplicates=0 dead_lettered=0" in captured.err  # the CLI's summary
    assert f"\n{EVENTS} documents searchable in {prefix}-events " in out

    _, rows = _table(out, "events per event ID")
    assert [int(r[0]) for r in rows] == sorted(ids)
    assert {int(r[0]): int(r[1]) for r in rows} == ids

    _, rows = _table(out, "hosts")
    assert {r[0]: int(r[1]) for r in rows} == hosts
    assert [int(r[1]) for r in rows] == sorted(hosts.values(), reverse=True)

    title, rows = _table(out, "top process images by SHA256")
    assert title == f"top process images by SHA256 (event 1; {len(pairs)} distinct pairs)"
    want = sorted(((c, img, sha) for (img, sha), c in pairs.items()), key=lambda p: (-p[0], p[1], p[2]))[:15]
    assert [(int(r[0]), r[1], r[2]) for r in rows] == want

    # the alerts part: every rule ran, the alerts table is what the alerts indices hold
    ran = re.search(r"\nran (\d+) rules in ", out)
    assert ran is not None
    rule_lines = re.findall(r"^  rule ([\w-]+): (\w+) ", out, re.M)
    assert len(rule_lines) == int(ran.group(1)) > 5
    assert all(status == "ok" for _, status in rule_lines), rule_lines
    es.indices.refresh(index=f"{prefix}-alerts-*")
    stored = es.count(index=f"{prefix}-alerts-*")["count"]
    title, rows = _table(out, "Alerts (")
    assert title == f"Alerts ({stored}), worst first"
    assert stored > 0
    assert len(rows) == min(stored, 40)
    assert {r[1] for r in rows} <= {name for name, _ in rule_lines}

    # the spreading dropper: its hash, the hosts that ran it, patient zero = the first of them
    runs = sorted(
        (d["@timestamp"], d["host"]["name"], d["process"]["hash"]["sha256"])
        for d in docs
        if d["event"]["code"] == "1" and d["process"]["executable"].endswith("invoice_update.exe")
    )
    assert runs, "the sample day has no dropper execution"
    sha = runs[0][2]
    spread_hosts = {h for _, h, s in runs if s == sha}
    assert f"\nSpreading hash {sha[:16]}… on {len(spread_hosts)} hosts" in out
    assert f"\npatient zero: {runs[0][1]}\n" in out
    for when, host, _ in runs:
        if host in spread_hosts and when == min(t for t, h, s in runs if h == host and s == sha):
            assert f"  {when}  {host}  " in out
    assert "How it arrived on" in out
    assert re.search(r"pid \d+\s+C:\\Users\\\w+\\AppData\\Local\\Temp\\invoice_update\.exe", out)
    assert "triage: sysmon-detect alerts ack|close ID" in out

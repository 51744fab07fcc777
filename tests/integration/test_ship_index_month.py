"""Every document lands in the monthly index of its own ``@timestamp``: the shared EVTX files (events
of many months and years) and error documents (which take the time of the event before them, or
the file's modification time), read back one by one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from elasticsearch import Elasticsearch, helpers

from shipper.es import ClusterSettings
from tests.shared_data import evtx_manifest, sysmon_data

SHIP = [sys.executable, "-c", "from shipper.cli import main; main()"]
NS = "http://schemas.microsoft.com/win/2004/08/events/event"


def _cli(args: list[str], settings: ClusterSettings) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ES_")}
    env["ES_URL"] = settings.url
    proc = subprocess.run([*SHIP, *args], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"sysmon-ship {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _event(record: int, when: str) -> str:
    return (
        f"<Event xmlns='{NS}'><System><Provider Name='Microsoft-Windows-Sysmon'/><EventID>1</EventID>"
        f"<TimeCreated SystemTime='{when}Z'/><EventRecordID>{record}</EventRecordID>"
        "<Channel>Microsoft-Windows-Sysmon/Operational</Channel><Computer>WS09.corp</Computer></System>"
        f"<EventData><Data Name='UtcTime'>{when.replace('T', ' ')[:23]}</Data>"
        "<Data Name='Image'>C:\\Windows\\cmd.exe</Data></EventData></Event>"
    )


def test_documents_land_in_the_month_of_their_own_timestamp(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path
) -> None:
    # error documents: one after an event of May 2016 (takes its time), one in a file of its own
    # (takes the file's modification time: July 2019)
    xml = tmp_path / "errors.xml"
    xml.write_text(
        _event(1, "2016-05-31T23:59:59.900") + "\n<Event><System><oops></Event>\n"
        "" + _event(2, "2016-06-01T00:00:00.100") + "\n",
        encoding="utf-8",
    )
    lone = tmp_path / "lone.ndjson"
    lone.write_text('{"EventID": 1, "broken"\n', encoding="utf-8")
    july = datetime(2019, 7, 15, 12, 0, tzinfo=UTC).timestamp()
    os.utime(lone, (july, july))

    evtx = sysmon_data() / "evtx-attack-samples"
    _cli(["setup", "--index-prefix", prefix], es_settings)
    proc = _cli(
        [
            "ship",
            str(evtx),
            str(xml),
            str(lone),
            "--index-prefix",
            prefix,
            "--state-dir",
            str(tmp_path / "state"),
            "--json",
            "--no-progress",
        ],
        es_settings,
    )
    summary = json.loads(proc.stdout)
    assert summary["dead_lettered"] == 0
    assert summary["pipeline"]["errors"] == {"json": 1, "xml": 1}

    es.indices.refresh(index=f"{prefix}-events-*")
    hits = list(
        helpers.scan(
            es,
            index=f"{prefix}-events-*",
            query={"query": {"match_all": {}}},
            _source=["@timestamp", "event.kind", "event.code", "error.message"],
            size=1000,
        )
    )
    assert len(hits) == summary["shipped"] == es.count(index=f"{prefix}-events")["count"]
    months: Counter[str] = Counter()
    for hit in hits:
        ts = hit["_source"]["@timestamp"]
        expected = f"{prefix}-events-{ts[0:4]}.{ts[5:7]}"
        assert hit["_index"] == expected, (hit["_id"], ts)
        months[ts[:7]] += 1
    # the shared data spans many months: the routing is exercised, not one index for all
    assert len(months) > 5

    errors = [h for h in hits if h["_source"]["event"]["kind"] == "pipeline_error"]
    assert len(errors) == 2
    by_file = {h["_source"]["error"]["message"].split(" (")[0]: h for h in errors}
    assert by_file[str(xml)]["_index"] == f"{prefix}-events-2016.05"
    assert by_file[str(xml)]["_source"]["@timestamp"].startswith("2016-05-31T23:59:59.9")
    assert by_file[str(lone)]["_index"] == f"{prefix}-events-2019.07"
    # the events around the bad record: either side of the month boundary
    mine = {
        h["_source"]["@timestamp"][:7]: h["_index"]
        for h in hits
        if h["_index"].endswith(("2016.05", "2016.06"))
    }
    assert mine.get("2016-06") == f"{prefix}-events-2016.06"

    sysmon = Counter(
        int(h["_source"]["event"]["code"]) for h in hits if h["_source"]["event"]["kind"] == "event"
    )
    expected_ids: Counter[int] = Counter()
    for entry in evtx_manifest():
        expected_ids.update(entry.sysmon_eid_counts)
    expected_ids[1] += 2  # the two events of errors.xml
    # the shared EVTX data holds a few repeated records (the same file in two folders): one
    # document each, so at most the manifest counts, and every event ID present
    assert set(sysmon) == set(expected_ids)
    assert all(sysmon[k] <= v for k, v in expected_ids.items())
    assert (
        summary["shipped"] + summary["duplicates"] == summary["documents"] == sum(expected_ids.values()) + 2
    )

"""``sysmon-ship ship --detect`` killed with SIGKILL at random moments — between writing events
and writing their alerts among them —, then shipped to the end: a scheduled ``sysmon-detect run``
afterwards completes the alert set exactly (the ids of a clean scheduled run on the same events,
one alert per rule and event)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from elasticsearch import Elasticsearch

from detectors.intel.loader import feed_from_location, load_feed
from detectors.loader import load_rules
from detectors.setup import setup_alerts
from detectors.stream.stage import stream_plan
from devtools.demo import load_sample_intel
from samples.day import DEFAULT_START
from shipper.es import ClusterSettings
from shipper.pipeline import iter_documents
from tests.shipping import EVENTS, acked, count, env_for, run, ship_args
from tests.stream_support import alerts, forget_alerts, scheduled_run, untimed

SEED = 20261207
DETECT = [sys.executable, "-c", "from detectors.cli import main; main()"]


def _list_many_destinations(es: Elasticsearch, prefix: str, day: Path, tmp_path: Path) -> None:
    """An intel feed listing every other destination IP of the day: alerts in most batches, so
    that kills fall between events acknowledged and their alerts written."""
    ips = sorted(
        {
            str(d["destination"]["ip"])
            for d in (i.doc for i in iter_documents([str(day)]))
            if (d.get("destination") or {}).get("ip")
        }
    )
    feed = tmp_path / "many-ips.txt"
    feed.write_text("\n".join(ips[::2]) + "\n")
    load_feed(
        es, feed_from_location(str(feed), name="many-ips"), prefix=prefix, cache_dir=str(tmp_path / "c")
    )


def test_sigkill_during_stream_detection_then_a_scheduled_run_completes_the_alerts(
    es: Elasticsearch, es_settings: ClusterSettings, ready: str, day: Path, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    setup_alerts(es, ready)
    load_sample_intel(es, ready, tmp_path / "intel", DEFAULT_START)
    _list_many_destinations(es, ready, day, tmp_path)
    supported = list(stream_plan([r for r in load_rules().rules if r.enabled]).supported)
    state = tmp_path / "state"
    args = [*ship_args(ready, state, str(day)), "--detect", "--bulk-docs", "200", "--in-flight", "2"]
    kills = 0
    for _ in range(5):
        before = acked(state)
        if before >= EVENTS:
            break
        proc = subprocess.Popen(
            args, env=env_for(es_settings.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        target = before + rng.randint(1, 6000)
        deadline = time.monotonic() + 240
        while acked(state) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is None:
            time.sleep(rng.random() * 0.3)
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
    assert kills >= 1, f"seed {SEED}: no round was killed"
    final = json.loads(run(args, es_settings.url).stdout)
    assert final["errors"] == 0 and count(es, ready) == EVENTS
    streamed = alerts(es, ready)

    # the schedule fills what the kills left out, and duplicates nothing
    cmd = [*DETECT, "run", "--no-hunt", "--ingest-delay", "0", "--prefix", ready, "--json"]
    out = run([*cmd, *(a for r in supported for a in ("--rule", r.id))], es_settings.url).stdout
    totals = json.loads(out.splitlines()[-1])["summary"]
    completed = alerts(es, ready)
    assert streamed.keys() <= completed.keys()
    assert totals["alerts"] == len(completed) - len(streamed)
    assert totals["duplicates"] == len(streamed)
    assert totals["alerts"] > 0, f"seed {SEED}: no kill fell between events and their alerts"
    per_event = Counter(
        (a["rule"]["id"], a["alert"]["source"]["index"], a["alert"]["source"]["id"])
        for a in completed.values()
    )
    assert max(per_event.values()) == 1  # one alert per rule and event
    print(f"{kills} kills: the stream wrote {len(streamed)} alerts, the schedule added {totals['alerts']}")

    # exactly what a clean scheduled run on the same events writes
    forget_alerts(es, ready)
    scheduled_run(es, ready, supported)
    clean = alerts(es, ready)
    assert completed.keys() == clean.keys() and clean
    for aid, doc in completed.items():
        assert untimed(doc) == untimed(clean[aid]), aid

"""``sysmon-ship ship --detect`` on the real node: the stream writes, for every rule it runs,
exactly the alerts the scheduled engine writes for the same events (same ids, same documents up
to the timing fields), and a scheduled run afterwards adds nothing."""

from __future__ import annotations

import json
from pathlib import Path

from elasticsearch import Elasticsearch

from detectors.loader import load_rules
from detectors.setup import setup_alerts
from detectors.stream.stage import stream_plan
from devtools.demo import load_sample_intel
from samples.day import DEFAULT_START
from shipper.es import ClusterSettings
from tests.shipping import generate_day, run, ship_args
from tests.stream_support import alerts, forget_alerts, scheduled_run, untimed

EVENTS = 6000


def test_stream_alerts_equal_the_scheduled_ones(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path
) -> None:
    day = generate_day(tmp_path / "day", EVENTS, seed=7)
    setup_alerts(es, prefix)
    load_sample_intel(es, prefix, tmp_path / "intel", DEFAULT_START)
    plan = stream_plan([r for r in load_rules().rules if r.enabled])
    assert {"intel-ip-connection", "intel-hash-executed"} <= {r.id for r in plan.supported}
    assert plan.unsupported["bad-hash-spread"] == "needs history"

    shipped = run([*ship_args(prefix, tmp_path / "state", str(day)), "--setup", "--detect"], es_settings.url)
    summary = json.loads(shipped.stdout)
    streamed = alerts(es, prefix)
    assert summary["detection"]["alerts"] == len(streamed) > 0
    assert summary["detection"]["degraded"] is None
    by_rule = {a["rule"]["id"] for a in streamed.values()}
    assert "intel-ip-connection" in by_rule  # the sample day's C2 connections

    # a scheduled run after the stream run adds nothing: every alert is a 409
    results = scheduled_run(es, prefix, list(plan.supported))
    assert sum(r.alerts for r in results) == 0
    assert sum(r.duplicates for r in results) == len(streamed)
    assert alerts(es, prefix).keys() == streamed.keys()

    # the scheduled engine alone, from scratch, writes the same alerts
    forget_alerts(es, prefix)
    scheduled_run(es, prefix, list(plan.supported))
    scheduled = alerts(es, prefix)
    assert scheduled.keys() == streamed.keys()
    for aid, doc in streamed.items():
        assert untimed(doc) == untimed(scheduled[aid]), aid
    with_chain = [d for d in streamed.values() if d.get("ancestry", {}).get("depth", 0) > 1]
    assert with_chain, "the sample day's alerts carry process ancestry"

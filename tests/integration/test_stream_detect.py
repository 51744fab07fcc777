"""``sysmon-ship ship --detect`` on the real node, on the generated day and on the shared real
data: the stream writes, for every rule it runs, exactly the alerts the scheduled engine writes
for the same events (same ids, same documents up to the timing fields), and a scheduled run
afterwards adds nothing."""

from __future__ import annotations

import json
from pathlib import Path

from elasticsearch import Elasticsearch

from detectors.intel.indices import setup_intel
from detectors.intel.loader import feed_from_location, load_feed
from detectors.loader import load_rules
from detectors.query import get_path
from detectors.setup import setup_alerts
from detectors.stream.build import rule_set
from detectors.stream.stage import stream_plan
from devtools.demo import load_sample_intel
from samples.day import DEFAULT_START
from shipper.es import ClusterSettings
from shipper.pipeline import expand_inputs, iter_documents
from tests.shared_data import shared_dir, sysmon_data
from tests.shipping import generate_day, run, ship_args
from tests.stream_support import alerts, assert_schedule_agrees

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

    with_chain = [d for d in streamed.values() if d.get("ancestry", {}).get("depth", 0) > 1]
    assert with_chain, "the sample day's alerts carry process ancestry"
    assert_schedule_agrees(es, prefix, list(plan.supported), streamed)


def test_stream_alerts_equal_the_scheduled_ones_on_the_shared_data(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path
) -> None:
    """Every rule the stream runs: the built-in ones and every SigmaHQ rule of the shared rules
    folder it supports, selected as ``sysmon-detect run`` selects them (the detectors'
    configuration given with ``--detect-config``)."""
    samples = str(sysmon_data() / "evtx-attack-samples")
    detect_config = tmp_path / "detect.yml"
    detect_config.write_text(
        f"sigma:\n  paths: [{json.dumps(str(shared_dir() / 'data' / 'sigma' / 'rules' / 'windows'))}]\n"
    )
    # intel from the data itself (nothing of it committed): every other process hash executed
    # and every other address connected to; upper-case hashes, as feeds publish them
    docs = [i.doc for i in iter_documents(expand_inputs([samples]))]
    hashes = sorted({str(get_path(d, "process.hash.sha256")) for d in docs if get_path(d, "event.code") == "1"
                     and get_path(d, "process.hash.sha256")})  # fmt: skip
    ips = sorted({str(get_path(d, "destination.ip")) for d in docs if get_path(d, "destination.ip")})
    feed = tmp_path / "shared-intel.txt"
    feed.write_text("\n".join([h.upper() for h in hashes[::2]] + ips[::2]) + "\n")
    setup_alerts(es, prefix)
    setup_intel(es, prefix)
    res = load_feed(
        es, feed_from_location(str(feed), name="shared"), prefix=prefix, cache_dir=str(tmp_path / "c")
    )
    assert res.status == "loaded", res
    warned: list[str] = []
    plan = stream_plan(rule_set((), True, str(detect_config), warned.append))  # as the shipper does
    assert warned == []
    sigma = [r for r in plan.supported if r.sigma is not None]
    assert len(sigma) > 1500, len(sigma)  # SigmaHQ's Windows rules, nearly all in the stream

    ship = [
        *ship_args(prefix, tmp_path / "state", samples),
        "--setup",
        "--detect",
        "--detect-config",
        str(detect_config),
    ]
    shipped = run(ship, es_settings.url)
    streamed = alerts(es, prefix)
    detection = json.loads(shipped.stdout)["detection"]
    assert detection["alerts"] == len(streamed) and detection["degraded"] is None
    assert detection["rules"] == len(plan.supported)
    rules = {a["rule"]["id"] for a in streamed.values()}
    assert {"intel-ip-connection", "intel-hash-executed"} <= rules, rules
    fired = {a["rule"]["id"] for a in streamed.values() if a["rule"].get("ruleset") == "sigma"}
    assert len(fired) > 50, len(fired)  # the attack samples set off many SigmaHQ rules
    assert_schedule_agrees(es, prefix, list(plan.supported), streamed)

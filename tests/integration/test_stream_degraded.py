"""Degraded stream detection on the real node: shipping goes on, the summary says why, and the
scheduled engine writes the alerts the stream could not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from detectors.intel.indices import feeds_index
from detectors.loader import load_rules
from detectors.model import Rule
from detectors.setup import alerts_index, setup_alerts
from detectors.stream.stage import stream_plan
from devtools.demo import load_sample_intel
from samples.day import DEFAULT_START
from shipper.es import ClusterSettings
from tests.shipping import count, generate_day, run, ship_args
from tests.stream_support import alerts, scheduled_run

EVENTS = 3000


@pytest.fixture
def loaded(es: Elasticsearch, prefix: str, tmp_path: Path) -> Path:
    """Templates, alert set-up and the sample intel in ``prefix``; the generated day's file."""
    setup_alerts(es, prefix)
    load_sample_intel(es, prefix, tmp_path / "intel", DEFAULT_START)
    return generate_day(tmp_path / "day", EVENTS, seed=7)


def _stream_rules() -> list[Rule]:
    return list(stream_plan([r for r in load_rules().rules if r.enabled]).supported)


def test_intel_that_cannot_be_loaded_degrades_and_the_schedule_covers(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, loaded: Path, tmp_path: Path
) -> None:
    es.indices.close(index=feeds_index(prefix))  # the manifests cannot be read
    proc = run([*ship_args(prefix, tmp_path / "state", str(loaded)), "--setup", "--detect"], es_settings.url)
    det = json.loads(proc.stdout)["detection"]
    assert count(es, prefix) == EVENTS  # shipping went on
    assert det["degraded"] and "intel" in det["degraded"]
    assert det["no_intel"] == EVENTS
    assert not [a for a in alerts(es, prefix).values() if a["rule"]["category"] == "intel_match"]
    es.indices.open(index=feeds_index(prefix), wait_for_active_shards="all")
    rules = [r for r in _stream_rules() if r.type == "intel_match"]
    results = scheduled_run(es, prefix, rules)
    assert sum(r.alerts for r in results) > 0  # the window the stream missed


def test_alerts_that_cannot_be_written_degrade_and_the_schedule_covers(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, loaded: Path, tmp_path: Path
) -> None:
    month = alerts_index(prefix, f"{DEFAULT_START:%Y.%m}")  # the sample day's alerts go there
    es.indices.create(index=month, settings={"index.blocks.write": True})
    proc = run([*ship_args(prefix, tmp_path / "state", str(loaded)), "--setup", "--detect"], es_settings.url)
    summary = json.loads(proc.stdout)
    det = summary["detection"]
    assert count(es, prefix) == EVENTS and summary["errors"] == 0
    assert det["alerts"] == 0 and det["failed"] > 0
    assert "writing" in det["degraded"] and "failed" in det["degraded"]
    es.indices.put_settings(index=month, settings={"index.blocks.write": False})
    results = scheduled_run(es, prefix, _stream_rules())
    assert sum(r.alerts for r in results) == det["failed"]
    assert len(alerts(es, prefix)) == det["failed"]

"""The "Sysmon alerts" dashboard shows Sigma alerts with the others: a Sigma rule and a rule of
our own run on the real node over the same event, then every panel of the dashboard runs as
Kibana would run it (``tests/kibana_queries.py``) and finds the Sigma alert: the open-alerts
table lists it with its columns, and each Lens panel has a row with its rule, severity and host."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch
from sigma.collection import SigmaCollection

from detectors.kibana.objects import load_objects, with_prefix
from detectors.loader import parse_rule
from detectors.query import get_path
from detectors.sigma.rules import convert
from shipper.raw import SYSMON_CHANNEL, SYSMON_PROVIDER, RawEvent
from shipper.sysmon.ecs import to_ecs
from tests.integration.test_detect_support import alerts, index_docs, make_engine, ts_ago
from tests.kibana_queries import dashboard_panels, lens_layers, lens_request, lens_rows, search_request

SIGMA = """title: Sigma evil binary
id: 0b3f6e9a-5c1d-4e2f-8a7b-000000000006
status: test
level: high
tags: [attack.execution, attack.t1204.002]
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\\\\evil.exe'}
  condition: sel
"""
OURS = """id: custom-evil-check
name: Custom evil check
description: The same binary, by a rule of our own.
severity: low
risk_score: 21
type: query
interval: 5m
threat:
  - tactic: {id: TA0002, name: Execution}
    techniques: [{id: T1204, name: User Execution}]
filter:
  event_codes: [1]
  lucene: 'process.executable.caseless:*\\\\evil.exe'
"""


def _event() -> dict[str, Any]:
    raw = RawEvent(
        provider=SYSMON_PROVIDER,
        event_id=1,
        event_data={
            "UtcTime": ts_ago(0, -30).replace("T", " ").rstrip("Z"),
            "Image": "C:\\Users\\bob\\Downloads\\evil.exe",
            "CommandLine": "evil.exe",
        },
        record_id=1,
        computer="WKS-KIBANA.corp.example",
        channel=SYSMON_CHANNEL,
    )
    return to_ecs(raw)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _row_shows(row: dict[str, Any], columns: dict[str, dict[str, Any]], alert: dict[str, Any]) -> bool:
    """Whether a Lens row is the alert's: every terms column holds the alert's value there."""
    for cid, col in columns.items():
        if col.get("operationType") == "terms" and row.get(cid) != get_path(alert, col["sourceField"]):
            return False
    return True


def test_alerts_dashboard_shows_sigma_alerts(es: Elasticsearch, prefix: str) -> None:
    (c,) = convert(SigmaCollection.from_yaml(SIGMA))
    assert c.rule is not None
    ours = parse_rule(OURS, "custom.yml")
    index_docs(es, prefix, [_event()])
    results = make_engine(es, prefix, [c.rule, ours]).run(only_due=False)
    assert [(r.status, r.alerts) for r in results] == [("ok", 1), ("ok", 1)]
    es.indices.refresh(index=f"{prefix}-alerts-*")
    (sigma,) = alerts(es, prefix, c.rule.id)
    assert sigma["rule"]["ruleset"] == "sigma" and sigma["alert"]["severity"] == "high"

    objects = with_prefix(load_objects(), prefix)
    by_key = objects.by_key()
    [dashboard] = [o for o in objects.all() if o["type"] == "dashboard" and "alerts" in str(o["id"])]
    now = datetime.now(UTC)
    span = (_iso(now - timedelta(hours=1)), _iso(now + timedelta(hours=1)))
    refs = {r["name"]: r for r in dashboard["references"]}
    seen = []
    for panel in dashboard_panels(dashboard):
        ref = refs[f"{panel['panelIndex']}:{panel['panelRefName']}"]
        obj = by_key[(ref["type"], ref["id"])]
        if obj["type"] == "search":
            req = search_request(objects, obj, time_range=span)
            hits = es.search(index=req.index, query=req.query, sort=req.sort, size=100)["hits"]["hits"]
            if str(obj["id"]).endswith("log-integrity-alerts"):  # the one panel of other alerts
                assert sigma["_id"] not in [h["_id"] for h in hits]
                seen.append(obj["id"])
                continue
            [row] = [h["_source"] for h in hits if h["_id"] == sigma["_id"]]
            names = sorted(get_path(h["_source"], "rule.name") for h in hits)
            assert names == ["Custom evil check", "Sigma evil binary"]  # with the other rule's alert
            for col in ("rule.name", "alert.severity", "host.name", "process.executable", "alert.id"):
                assert get_path(row, col), col
        else:
            for layer_id in lens_layers(obj):
                lreq = lens_request(objects, obj, layer_id, time_range=span)
                resp = es.search(index=lreq.index, query=lreq.query, aggs=lreq.aggs, size=0)
                rows = lens_rows(lreq, resp.body)
                mine = [r for r in rows if _row_shows(r, lreq.columns, sigma) and r[lreq.metrics[0]] > 0]
                assert mine, (obj["id"], rows)
                assert len([r for r in rows if r[lreq.metrics[0]] > 0]) == 2, (obj["id"], rows)  # and ours
        seen.append(obj["id"])
    assert len(seen) == 5, seen

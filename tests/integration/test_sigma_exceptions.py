"""Exceptions for Sigma rules from the detectors' configuration file, on the real node: an event
that matches a Sigma rule but is on an allowlist, or has an excepted value, gives no alert; the
others still do. Run through ``sysmon-detect run --config`` as a user would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from elasticsearch import Elasticsearch

from detectors.cli import main
from detectors.intel.indices import setup_intel
from detectors.intel.loader import feed_from_location, load_feed
from shipper.es import ClusterSettings
from shipper.raw import SYSMON_CHANNEL, SYSMON_PROVIDER, RawEvent
from shipper.sysmon.ecs import to_ecs
from tests.integration.test_detect_support import alerts, cli_env, index_docs, ts_ago

SIGMA_ID = "7d0c1a52-5a4e-4c1e-9b1e-000000000012"
RULE = f"""title: Evil binary started
id: {SIGMA_ID}
status: test
level: high
tags: [attack.execution, attack.t1204.002]
logsource: {{product: windows, category: process_creation}}
detection:
  sel: {{Image|endswith: '\\\\evil.exe'}}
  condition: sel
"""
ALLOWED = "ab" * 32


def _event(record: int, host: str, sha256: str) -> dict[str, Any]:
    raw = RawEvent(
        provider=SYSMON_PROVIDER,
        event_id=1,
        event_data={
            "UtcTime": ts_ago(0, -30).replace("T", " ").rstrip("Z"),
            "Image": "C:\\Users\\bob\\Downloads\\Evil.exe",
            "CommandLine": "evil.exe",
            "Hashes": f"SHA256={sha256}",
        },
        record_id=record,
        computer=host,
        channel=SYSMON_CHANNEL,
    )
    return to_ecs(raw)


CONFIG = """sigma:
  paths: [sigma]
  exceptions:
    - rules: {tags: [attack.t1204.002], levels: [high]}
      values:
        - field: host.name
          values: [BUILD01.corp.example]
    - rules: all
      allowlists:
        - fields: [process.hash.sha256]
          feeds: [corp]
    - rules: {ids: [00000000-0000-4000-8000-000000000000]}   # another rule: not this one
      values:
        - field: host.name
          values: [WKS01.corp.example]
"""


def test_allowlist_and_value_exceptions_keep_sigma_alerts_out(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path
) -> None:
    (tmp_path / "sigma").mkdir()
    (tmp_path / "sigma" / "evil.yml").write_text(RULE)
    cfg = tmp_path / "detect.yml"
    cfg.write_text(CONFIG)
    setup_intel(es, prefix)
    feed = tmp_path / "corp.txt"
    feed.write_text(f"{ALLOWED}\n")
    res = load_feed(
        es, feed_from_location(str(feed), name="corp", kind="allow"), prefix=prefix, cache_dir=tmp_path / "c"
    )
    assert res.status == "loaded"
    es.indices.refresh(index=f"{prefix}-intel-*")
    index_docs(
        es,
        prefix,
        [
            _event(1, "WKS01.corp.example", "cd" * 32),  # alerts: the third exception is another rule's
            _event(2, "BUILD01.corp.example", "cd" * 32),  # a value exception
            _event(3, "WKS02.corp.example", ALLOWED.upper()),  # on the allowlist
        ],
    )
    env = cli_env(es_settings, prefix) | {"SYSMON_SIGMA_PATHS": ""}
    args = ["run", "--no-builtin", "--config", str(cfg), "--all", "--ingest-delay", "0", "--json"]
    r = CliRunner().invoke(main, args, env=env)
    assert r.exit_code == 0, r.output
    (line, _summary) = [json.loads(x) for x in r.stdout.splitlines()]
    assert (line["hits"], line["alerts"]) == (1, 1), line
    got = alerts(es, prefix)
    assert [(a["host"]["name"], a["rule"]["ruleset"], a["rule"]["uuid"]) for a in got] == [
        ("WKS01.corp.example", "sigma", SIGMA_ID)
    ]

    # without the exceptions all three match the rule's query
    query = {"query_string": {"query": "process.executable.caseless:*\\\\evil.exe"}}
    count = es.count(index=f"{prefix}-events-*", query=query)["count"]
    assert count == 3

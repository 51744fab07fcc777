"""The seed's demo (``devtools/stream_demo.py``, part of ``make demo``) on the real node: an IP
list served over loopback HTTP is downloaded, a connection to one of its IPs is appended to a
watched NXLog file, and its alert becomes searchable with process, user, host and ancestry."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from detectors.intel.indices import setup_intel
from detectors.intel.loader import feed_from_location, load_feed
from detectors.setup import setup_alerts
from devtools import stream_demo
from shipper.es import ClusterSettings
from tests.shipping import env_for, wait_for
from tests.stream_support import alerts


def test_watch_detect_alerts_on_a_downloaded_ip_list(
    es: Elasticsearch,
    es_settings: ClusterSettings,
    prefix: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = env_for(es_settings.url)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path.cwd()), env.get("PYTHONPATH")]))
    res = stream_demo.run_stream_demo(env, es, prefix, tmp_path)
    stream_demo.show(res)
    print(f"stream demo latency: {res.latency * 1000:.0f} ms")  # measured, not asserted
    a = res.alert
    assert a["rule"]["id"] == "intel-ip-connection"
    assert a["destination"]["ip"] == stream_demo.C2_IPS[0]
    assert a["threat"]["feed"]["name"] == "demo-c2"
    assert a["host"]["name"].lower().startswith("ws-demo")
    assert a["user"]["name"] == "alice"
    assert a["process"]["executable"].endswith("powershell.exe")
    anc = a["ancestry"]
    chain = [link["entity_id"].lower() for link in anc["chain"]]
    assert chain == [stream_demo.CHILD.lower(), stream_demo.PARENT.lower()]  # powershell ← explorer
    assert anc["broken"] is True  # explorer's own parent was never logged: the chain says so
    assert "alerts=1 " in res.summary
    out = capsys.readouterr().out
    assert "ms after the connection was appended" in out


def test_watch_detect_picks_up_a_feed_loaded_while_it_runs(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path
) -> None:
    """No intel at start: nothing alerts; a feed loaded meanwhile is in memory at the next poll
    of the manifests (``detect.intel_poll``), and the next connection to its IP alerts."""
    env = env_for(es_settings.url)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path.cwd()), env.get("PYTHONPATH")]))
    setup_alerts(es, prefix)
    setup_intel(es, prefix)
    conf = tmp_path / "ship.yml"
    conf.write_text("detect:\n  enabled: true\n  intel_poll: 0.2\n")
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "sysmon.ndjson"
    log.write_bytes(stream_demo.attack_lines(1, stream_demo.C2_IPS[1]))  # not listed yet
    watch = [*stream_demo.SHIP, "watch", str(logs), "--config", str(conf), "--setup",
             "--index-prefix", prefix, "--state-dir", str(tmp_path / "state"), "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(watch, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: stream_demo.events_count(es, prefix) == 2)
        feed = tmp_path / "c2.txt"
        feed.write_text(stream_demo.C2_IPS[1] + "\n")
        load_feed(
            es, feed_from_location(str(feed), name="late-c2"), prefix=prefix, cache_dir=str(tmp_path / "c")
        )
        # connections go on; from the poll that swaps the new list in, every one alerts
        record = 3
        while not alerts(es, prefix) and record < 400:
            with log.open("ab") as fp:
                fp.write(stream_demo.attack_lines(record, stream_demo.C2_IPS[1]))
            record += 2
            wait_for(lambda n=record - 1: stream_demo.events_count(es, prefix) == n)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    alerted = sorted(a["winlog"]["record_id"] for a in alerts(es, prefix).values())
    assert alerted, err
    assert 2 not in alerted  # the connection before the feed was loaded
    assert alerted == list(range(alerted[0], record, 2))  # every connection once it was in memory
    assert f"alerts={len(alerted)} " in err

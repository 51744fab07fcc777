"""The seed's demo (``devtools/stream_demo.py``, part of ``make demo``) on the real node: an IP
list served over loopback HTTP is downloaded, a connection to one of its IPs is appended to a
watched NXLog file, and its alert becomes searchable with process, user, host and ancestry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from devtools import stream_demo
from shipper.es import ClusterSettings
from tests.shipping import env_for


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

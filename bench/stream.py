"""Stream detection benchmark: what ``sysmon-ship ship|watch --detect`` costs and how fast its
alerts are searchable, measured side by side in one run (figures and ratios, no thresholds).

Setup: ``--indicators`` IPs (default 100,000; the issue's figure is 1,000,000, about 150 s to load)
are served by a loopback HTTP server and loaded with ``sysmon-detect intel load --url``, the
normal path. ``--sigma`` also loads every applicable shared SigmaHQ Windows rule into the stage
through a detectors configuration file (each shipper then spends its start-up converting and
compiling them).

1. **Latency.** ``sysmon-ship watch --detect`` (its defaults) follows a folder with one NXLog
   file. Records are appended at ``--rate`` events/s (default 1,000) for ``--seconds`` (default
   30): process starts, DNS queries and connections to unlisted addresses, and a ``--hit-share``
   of connections to listed IPs, each a distinct IP and so a distinct expected alert. A poller
   searches the alerts index every ``--poll`` s (0.03) and records when each alert appears:
   p50/p95/p99 from the append to the alert being searchable. Then the same number of records is
   appended as fast as Python writes them (the shipper's full rate: the backlog is part of the
   latency), with the time the shipper took to index them all.
2. **Throughput.** One file of ``--events`` events (default 100,000; a generated sample day,
   NXLog form, every event type) shipped with ``sysmon-ship ship``, detection off and on
   alternated (off, on, off, on; ``--rounds``) into freshly deleted indices, after one uncounted
   warm-up run: wall time of the whole command (start-up, intel load and rule compilation
   included), events/s, the ratio of the medians on/off; and the shipping rate once detection
   is ready (the summary's ``elapsed``: from the shipper's start, after the one-time intel load
   and rule compilation, to its end), which is what a long-running ``watch`` pays; the start-up
   is the difference.
3. **Memory.** Peak RSS of each shipper process (``wait4`` rusage of the child), on against off;
   and of the watcher.

Uses ``ES_URL`` when set, else starts a local node (``devtools.es``, name ``bench-stream``) and
stops it afterwards. ``python bench/stream.py [--events 100000] [--indicators 100000] [--sigma]``;
a quick check: ``--events 20000 --seconds 10 --indicators 10000``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# bench/sigma.py is named like pySigma's package: this folder must not come first
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from devtools import es as devnode  # noqa: E402
from devtools.stream_demo import (  # noqa: E402
    DETECT,
    HOST,
    PARENT,
    SHIP,
    _run,
    _wait,
    events_count,
    nxlog_line,
    serve_list,
)
from shipper.es import ClusterSettings, make_client  # noqa: E402

PREFIX = "bench-stream"
SIGMA_DIR = REPO.parent / "shared" / "data" / "sigma" / "rules" / "windows"
RULE = "intel-ip-connection"


def listed_ip(i: int) -> str:
    return str(ipaddress.IPv4Address(0x0B000000 + i * 7))


def _conn(record: int, ip: str, port: int) -> bytes:
    return nxlog_line(3, record, datetime.now(UTC), {
        "ProcessGuid": PARENT, "ProcessId": "3100", "Image": "C:\\Windows\\explorer.exe",
        "User": "CORP\\alice", "Protocol": "tcp", "Initiated": "true", "SourceIsIpv6": "false",
        "SourceIp": "10.20.0.77", "SourceHostname": HOST, "SourcePort": str(port),
        "SourcePortName": "-", "DestinationIsIpv6": "false", "DestinationIp": ip,
        "DestinationHostname": "-", "DestinationPort": "443", "DestinationPortName": "https",
    })  # fmt: skip


def _filler(record: int) -> bytes:
    """An event that raises no alert: a process start, a DNS query or an unlisted connection."""
    kind, now = record % 3, datetime.now(UTC)
    guid = f"{{7d3c1a00-0000-4000-9000-{record:012d}}}"
    if kind == 0:
        return nxlog_line(1, record, now, {
            "ProcessGuid": guid, "ProcessId": str(5000 + record % 60000),
            "Image": "C:\\Windows\\System32\\svchost.exe", "CommandLine": f"svchost.exe -k net{record}",
            "CurrentDirectory": "C:\\Windows\\system32\\", "User": "NT AUTHORITY\\SYSTEM",
            "LogonGuid": "{7d3c1a00-0000-4000-8000-0000000000e7}", "LogonId": "0x3e7",
            "TerminalSessionId": "0", "IntegrityLevel": "System", "Hashes": "SHA256=" + "EF" * 32,
            "ParentProcessGuid": PARENT, "ParentProcessId": "3100",
            # svchost's own parent: under explorer.exe two SigmaHQ rules fire on every start
            "ParentImage": "C:\\Windows\\System32\\services.exe",
            "ParentCommandLine": "C:\\Windows\\system32\\services.exe", "ParentUser": "NT AUTHORITY\\SYSTEM",
        })  # fmt: skip
    if kind == 1:
        return nxlog_line(22, record, now, {
            "ProcessGuid": PARENT, "ProcessId": "3100", "QueryName": f"host{record % 997}.corp.example",
            "QueryStatus": "0", "QueryResults": "10.20.0.10;", "Image": "C:\\Windows\\explorer.exe",
            "User": "CORP\\alice",
        })  # fmt: skip
    return _conn(record, f"10.21.{record % 250}.{record % 200 + 1}", 40000 + record % 20000)


class Feed:
    """Appends records to the watched file and remembers when each expected alert's record went in."""

    def __init__(self, path: Path, record: int, hit_share: float) -> None:
        self.path, self.record, self.every = path, record, max(1, round(1 / hit_share))
        self.next_hit = 0
        self.appended: dict[str, float] = {}  # listed IP -> monotonic time of its append

    def write(self, n: int) -> None:
        parts, hits = [], []
        for _ in range(n):
            self.record += 1
            if self.record % self.every == 0:
                ip = listed_ip(self.next_hit)
                self.next_hit += 1
                hits.append(ip)
                parts.append(_conn(self.record, ip, 50000 + self.record % 10000))
            else:
                parts.append(_filler(self.record))
        with self.path.open("ab") as fp:
            fp.write(b"".join(parts))
            fp.flush()
            now = time.monotonic()
        for ip in hits:
            self.appended[ip] = now


def _poll(client: Any, feed: Feed, seen: dict[str, float], stop: threading.Event, every: float) -> None:
    """Search the alerts for the IPs appended and not yet seen; note when each first appears."""
    c = client.options(ignore_status=(404, 503), max_retries=0)
    while not stop.is_set():
        pending = [ip for ip in list(feed.appended) if ip not in seen]
        if pending:
            resp = c.search(
                index=f"{PREFIX}-alerts-*", size=len(pending), _source=["destination.ip"],
                query={"bool": {"filter": [{"term": {"rule.id": RULE}},
                                           {"terms": {"destination.ip": pending}}]}},
                ignore_unavailable=True, allow_no_indices=True,
            )  # fmt: skip
            now = time.monotonic()
            for hit in resp.get("hits", {}).get("hits", []):
                seen.setdefault(hit["_source"]["destination"]["ip"], now)
        stop.wait(every)


def _phase(client: Any, feed: Feed, total: int, rate: float | None, poll: float) -> dict[str, Any]:
    """Append ``total`` records at ``rate`` per second (None: as fast as possible); wait for the
    alerts and the events. Latencies in seconds, the append and drain times."""
    seen: dict[str, float] = {}
    stop = threading.Event()
    before = set(feed.appended)
    target = events_count(client, PREFIX) + total
    poller = threading.Thread(target=_poll, args=(client, feed, seen, stop, poll), daemon=True)
    poller.start()
    t0 = time.monotonic()
    step = max(1, int((rate or 0) / 50)) if rate else 2000  # 50 appends a second at the set rate
    done = 0
    while done < total:
        n = min(step, total - done)
        feed.write(n)
        done += n
        if rate:
            time.sleep(max(0.0, t0 + done / rate - time.monotonic()))
    appended = time.monotonic() - t0
    expected = [ip for ip in feed.appended if ip not in before]
    try:
        _wait(lambda: all(ip in seen for ip in expected), 600, "every expected alert")
        _wait(lambda: events_count(client, PREFIX) >= target, 600, "every event indexed")
    finally:
        stop.set()
        poller.join()
    return {
        "latencies": [seen[ip] - feed.appended[ip] for ip in expected],
        "append_s": appended, "drain_s": time.monotonic() - t0, "events": total,
    }  # fmt: skip


def _wait_rss(proc: subprocess.Popen[Any]) -> int:
    """Reap ``proc``; its peak RSS in bytes (Linux: ru_maxrss in KiB)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return int(usage.ru_maxrss) * 1024


def latency(env: dict[str, str], client: Any, work: Path, detect: list[str], args: Any) -> dict[str, Any]:
    logs = work / "logs"
    logs.mkdir(parents=True)
    log = logs / "sysmon.ndjson"
    log.write_bytes(_filler(1) + _filler(2) + _filler(3))  # maps the fields before timing
    watch = [*SHIP, "watch", str(logs), *detect, "--index-prefix", PREFIX, "--state-dir",
             str(work / "watch-state"), "--no-progress", "--no-setup"]  # fmt: skip
    proc = subprocess.Popen(watch, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: events_count(client, PREFIX) >= 3, 300, "the watcher shipping the first events")
        feed = Feed(log, 3, args.hit_share)
        total = int(args.rate * args.seconds)
        paced = _phase(client, feed, total, args.rate, args.poll)
        full = _phase(client, feed, total, None, args.poll)
    finally:
        proc.send_signal(signal.SIGTERM)
        rss = _wait_rss(proc)
        err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode not in (0, -signal.SIGTERM):
        raise SystemExit(f"stream bench: the watcher failed ({proc.returncode}):\n{err}")
    return {"paced": paced, "full": full, "rss": rss}


def _fresh(client: Any) -> None:
    """Delete the events and alerts indices (by name: wildcard deletes may be refused)."""
    for pattern in (f"{PREFIX}-events-*", f"{PREFIX}-alerts-*"):
        names = list(client.indices.get(index=pattern, allow_no_indices=True, expand_wildcards="all"))
        if names:
            client.indices.delete(index=",".join(names))


def ship_once(
    env: dict[str, str], client: Any, source: Path, state: Path, detect: list[str]
) -> dict[str, float]:
    _fresh(client)
    cmd = [*SHIP, "ship", str(source), *detect, "--index-prefix", PREFIX, "--state-dir", str(state),
           "--no-progress", "--no-setup", "--json"]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = proc.stderr.read() if proc.stderr else ""
    out = proc.stdout.read() if proc.stdout else ""  # one JSON line: it fits the pipe meanwhile
    rss = _wait_rss(proc)
    took = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"stream bench: `{' '.join(cmd[3:])}` failed ({proc.returncode}):\n{err}")
    shipping = float(json.loads(out.strip().splitlines()[-1])["elapsed"])
    return {"s": took, "ship_s": shipping, "rss": float(rss), "events": float(events_count(client, PREFIX))}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def report_latency(res: dict[str, Any], rate: float, how: str = "its defaults") -> None:
    print(f"latency, append -> alert searchable (watch --detect, {how}):")
    for name, label in (("paced", f"at {rate:,.0f} events/s"), ("full", "as fast as appended")):
        ph = res[name]
        lat = [v * 1000 for v in ph["latencies"]]
        print(
            f"  {label:24} alerts {len(lat):5}  p50 {_pct(lat, 0.5):7.0f} ms  p95 {_pct(lat, 0.95):7.0f} ms"
            f"  p99 {_pct(lat, 0.99):7.0f} ms  max {max(lat, default=0):7.0f} ms"
        )
        print(
            f"  {'':24} {ph['events']:,} events appended in {ph['append_s']:.2f} s, all indexed after"
            f" {ph['drain_s']:.2f} s ({ph['events'] / ph['drain_s']:,.0f} events/s)"
        )
    print(f"  watcher peak RSS {res['rss'] / (1 << 20):.0f} MB")


def report_throughput(runs: list[tuple[str, dict[str, float]]], events: int) -> None:
    print(f"throughput, `sysmon-ship ship` of {events:,} events (wall time of the command; once ready):")
    for side, r in runs:
        print(
            f"  {side:4} {r['s']:7.2f} s  {r['events'] / r['s']:9,.0f} events/s"
            f"  peak RSS {r['rss'] / (1 << 20):6.0f} MB   shipping {r['ship_s']:7.2f} s"
            f"  {r['events'] / r['ship_s']:9,.0f} events/s  start-up {r['s'] - r['ship_s']:5.2f} s"
        )

    def median(key: str) -> dict[str, float]:
        return {s: statistics.median(r["events"] / r[key] for x, r in runs if x == s) for s in ("off", "on")}

    med, ready = median("s"), median("ship_s")
    rss = {s: max(r["rss"] for side, r in runs if side == s) for s in ("off", "on")}
    print(
        f"  median events/s: off {med['off']:,.0f}  on {med['on']:,.0f}"
        f"  ratio on/off {med['on'] / med['off']:.2f}  (whole command)"
    )
    print(
        f"  median events/s once ready: off {ready['off']:,.0f}  on {ready['on']:,.0f}"
        f"  ratio on/off {ready['on'] / ready['off']:.2f}  (intel load and rule compilation excluded)"
    )
    mb = 1 << 20
    print(
        f"  peak RSS: off {rss['off'] / mb:.0f} MB  on {rss['on'] / mb:.0f} MB"
        f"  (+{(rss['on'] - rss['off']) / mb:.0f} MB, ratio {rss['on'] / rss['off']:.2f})"
    )


def setup(env: dict[str, str], work: Path, args: Any) -> list[str]:
    """Templates, detector indices, the IP list; the ``--detect`` arguments of every run."""
    _run([*SHIP, "setup", "--index-prefix", PREFIX], env)
    _run([*DETECT, "setup", "--prefix", PREFIX], env)
    body = "".join(f"{listed_ip(i)}\n" for i in range(args.indicators)).encode()
    t0 = time.monotonic()
    with serve_list(b"# bench C2 list\n" + body) as url:
        _run([*DETECT, "intel", "load", "--url", url, "--name", "bench-c2", "--no-hunt",
              "--cache-dir", str(work / "cache"), "--prefix", PREFIX], env)  # fmt: skip
    print(
        f"stream bench: {args.indicators:,} IPs loaded with `intel load --url`"
        f" in {time.monotonic() - t0:.1f} s"
    )
    detect = ["--detect"]
    if args.sigma:
        cfg = work / "detect.yml"
        cfg.write_text(f"sigma:\n  paths: [{SIGMA_DIR}]\n", encoding="utf-8")
        detect += ["--detect-config", str(cfg)]
        print(f"stream bench: every applicable SigmaHQ rule of {SIGMA_DIR} loaded")
    return detect


def sample_file(env: dict[str, str], work: Path, events: int) -> Path:
    out = work / "day"
    cmd = [sys.executable, "-m", "samples", "generate", "--out", str(out), "--events", str(events)]
    subprocess.run(
        [*cmd, "--seed", "7", "--forms", "nxlog"], check=True, capture_output=True, cwd=REPO, env=env
    )
    return out / "nxlog.ndjson"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--rate", type=float, default=1000.0, help="events/s appended (default 1,000)")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the paced phase (default 30)")
    ap.add_argument("--hit-share", type=float, default=0.01, help="share of connections to listed IPs")
    ap.add_argument("--poll", type=float, default=0.03, help="seconds between alert searches")
    ap.add_argument("--events", type=int, default=100_000, help="events in the shipped file")
    ap.add_argument("--rounds", type=int, default=2, help="off/on pairs (default 2)")
    ap.add_argument("--indicators", type=int, default=100_000, help="listed IPs (issue: 1,000,000)")
    ap.add_argument("--sigma", action="store_true", help="also every applicable SigmaHQ rule")
    ap.add_argument(
        "--flush-intervals", default=None, help="latency at these flush and poll intervals (e.g. 0.1,1)"
    )
    args = ap.parse_args()
    with devnode.cluster_env(PREFIX) as env, tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))}
        work = Path(tmp)
        settings = ClusterSettings.from_env(env)
        client = make_client(ClusterSettings(**{**settings.__dict__, "request_timeout": 600.0}))
        detect = setup(env, work, args)
        source = sample_file(env, work, args.events)
        if args.flush_intervals:  # the same run for each interval, side by side
            for v in (float(x) for x in args.flush_intervals.split(",")):
                _fresh(client)
                timing = ["--flush-interval", str(v), "--poll-interval", str(v)]
                res = latency(env, client, work / f"flush-{v}", [*detect, *timing], args)
                report_latency(res, args.rate, " ".join(timing))
        else:
            report_latency(latency(env, client, work, detect, args), args.rate)
        # a first run warms the node and the page cache: printed, not counted
        warm = ship_once(env, client, source, work / "state-warm", [])
        print(f"throughput warm-up (off, not counted): {warm['events'] / warm['s']:,.0f} events/s")
        runs = []
        for i in range(args.rounds * 2):
            side = ("off", "on")[i % 2]
            state = work / f"state-{i}"
            runs.append((side, ship_once(env, client, source, state, detect if side == "on" else [])))
        report_throughput(runs, args.events)


if __name__ == "__main__":
    main()

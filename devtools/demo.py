"""``make demo``: the main job end to end on a fresh clone.

Starts the local Elasticsearch node (unless ``ES_URL`` points at a cluster), installs the
templates, generates the project's own sample Sysmon day (``samples``, fixed seed) into a
temporary folder, ships it with ``sysmon-ship``, and prints what is now searchable: events per
event ID, hosts, and the "stats count by Image, Hashes" view (top process images by SHA256).

Environment: ``ES_URL`` (and ``ES_API_KEY`` / ``ES_USERNAME`` + ``ES_PASSWORD``, ``ES_CA_CERTS``)
for your own cluster; ``DEMO_EVENTS`` (default 20000), ``DEMO_SEED`` (default 7),
``SYSMON_INDEX_PREFIX`` (default ``sysmon``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from devtools import es as devnode
from shipper.es import ClusterSettings, check_cluster, make_client


def _run(cmd: list[str], env: dict[str, str]) -> None:
    print("$", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, env=env, check=False)
    if proc.returncode not in (0,):
        raise SystemExit(f"demo: `{' '.join(cmd)}` failed with exit status {proc.returncode}")


def _table(title: str, rows: Sequence[tuple[str, ...]], headers: tuple[str, ...]) -> None:
    print(f"\n{title}")
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def show(client: Any, prefix: str) -> None:
    alias = f"{prefix}-events"
    client.indices.refresh(index=alias)
    total = client.count(index=alias)["count"]
    print(f"\n{total} documents searchable in {alias} (indices {prefix}-events-YYYY.MM)")
    resp = client.search(
        index=alias,
        size=0,
        aggs={
            "ids": {"terms": {"field": "event.code", "size": 50}},
            "hosts": {"terms": {"field": "host.name", "size": 20}},
        },
    )
    ids = sorted(
        ((b["key"], b["doc_count"]) for b in resp["aggregations"]["ids"]["buckets"]), key=lambda x: int(x[0])
    )
    _table("events per event ID", [(k, str(v)) for k, v in ids], ("event.code", "count"))
    hosts = [(str(b["key"]), str(b["doc_count"])) for b in resp["aggregations"]["hosts"]["buckets"]]
    _table("hosts", hosts, ("host.name", "count"))
    # stats count by Image, Hashes: a composite aggregation over every (image, sha256) pair
    pairs: list[tuple[int, str, str]] = []
    after: dict[str, Any] | None = None
    while True:
        comp: dict[str, Any] = {
            "size": 1000,
            "sources": [
                {"image": {"terms": {"field": "process.executable"}}},
                {"sha256": {"terms": {"field": "process.hash.sha256"}}},
            ],
        }
        if after:
            comp["after"] = after
        r = client.search(
            index=alias,
            size=0,
            query={"term": {"event.code": "1"}},
            aggs={"pairs": {"composite": comp}},
        )
        agg = r["aggregations"]["pairs"]
        for b in agg["buckets"]:
            pairs.append((b["doc_count"], b["key"]["image"], b["key"]["sha256"]))
        after = agg.get("after_key")
        if not after or not agg["buckets"]:
            break
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    _table(
        f"top process images by SHA256 (event 1; {len(pairs)} distinct pairs)",
        [(str(c), img, sha) for c, img, sha in pairs[:15]],
        ("count", "process.executable", "process.hash.sha256"),
    )


def _connect() -> tuple[dict[str, str], Any] | None:
    """The cluster to demo on: ``ES_URL`` when set, else the local node ``demo`` (left running so
    the data can be explored afterwards)."""
    env = dict(os.environ)
    if not env.get("ES_URL"):
        try:
            info = devnode.start(name="demo")
        except devnode.NodeError as exc:
            print(f"demo: could not start the local node: {exc}", file=sys.stderr)
            return None
        env.update(info.env())
        print(f"local Elasticsearch {info.version} at {info.url}")
        print("(stop it with: python -m devtools.es stop --name demo)")
    settings = ClusterSettings.from_env(env)
    client = make_client(settings)
    print(f"Elasticsearch {check_cluster(client, settings.url)} at {settings.url}")
    return env, client


def ship_day(env: dict[str, str], prefix: str, events: int, seed: str) -> None:
    """Install the templates, generate the sample day and ship it with the real CLI."""
    ship = [sys.executable, "-c", "from shipper.cli import main; main()"]
    _run([*ship, "setup", "--index-prefix", prefix], env)
    with tempfile.TemporaryDirectory(prefix="sysmon-demo-") as tmp:
        data = os.path.join(tmp, "day")
        _run(
            [sys.executable, "-m", "samples", "generate", "--out", data, "--events", str(events),
             "--seed", seed, "--forms", "winlogbeat"],
            env,
        )  # fmt: skip
        _run(
            [*ship, "ship", os.path.join(data, "winlogbeat.ndjson"), "--index-prefix", prefix,
             "--state-dir", os.path.join(tmp, "state")],
            env,
        )  # fmt: skip


def main() -> int:
    """Ship the sample day, show what is searchable, then run every detector on it."""
    connected = _connect()
    if connected is None:
        return 1
    env, client = connected
    prefix = os.environ.get("SYSMON_INDEX_PREFIX", "sysmon")
    ship_day(env, prefix, int(os.environ.get("DEMO_EVENTS", "20000")), os.environ.get("DEMO_SEED", "7"))
    show(client, prefix)
    detect(client, prefix)
    return 0


# ---------------------------------------------------------------------------------------------
# Detectors: load the sample intel feed and allowlists, run every rule once, and print the alerts
# an analyst looks at first.


def _alert_rows(client: Any, prefix: str) -> list[dict[str, Any]]:
    client.indices.refresh(index=f"{prefix}-alerts-*", ignore_unavailable=True, allow_no_indices=True)
    resp = client.search(
        index=f"{prefix}-alerts-*",
        size=200,
        sort=[{"event.risk_score": "desc"}, {"alert.original_time": "asc"}],
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    return [h["_source"] | {"_id": h["_id"]} for h in resp["hits"]["hits"]]


def load_sample_intel(client: Any, prefix: str, folder: Path, start: Any) -> list[str]:
    """The sample day's intel feeds and allowlists (``samples.truth``), loaded; a line each."""
    from detectors.intel.indices import setup_intel
    from detectors.intel.loader import feed_from_location, load_feed
    from samples.truth import write_intel

    setup_intel(client, prefix)
    lines: list[str] = []
    for f in sorted(write_intel(folder, start)):
        kind: Literal["intel", "allow"] = "allow" if f.name.startswith("allowlist") else "intel"
        res = load_feed(
            client,
            feed_from_location(str(f), name=f.stem, kind=kind),
            prefix=prefix,
            cache_dir=str(folder / "cache" / f.stem),
        )
        lines.append(f"intel: {kind:<5} {f.name:<22} {res.status}")
    return lines


def detect(client: Any, prefix: str) -> None:
    """Sample intel + allowlists → every built-in rule once → the alerts, worst first."""
    from datetime import UTC, datetime

    from detectors.engine import Engine, EngineOptions
    from detectors.loader import load_rules
    from detectors.setup import setup_alerts
    from samples.day import DEFAULT_START

    setup_alerts(client, prefix)
    with tempfile.TemporaryDirectory(prefix="sysmon-demo-intel-") as tmp:
        for line in load_sample_intel(client, prefix, Path(tmp), DEFAULT_START):
            print(line)
    client.indices.refresh(index=f"{prefix}-events-*", ignore_unavailable=True, allow_no_indices=True)
    loaded = load_rules(extra_dirs=())
    for err in loaded.errors:
        print(f"rule error: {err}")
    started = datetime.now(UTC)
    results = Engine(client, prefix, loaded.rules, EngineOptions(ingest_delay=0.0)).run(only_due=False)
    print(f"\nran {len(results)} rules in {(datetime.now(UTC) - started).total_seconds():.1f}s")
    for r in results:
        print("  " + r.line())
    rows: list[tuple[str, ...]] = []
    spread: dict[str, Any] | None = None
    for a in _alert_rows(client, prefix):
        ind = (a.get("threat") or {}).get("indicator") or {}
        values = (a.get("alert") or {}).get("intel", {}).get("matched_values", [])
        matched = (values[0][:40] + (f" (+{len(values) - 1})" if len(values) > 1 else "")) if values else ""
        proc = (a.get("process") or {}).get("executable") or (a.get("file") or {}).get("path") or ""
        rows.append(
            (
                str(a["alert"].get("original_time", ""))[11:19],
                a["rule"]["id"],
                (a.get("host") or {}).get("name", ""),
                proc.rsplit("\\", 1)[-1],
                matched or ind.get("type", ""),
                a["_id"][:12],
            )
        )
        if a["rule"]["id"] == "bad-hash-spread":
            spread = a
    _table(
        f"Alerts ({len(rows)}), worst first",
        rows[:40],
        ("time", "rule", "host", "process/file", "matched indicator", "alert id"),
    )
    if spread is not None:
        s = spread["alert"]["spread"]
        print(f"\nSpreading hash {s['value'][:16]}… on {s['host_count']} hosts")
        print(f"patient zero: {s['patient_zero']}")
        for h in s["hosts"]:
            print(f"  {h['first_seen']}  {h['name']}  {h.get('executable', '')}")
        anc = spread.get("ancestry") or {}
        print(f"How it arrived on {s['patient_zero']} (process ancestry, newest first):")
        for link in anc.get("chain", []):
            print(f"  pid {link.get('pid', '?'):<6} {link.get('executable', link['entity_id'])}")
            if link.get("command_line"):
                print(f"             {link['command_line'][:120]}")
        if anc.get("broken"):
            print(f"  … chain breaks at {anc.get('missing_entity_id')} (started before the log)")
    print("\ntriage: sysmon-detect alerts ack|close ID    status: sysmon-detect status")


if __name__ == "__main__":
    raise SystemExit(main())

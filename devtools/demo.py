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
from typing import Any

from devtools import es as devnode
from shipper.es import ClusterSettings, check_cluster, make_client


def _run(cmd: list[str], env: dict[str, str]) -> None:
    print("$", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, env=env, check=False)
    if proc.returncode not in (0,):
        raise SystemExit(f"demo: `{' '.join(cmd)}` failed with exit status {proc.returncode}")


def _table(title: str, rows: list[tuple[str, ...]], headers: tuple[str, ...]) -> None:
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
    hosts = [(b["key"], str(b["doc_count"])) for b in resp["aggregations"]["hosts"]["buckets"]]
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


def main() -> int:
    events = int(os.environ.get("DEMO_EVENTS", "20000"))
    seed = os.environ.get("DEMO_SEED", "7")
    prefix = os.environ.get("SYSMON_INDEX_PREFIX", "sysmon")
    env = dict(os.environ)
    if not env.get("ES_URL"):
        try:
            info = devnode.start(name="demo")
        except devnode.NodeError as exc:
            print(f"demo: could not start the local node: {exc}", file=sys.stderr)
            return 1
        env.update(info.env())
        print(f"local Elasticsearch {info.version} at {info.url}")
        print("(stop it with: python -m devtools.es stop --name demo)")
    settings = ClusterSettings.from_env(env)
    client = make_client(settings)
    print(f"Elasticsearch {check_cluster(client, settings.url)} at {settings.url}")
    ship = [sys.executable, "-c", "from shipper.cli import main; main()"]
    _run([*ship, "setup", "--index-prefix", prefix], env)
    with tempfile.TemporaryDirectory(prefix="sysmon-demo-") as tmp:
        data = os.path.join(tmp, "day")
        _run(
            [
                sys.executable,
                "-m",
                "samples",
                "generate",
                "--out",
                data,
                "--events",
                str(events),
                "--seed",
                seed,
                "--forms",
                "winlogbeat",
            ],
            env,
        )
        _run(
            [
                *ship,
                "ship",
                os.path.join(data, "winlogbeat.ndjson"),
                "--index-prefix",
                prefix,
                "--state-dir",
                os.path.join(tmp, "state"),
            ],
            env,
        )
    show(client, prefix)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

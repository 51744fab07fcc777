"""Detector benchmark: intel matching through the lookup clause vs Kibana's indicator-match
strategy, and the cost of process ancestry per alert.

On generated data (``--events`` ECS events: connections with a destination IP and process
starts with a SHA-256, ``--indicators`` intel entries, half IPs half hashes, ``--hit-rate`` of the
events matching):

1. **lookup clause**: the ``intel_match`` rules' queries (one ``terms`` lookup per chunk of the
   list, the join done inside Elasticsearch), every matching event read with PIT/search_after.
2. **indicator-match strategy** (what Kibana's indicator-match rules do): the indicators are
   fetched in pages of 9,000 and each page is sent as a ``terms`` query over the events, one at a
   time, reading every match the same way.

Both must find the same events (checked). Then the full engine run of the ``intel_match`` rules
(alerts with enrichment and ancestry) is timed, and ``build_chains`` for ``--alerts`` alerts
whose processes sit four levels deep gives the ancestry cost per alert. Prints figures and
ratios only (no thresholds). Uses ``ES_URL`` when set, else starts a local node
(``devtools.es``, name ``bench-detect``).
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from elasticsearch import Elasticsearch

from detectors.ancestry import build_chains
from detectors.engine import Engine, EngineOptions
from detectors.intel.indices import setup_intel
from detectors.intel.loader import load_items
from detectors.intel.model import Indicator
from detectors.loader import BUILTIN_DIR, load_rules
from detectors.query import events_pattern, iter_pages, rule_query
from detectors.setup import setup_alerts
from devtools import es as devnode
from shipper.es import ClusterSettings, make_client

PAGE = 9000
HOSTS = [f"BENCH{i:02d}.corp.example" for i in range(20)]


def _ip(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def _hash(i: int) -> str:
    return f"{i:064x}"


def bulk(es: Elasticsearch, lines: Iterator[tuple[str, dict[str, Any]]], batch: int = 5000) -> int:
    buf: list[bytes] = []
    n = 0

    def flush() -> None:
        if buf:
            resp = es.bulk(operations=b"\n".join(buf) + b"\n", refresh=False)  # type: ignore[arg-type]
            if resp["errors"]:
                raise SystemExit(f"bulk errors: {resp['items'][:2]}")
            buf.clear()

    for index, doc in lines:
        buf.append(orjson.dumps({"create": {"_index": index}}))
        buf.append(orjson.dumps(doc))
        n += 1
        if len(buf) >= 2 * batch:
            flush()
    flush()
    return n


def events(
    prefix: str, n: int, n_ind: int, hit_rate: float, seed: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    ingested = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    half = n_ind // 2
    index = f"{prefix}-events-{now:%Y.%m}"
    for i in range(n):
        ts = (now - timedelta(seconds=rng.randrange(86400))).isoformat(timespec="milliseconds")
        hit = rng.random() < hit_rate
        host = HOSTS[i % len(HOSTS)]
        base: dict[str, Any] = {
            "@timestamp": ts.replace("+00:00", "Z"),
            "event": {"kind": "event", "module": "sysmon", "ingested": ingested},
            "host": {"name": host},
        }
        if i % 2 == 0:
            v = rng.randrange(half) if hit else half + rng.randrange(1 << 22)
            base["event"]["code"] = "3"
            base["destination"] = {"ip": _ip(v)}
            base["process"] = {"entity_id": f"{{N-{i}}}", "executable": "C:\\x\\net.exe", "pid": 4}
        else:
            v = rng.randrange(half) if hit else half + rng.randrange(1 << 40)
            base["event"]["code"] = "1"
            base["process"] = {
                "entity_id": f"{{P-{i}}}",
                "executable": "C:\\x\\p.exe",
                "pid": 8,
                "hash": {"sha256": _hash(v)},
            }
        yield index, base


def indicators(n: int) -> Iterator[Indicator]:
    half = n // 2
    for i in range(half):
        yield Indicator(type="ip", value=_ip(i), line=i + 1)
    for i in range(n - half):
        yield Indicator(type="sha256", value=_hash(i), line=half + i + 1)


def lookup_strategy(es: Elasticsearch, prefix: str, rules: list[Any]) -> set[str]:
    found: set[str] = set()
    for rule in rules:
        for page in iter_pages(es, events_pattern(prefix), rule_query(es, rule, prefix), source=False):
            found.update(h["_id"] for h in page)
    return found


def indicator_match_strategy(es: Elasticsearch, prefix: str) -> tuple[set[str], int]:
    """Kibana's way: pages of 9,000 indicators, each page one terms query over the events."""
    found: set[str] = set()
    queries = 0
    for itype, field, code in (("ip", "destination.ip", "3"), ("sha256", "process.hash.sha256", "1")):
        after: list[Any] | None = None
        while True:
            kw: dict[str, Any] = {
                "index": f"{prefix}-intel-indicators",
                "size": PAGE,
                "query": {"term": {"intel.type": itype}},
                "sort": [{"intel.value": "asc"}],
                "source": ["intel.value"],
            }
            if after is not None:
                kw["search_after"] = after
            resp = es.search(**kw)
            hits = resp["hits"]["hits"]
            if not hits:
                break
            values = [h["_source"]["intel"]["value"] for h in hits]
            q = {"bool": {"filter": [{"term": {"event.code": code}}, {"terms": {field: values}}]}}
            queries += 1
            for page in iter_pages(es, events_pattern(prefix), q, source=False):
                found.update(h["_id"] for h in page)
            after = hits[-1]["sort"]
    return found, queries


def ancestry_bench(es: Elasticsearch, prefix: str, n_alerts: int, depth: int = 4) -> tuple[float, int]:
    """``n_alerts`` leaf processes, each ``depth`` levels below a root whose parent is missing."""
    now = datetime.now(UTC)
    ts = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    index = f"{prefix}-events-{now:%Y.%m}"
    trees = max(1, n_alerts // 50)

    def docs() -> Iterator[tuple[str, dict[str, Any]]]:
        for t in range(trees):
            host = HOSTS[t % len(HOSTS)]
            for lvl in range(depth - 1):
                parent = f"{{T{t}-L{lvl - 1}}}" if lvl > 0 else f"{{T{t}-GONE}}"
                yield index, _proc(host, ts, f"{{T{t}-L{lvl}}}", parent, lvl)
        for a in range(n_alerts):
            t = a % trees
            yield index, _proc(HOSTS[t % len(HOSTS)], ts, f"{{A-{a}}}", f"{{T{t}-L{depth - 2}}}", depth)

    bulk(es, docs())
    es.indices.refresh(index=events_pattern(prefix))
    starts = [(HOSTS[(a % trees) % len(HOSTS)], f"{{A-{a}}}") for a in range(n_alerts)]
    t0 = time.perf_counter()
    chains = build_chains(es, prefix, starts, depth=10)
    elapsed = time.perf_counter() - t0
    sample = chains[starts[0]]
    assert len(sample.links) == depth and sample.broken, sample
    return elapsed, len(chains)


def _proc(host: str, ts: str, eid: str, parent: str, lvl: int) -> dict[str, Any]:
    return {
        "@timestamp": ts,
        "event": {"kind": "event", "code": "1", "module": "sysmon", "ingested": ts},
        "host": {"name": host},
        "process": {
            "entity_id": eid,
            "executable": f"C:\\bench\\level{lvl}.exe",
            "command_line": f"level{lvl}.exe",
            "pid": 100 + lvl,
            "parent": {"entity_id": parent},
        },
    }


def run(es: Elasticsearch, n_events: int, n_ind: int, n_alerts: int, hit_rate: float) -> None:
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    try:
        setup_alerts(es, prefix)
        setup_intel(es, prefix)
        t0 = time.perf_counter()
        res = load_items(es, indicators(n_ind), name="bench", kind="intel", prefix=prefix)
        es.indices.refresh(index=f"{prefix}-intel-*")
        t_load = time.perf_counter() - t0
        print(f"intel: {n_ind:,} indicators loaded in {t_load:.1f}s ({res.status})")
        t0 = time.perf_counter()
        n = bulk(es, events(prefix, n_events, n_ind, hit_rate, seed=1))
        es.indices.refresh(index=events_pattern(prefix))
        es.indices.forcemerge(index=events_pattern(prefix), max_num_segments=1)
        print(f"events: {n:,} indexed in {time.perf_counter() - t0:.1f}s")

        rules = [
            r
            for r in load_rules([BUILTIN_DIR], strict=True).rules
            if r.id in ("intel-ip-connection", "intel-hash-executed")
        ]
        t0 = time.perf_counter()
        via_lookup = lookup_strategy(es, prefix, rules)
        t_lookup = time.perf_counter() - t0
        t0 = time.perf_counter()
        via_pages, queries = indicator_match_strategy(es, prefix)
        t_pages = time.perf_counter() - t0
        same = via_lookup == via_pages
        print(
            f"matches: {len(via_lookup):,} (lookup clause) vs {len(via_pages):,} (indicator-match);"
            f" same={same}"
        )
        print(f"lookup clause:         {t_lookup:8.2f}s")
        print(f"indicator-match pages: {t_pages:8.2f}s  ({queries} queries of <= {PAGE} indicators)")
        print(f"ratio indicator-match / lookup clause: {t_pages / t_lookup:.1f}x")

        engine = Engine(es, prefix, rules, EngineOptions(ingest_delay=0.0))
        t0 = time.perf_counter()
        results = engine.run(only_due=False)
        t_engine = time.perf_counter() - t0
        alerts = sum(r.alerts for r in results)
        print(
            f"engine run of the 2 intel_match rules (alerts, enrichment, ancestry): {t_engine:.2f}s, "
            f"{alerts:,} alerts ({', '.join(r.status for r in results)})"
        )

        elapsed, count = ancestry_bench(es, prefix, n_alerts)
        print(
            f"ancestry: {count:,} alerts, 4 levels + a break, {elapsed:.2f}s total, "
            f"{elapsed / count * 1000:.3f} ms per alert"
        )
    finally:
        names = list(es.options(ignore_status=404).indices.get(index=f"{prefix}-*"))
        for i in range(0, len(names), 50):
            es.options(ignore_status=404).indices.delete(index=",".join(names[i : i + 50]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--indicators", type=int, default=1_000_000)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--hit-rate", type=float, default=0.001)
    args = parser.parse_args()
    with devnode.cluster_env("bench-detect") as env:
        settings = ClusterSettings.from_env(env)
        es = make_client(ClusterSettings(**{**settings.__dict__, "request_timeout": 900.0}))
        run(es, args.events, args.indicators, args.alerts, args.hit_rate)


if __name__ == "__main__":
    main()

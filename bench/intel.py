"""Benchmark the intel indices: loading 1M indicators, and detector-style queries against them.

Prints figures and ratios against baselines measured in the same run (no thresholds):

1. load time of N generated indicators through ``load_items`` (indicator documents + lookup
   chunks + refresh + manifest flip) against a plain ``_bulk`` of the same indicator documents
   into an index with the same mapping;
2. latency of ``count`` over N small event documents (``destination.ip``) matched through
   ``lookup_clause`` (one ``terms`` lookup per chunk) against the same list sent inline
   (``terms`` clauses of 65,536 values each), cold (first query) and warm (median of repeats).

3. the retro-hunt (``--part retro``): ``--events`` retained connection events (1M) over three
   months, a feed whose refresh adds ``--added`` indicators (10k) to ``--base`` listed ones:
   the refresh with its added-indicator chunks, and the share of the diff in it;
   the hunt (``RetroHunter``: the ``intel-ip-connection`` rule per monthly index, one ``terms``
   lookup per chunk of added indicators, alerts written) against one ``count`` per added
   indicator (a rescan per indicator) and against the count the hunt's own query makes.

Uses ``ES_URL`` when set, else starts a local node (``devtools.es``, name ``bench-intel``) and
stops it afterwards. ``python bench/intel.py [--part load|retro|all] [--n 1000000] [--repeat 5]
[--events 1000000] [--added 10000] [--quick]`` (``--quick``: a tenth of every size).
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from elasticsearch import Elasticsearch

from bench.intel_retro import run_retro
from detectors.intel.indices import MAX_TERMS_COUNT, indicator_id, setup_intel, template
from detectors.intel.loader import load_items
from detectors.intel.lookup import lookup_clause
from detectors.intel.model import Indicator
from devtools import es as devnode
from shipper.es import ClusterSettings, make_client

PREFIX = "bench-intel"
BASE = int(ipaddress.IPv4Address("11.0.0.0"))


def indicators(n: int) -> Iterator[Indicator]:
    for i in range(n):
        yield Indicator(type="ip", value=str(ipaddress.IPv4Address(BASE + i)), line=i + 1, confidence=80)


def plain_bulk(es: Elasticsearch, index: str, n: int, batch_bytes: int = 8 << 20) -> None:
    """The baseline: the same documents, NDJSON by orjson, one ``_bulk`` after another."""
    parts: list[bytes] = []
    size = 0

    def flush() -> None:
        nonlocal parts, size
        if parts:
            resp = es.bulk(operations=b"".join(parts), filter_path="errors")  # type: ignore[arg-type]
            assert not resp.get("errors"), "baseline bulk had errors"
        parts, size = [], 0

    for ind in indicators(n):
        doc = ind.ecs()
        doc["intel"].update(feed="plain", kind="intel", generation=1)
        line = orjson.dumps({"index": {"_index": index, "_id": indicator_id("plain", ind.type, ind.value)}})
        body = orjson.dumps(doc)
        parts += [line, b"\n", body, b"\n"]
        size += len(line) + len(body) + 2
        if size >= batch_bytes:
            flush()
    flush()
    es.indices.refresh(index=index)


def load_events(es: Elasticsearch, index: str, n: int, seed: int = 7) -> int:
    """N event documents with a ``destination.ip`` drawn from twice the listed range: about half
    of them are listed. Returns how many are."""
    es.indices.create(
        index=index,
        settings={"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1"},
        mappings={"dynamic": False, "properties": {"destination": {"properties": {"ip": {"type": "ip"}}}}},
    )
    rng = random.Random(seed)
    listed = 0
    parts: list[bytes] = []
    action = orjson.dumps({"index": {"_index": index}})
    for _ in range(n):
        offset = rng.randrange(2 * n)
        listed += offset < n
        parts += [
            action,
            b"\n",
            orjson.dumps({"destination": {"ip": str(ipaddress.IPv4Address(BASE + offset))}}),
            b"\n",
        ]
        if len(parts) >= 4 * 20_000:
            es.bulk(operations=b"".join(parts), filter_path="errors")  # type: ignore[arg-type]
            parts = []
    if parts:
        es.bulk(operations=b"".join(parts), filter_path="errors")  # type: ignore[arg-type]
    es.indices.put_settings(index=index, settings={"refresh_interval": "1s"})
    es.indices.refresh(index=index)
    es.indices.forcemerge(index=index, max_num_segments=1)
    return listed


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def measure(query: Callable[[], int], repeat: int) -> tuple[float, float, int]:
    cold, count = timed(query)
    warm = [timed(query)[0] for _ in range(repeat)]
    return cold, statistics.median(warm), count


def run(es: Elasticsearch, n: int, repeat: int) -> None:
    setup_intel(es, PREFIX)
    print(f"intel bench: {n:,} indicators, {n:,} events")

    t_load, res = timed(lambda: load_items(es, indicators(n), name="bench", prefix=PREFIX))
    assert res.status == "loaded", res.error
    plain_index = f"{PREFIX}-plain"
    body = template("intel-indicators", PREFIX)["template"]
    es.indices.create(index=plain_index, settings=body["settings"], mappings=body["mappings"])
    t_plain, _ = timed(lambda: plain_bulk(es, plain_index, n))
    print(
        f"load_items (docs + {res.chunks} chunks + flip): {t_load:8.2f} s  {n / t_load:10,.0f} indicators/s"
    )
    print(f"plain _bulk of the same documents:            {t_plain:8.2f} s  {n / t_plain:10,.0f} docs/s")
    print(f"ratio load_items / plain _bulk:               {t_load / t_plain:8.2f}")

    events = f"{PREFIX}-events"
    t_events, listed = timed(lambda: load_events(es, events, n))
    print(f"events indexed in {t_events:.1f} s; listed by the feed: {listed:,}")

    def via_lookup() -> int:
        clause = lookup_clause(es, "destination.ip", prefix=PREFIX)  # manifest read included
        return int(es.count(index=events, query=clause)["count"])

    values = [str(ipaddress.IPv4Address(BASE + i)) for i in range(n)]
    step = MAX_TERMS_COUNT
    inline = {
        "bool": {
            "should": [{"terms": {"destination.ip": values[i : i + step]}} for i in range(0, n, step)],
            "minimum_should_match": 1,
        }
    }

    def via_inline() -> int:
        return int(es.count(index=events, query=inline)["count"])

    cold_l, warm_l, count_l = measure(via_lookup, repeat)
    cold_i, warm_i, count_i = measure(via_inline, repeat)
    assert count_l == count_i == listed, (count_l, count_i, listed)
    print(f"query via lookup_clause:     cold {cold_l * 1000:9.1f} ms  warm median {warm_l * 1000:9.1f} ms")
    print(f"query with inline terms:     cold {cold_i * 1000:9.1f} ms  warm median {warm_i * 1000:9.1f} ms")
    print(f"ratio lookup / inline:       cold {cold_l / cold_i:9.2f}     warm {warm_l / warm_i:9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--part", choices=("load", "retro", "all"), default="all")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--events", type=int, default=1_000_000, help="retained events (retro)")
    parser.add_argument("--added", type=int, default=10_000, help="indicators a refresh adds (retro)")
    parser.add_argument("--base", type=int, default=100_000, help="indicators listed before (retro)")
    parser.add_argument("--quick", action="store_true", help="a tenth of every size")
    args = parser.parse_args()
    if args.quick:
        args.n, args.events, args.added, args.base = (
            max(1, x // 10) for x in (args.n, args.events, args.added, args.base)
        )
    with devnode.cluster_env("bench-intel") as env:
        settings = ClusterSettings.from_env(env)
        es = make_client(ClusterSettings(**{**settings.__dict__, "request_timeout": 600.0}))
        try:
            if args.part in ("load", "all"):
                run(es, args.n, args.repeat)
            if args.part in ("retro", "all"):
                run_retro(es, events=args.events, added=args.added, base=args.base)
        finally:
            for idx in (
                f"{PREFIX}-events",
                f"{PREFIX}-plain",
                *(f"{PREFIX}-{t}" for t in ("intel-indicators", "intel-lookup", "intel-feeds")),
            ):
                es.options(ignore_status=404).indices.delete(index=idx)


if __name__ == "__main__":
    main()

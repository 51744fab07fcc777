"""Benchmark intel in memory for the stream stage (``detectors.stream.intel``) against plain
Python sets of the same strings, measured side by side in one run (figures and ratios, no
thresholds):

1. ``--n`` indicators (1M) of a realistic mix — IPv4, IPv6, CIDR v4 and v6, domains, MD5, SHA1,
   SHA256, image names and paths — loaded into the intel indices through ``load_items`` (the
   normal load path: indicator documents, lookup chunks, manifest flip), plus a small allowlist;
2. load time: read every current lookup chunk and build the snapshot (``load_memory``) against
   reading the same chunks and building one ``set`` of strings per (feed, type);
3. memory of each: ``tracemalloc`` (retained after the build, and peak while building) and the
   RSS delta of a fresh process (each side measured in a child process of its own);
4. lookups per second: ``IntelMemory.has`` per event field (half the probes listed) against
   ``value in set`` for the same values (the set cannot answer CIDR containment or caseless).

``--before DIR`` measures the IntelMemory side a second time with the code of another checkout
(e.g. ``git archive <commit> | tar -x -C DIR``) on the same data in the same run: before/after.
Load time and peak RSS over the load (``VmHWM``) are the figures a shipper pays at start-up.

Uses ``ES_URL`` when set, else starts a local node (``devtools.es``, name ``bench-stream-intel``)
and stops it afterwards. ``python bench/stream_intel.py [--n 1000000] [--lookups 200000] [--quick]
[--before DIR]``
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import ipaddress
import json
import os
import random
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# the code measured: this checkout's, or another's for the --before side (same measurement)
CODE_ENV = "BENCH_STREAM_INTEL_CODE"
sys.path.insert(0, os.environ.get(CODE_ENV) or str(Path(__file__).resolve().parents[1]))

from elasticsearch import Elasticsearch  # noqa: E402

from detectors.intel.indices import setup_intel  # noqa: E402
from detectors.intel.loader import load_items  # noqa: E402
from detectors.intel.lookup import manifests  # noqa: E402
from detectors.intel.model import Indicator  # noqa: E402
from detectors.stream.intel import IntelMemory, load_memory, read_chunk_values  # noqa: E402
from devtools import es as devnode  # noqa: E402
from shipper.es import ClusterSettings, make_client  # noqa: E402

PREFIX = "bench-stream-intel"
# share of each type in the mix (sums to 1)
MIX = {
    "ip4": 0.35, "ip6": 0.05, "cidr4": 0.03, "cidr6": 0.01, "domain": 0.25, "md5": 0.08,
    "sha1": 0.08, "sha256": 0.12, "image_name": 0.02, "image_path": 0.01,
}  # fmt: skip
PROBE_FIELDS = {
    "destination.ip": ("ip4", "ip6", "cidr4", "cidr6"),
    "dns.question.name": ("domain",),
    "process.hash.sha256": ("sha256",),
    "related.hash": ("md5", "sha1", "sha256"),
    "process.executable": ("image_path",),
    "process.name": ("image_name",),
}


def _rand(kind: str, i: int, size: int) -> bytes:
    return hashlib.blake2b(f"{kind}:{i}".encode(), digest_size=size).digest()


def _value(kind: str, i: int) -> tuple[str, str]:
    """(indicator type, canonical value) number ``i`` of ``kind`` (the same for the same i)."""
    if kind == "ip4":
        return "ip", str(ipaddress.IPv4Address(0x0B000000 + i * 7))
    if kind == "ip6":
        low = int.from_bytes(_rand(kind, i, 8), "big")
        return "ip", str(ipaddress.IPv6Address((0x2001_0DB8 << 96) + (i << 64) + low))
    if kind == "cidr4":
        return "cidr", f"{ipaddress.IPv4Address(0x64000000 + (i << 8))}/{(24, 26, 28)[i % 3]}"
    if kind == "cidr6":
        return "cidr", f"{ipaddress.IPv6Address((0x2001_0DB9 << 96) + (i << 80))}/48"
    if kind == "domain":
        return "domain", f"h{_rand(kind, i, 5).hex()}.{('cdn', 'mail', 'c2', 'x')[i % 4]}{i % 5000}.example"
    if kind in ("md5", "sha1", "sha256"):
        return kind, _rand(kind, i, {"md5": 16, "sha1": 20, "sha256": 32}[kind]).hex()
    if kind == "image_name":
        return "image_name", f"tool{i}.exe"
    return "image_path", f"c:\\users\\u{i % 300}\\appdata\\local\\temp\\drop{i}.exe"


def indicators(n: int) -> Iterator[Indicator]:
    line = 0
    for kind, share in MIX.items():
        for i in range(int(n * share)):
            t, v = _value(kind, i)
            line += 1
            yield Indicator(type=t, value=v, line=line)  # type: ignore[arg-type]


def allowlist(n: int) -> Iterator[Indicator]:
    for i in range(n):
        yield Indicator(type="image_name", value=f"tool{i * 3}.exe", line=i + 1)


def probes(n: int, count: int, seed: int = 5) -> dict[str, list[str]]:
    """Per event field, ``count`` values: about half listed (or inside a listed CIDR), half not."""
    rng = random.Random(seed)
    out: dict[str, list[str]] = {}
    for field, kinds in PROBE_FIELDS.items():
        values: list[str] = []
        for _ in range(count):
            kind = rng.choice(kinds)
            size = max(1, int(n * MIX[kind]))
            i = rng.randrange(2 * size)  # at or past size: not listed
            _, v = _value(kind, i)
            if kind.startswith("cidr"):  # an address inside the network
                v = str(ipaddress.ip_network(v).network_address + rng.randrange(16))
            values.append(v)
        out[field] = values
    return out


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> None:
    """Reset the process's RSS high-water mark (Linux ``clear_refs`` 5): ``ru_maxrss`` would
    otherwise carry the parent's across fork and exec."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")


def _peak() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def _sets(es: Elasticsearch) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for m in manifests(es, prefix=PREFIX):
        for t, ids in (m.get("chunks") or {}).items():
            out[(str(m["feed"]), t)] = set(read_chunk_values(es, PREFIX, str(m["feed"]), list(ids)))
    return out


def _build(side: str, es: Elasticsearch) -> Any:
    return load_memory(es, PREFIX)[0] if side == "packed" else _sets(es)


def _checker(side: str, built: Any, field: str) -> Callable[[str], bool]:
    if side == "packed":
        memory: IntelMemory = built
        return lambda v: memory.has("intel", field, v, None, None)
    lists = [s for (feed, _t), s in built.items() if feed == "mix"]
    return lambda v: any(v in s for s in lists)


def _lookups(side: str, built: Any, cases: dict[str, list[str]]) -> dict[str, float]:
    rates: dict[str, float] = {}
    for field, values in cases.items():
        check = _checker(side, built, field)
        start = time.perf_counter()
        hits = sum(1 for v in values if check(v))
        rates[field] = len(values) / (time.perf_counter() - start)
        rates[f"{field} hits"] = hits
    return rates


def child(side: str, n: int, lookups: int) -> None:
    """One side, measured in a fresh process: printed as one JSON line."""
    es = make_client(ClusterSettings.from_env())
    cases = probes(n, lookups)
    gc.collect()
    rss0 = _rss()
    _reset_peak()
    started = time.perf_counter()
    built = _build(side, es)
    load_s = time.perf_counter() - started
    peak_rss = _peak() - rss0
    gc.collect()
    rss = _rss() - rss0
    rates = _lookups(side, built, cases)
    del built
    gc.collect()
    tracemalloc.start()
    again = _build(side, es)
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    packed = again.nbytes() if side == "packed" else 0
    out: dict[str, Any] = {"load_s": load_s, "peak_rss": peak_rss, "rss": rss, "traced": current}
    out |= {"peak": peak, "packed": packed, "rates": rates}
    print(json.dumps(out))


def _measure(side: str, env: dict[str, str], n: int, lookups: int, code: str | None = None) -> dict[str, Any]:
    env = {**env, CODE_ENV: code} if code else env
    cmd = [sys.executable, __file__, "--child", side, "--n", str(n), "--lookups", str(lookups)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def report(n: int, sides: dict[str, dict[str, Any]]) -> None:
    """One column per side; ratios of the first (IntelMemory) to each other side."""
    mb = 1 << 20
    names = list(sides)
    head = "".join(f"{name:>14}" for name in names) + "".join(f"{'/' + name[:7]:>10}" for name in names[1:])
    print(f"{'':34}{head}")
    rows = [("load (read chunks + build), s", "load_s", 1.0), ("peak RSS over the load, MB", "peak_rss", mb)]
    rows += [("RSS delta after the load, MB", "rss", mb), ("tracemalloc retained, MB", "traced", mb)]
    rows += [("tracemalloc peak, MB", "peak", mb)]
    for label, key, unit in rows:
        values = [sides[name][key] / unit for name in names]
        ratios = "".join(f"{values[0] / v:10.2f}" if v else f"{'-':>10}" for v in values[1:])
        print(f"{label:34}" + "".join(f"{v:14.2f}" for v in values) + ratios)
    print(f"{'packed arrays and blobs, MB':34}" + "".join(f"{sides[x]['packed'] / mb:14.2f}" for x in names))
    per = "".join(f"{sides[x]['traced'] / n:14.1f}" for x in names)
    print(f"{'bytes per indicator (retained)':34}{per}")
    print("lookups per second (has() / `in` over the feed's sets; hits):")
    for field in PROBE_FIELDS:
        rates = [sides[x]["rates"][field] for x in names]
        hits = " / ".join(f"{sides[x]['rates'][f'{field} hits']:.0f}" for x in names)
        ratios = "".join(f"{rates[0] / r:10.2f}" for r in rates[1:])
        print(f"  {field:32}" + "".join(f"{r:14,.0f}" for r in rates) + f"{ratios}   hits {hits}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=200_000, help="probes per event field")
    parser.add_argument("--quick", action="store_true", help="a tenth of every size")
    parser.add_argument("--before", metavar="DIR", help="also measure IntelMemory with this checkout's code")
    parser.add_argument("--child", choices=("packed", "sets"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.n, args.lookups = args.n // 10, args.lookups // 10
    if args.child:
        child(args.child, args.n, args.lookups)
        return
    with devnode.cluster_env("bench-stream-intel") as env:
        settings = ClusterSettings.from_env(env)
        es = make_client(ClusterSettings(**{**settings.__dict__, "request_timeout": 600.0}))
        try:
            setup_intel(es, PREFIX)
            started = time.perf_counter()
            res = load_items(es, indicators(args.n), name="mix", prefix=PREFIX)
            assert res.status == "loaded", res.error
            allow = load_items(es, allowlist(args.n // 100), name="allow", kind="allow", prefix=PREFIX)
            assert allow.status == "loaded", allow.error
            took = time.perf_counter() - started
            print(f"stream intel bench: {res.total + allow.total:,} entries loaded in {took:.1f} s")
            print("  mix by type: " + ", ".join(f"{t} {c:,}" for t, c in sorted(res.counts.items())))
            sides = {"IntelMemory": _measure("packed", env, args.n, args.lookups)}
            if args.before:
                sides["before"] = _measure("packed", env, args.n, args.lookups, code=args.before)
            sides["Python sets"] = _measure("sets", env, args.n, args.lookups)
            report(args.n, sides)
        finally:
            for t in ("intel-indicators", "intel-lookup", "intel-feeds"):
                es.options(ignore_status=404).indices.delete(index=f"{PREFIX}-{t}")


if __name__ == "__main__":
    main()

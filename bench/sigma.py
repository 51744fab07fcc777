"""Sigma benchmark: every applicable shared SigmaHQ Windows rule over ``--events`` Sysmon events,
run as the scheduler runs them (batches, ``detectors.batch``), against Zircolite's method on the
same events: the rules converted with pySigma's SQLite backend, run over a flat SQLite table of
the raw EventData fields (``devtools.sigma_sqlite``).

The events: a generated sample day (``python -m samples generate``, winlogbeat form) plus the
shared EVTX attack samples and OTRF datasets, ``--events`` in all, indexed into one monthly
index with ``event.ingested`` spread over the last ``events / --rate`` seconds (``--rate`` events
per second, default 1,000), as a live feed would leave them.

1. **full pass**: the batched engine (leases, windows, alerts with ancestry, states) over every
   event: rules × events per second. The engine's default: the rules the native stream matcher
   runs are matched in process over one read of the events (``detectors/builders/inprocess.py``),
   the others as Lucene batches.
2. **scheduled pass**: the same rules from a fresh state over the last ``--pass-seconds``
   (default 300: 5 minutes at 1,000 events/s), the time one scheduled pass takes; then the same
   pass with every rule as named Lucene clauses (``batch_in_process=False``), side by side, and
   with ``--lucene-full`` the full pass that way too.
3. **rule by rule** (the path before batching): ``--single-rules`` rules run one search each
   over the 5 minutes, timed and scaled to all rules.
4. **SQLite baseline**: every rule the SQLite backend converts (or ``--baseline-rules`` of them,
   scaled) over the same events; rules × events per second and the ratio.

Prints figures and ratios only (no thresholds). Uses ``ES_URL`` when set, else starts a local
node (``devtools.es``, name ``bench-sigma``). ``--events 100000 --limit-rules 300`` is a quick
run.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from elasticsearch import Elasticsearch

REPO = Path(__file__).resolve().parents[1]
# this file is named like pySigma's package ``sigma``: its own folder must not come first
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from detectors.batch import run_batched  # noqa: E402
from detectors.engine import Engine, EngineOptions  # noqa: E402
from detectors.model import Rule  # noqa: E402
from detectors.query import iso  # noqa: E402
from detectors.setup import setup_alerts  # noqa: E402
from devtools import es as devnode  # noqa: E402
from devtools import sigma_sqlite  # noqa: E402
from shipper.es import ClusterSettings, make_client  # noqa: E402
from shipper.inputs import expand_inputs  # noqa: E402
from shipper.pipeline import iter_documents  # noqa: E402
from shipper.raw import RawEvent  # noqa: E402
from shipper.readers import open_source  # noqa: E402

DEFAULTS = EngineOptions()


def log(msg: str) -> None:
    print(msg, flush=True)


def inputs(work: Path, shared: Path, events: int) -> list[str]:
    """The shared Sysmon data plus a generated day making ``events`` in all (about)."""
    found: list[str] = []
    n_shared = 0
    if (shared / "data" / "sysmon").is_dir():
        sysmon = shared / "data" / "sysmon"
        found.append(str(sysmon / "evtx-attack-samples"))
        for z in sorted((sysmon / "otrf").glob("*.zip")):
            with zipfile.ZipFile(z) as zf:
                zf.extractall(work / "otrf" / z.stem)
        found.append(str(work / "otrf"))
        n_shared = 3_160 + 75_305  # the manifests' Sysmon events
    else:
        log(f"shared data not found at {shared}: generated events only")
    gen = work / "gen"
    cmd = [sys.executable, "-m", "samples", "generate", "--out", str(gen), "--forms", "winlogbeat"]
    cmd += ["--events", str(max(10_000, events - n_shared)), "--seed", "12"]
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO)
    return expand_inputs([str(gen / "winlogbeat.ndjson"), *found])


def index_events(es: Elasticsearch, prefix: str, paths: list[str], end: datetime, rate: float) -> int:
    """Every Sysmon document of ``paths`` into one index, ``event.ingested`` uniform over the
    ``n / rate`` seconds before ``end``. The templates go in first: without them the index would
    be mapped dynamically (text fields, no ``.caseless``) and the rules would not run as deployed."""
    setup_alerts(es, prefix)
    items = list(iter_documents(paths))
    span = len(items) / rate
    rng = random.Random(5)
    index = f"{prefix}-events-{end:%Y.%m}"
    lines: list[bytes] = []
    for item in items:
        doc = item.doc
        doc.setdefault("event", {})["ingested"] = iso(end - timedelta(seconds=rng.random() * span))
        lines += [orjson.dumps({"create": {"_index": index, "_id": item.doc_id}}), orjson.dumps(doc)]
        if len(lines) >= 10_000:
            _bulk(es, lines)
    _bulk(es, lines)
    es.indices.refresh(index=index)
    es.indices.forcemerge(index=index, max_num_segments=1)
    return int(es.count(index=index)["count"])


def _bulk(es: Elasticsearch, lines: list[bytes]) -> None:
    if lines:
        resp = es.bulk(operations=b"\n".join(lines) + b"\n", refresh=False)  # type: ignore[arg-type]
        # a record the shared data holds twice is one document (409), as the shipper makes it
        bad = [i for i in resp["items"] if i["create"].get("status") not in (200, 201, 409)]
        if bad:
            raise SystemExit(f"bulk errors: {bad[:2]}")
        lines.clear()


def fresh_state(es: Elasticsearch, prefix: str) -> None:
    pattern = f"{prefix}-alerts-*,{prefix}-state"
    names = list(es.indices.get(index=pattern, ignore_unavailable=True, allow_no_indices=True))
    for i in range(0, len(names), 50):
        es.indices.delete(index=",".join(names[i : i + 50]))
    setup_alerts(es, prefix)


def timed_pass(
    es: Elasticsearch, prefix: str, rules: list[Rule], opts: EngineOptions, now: datetime
) -> tuple[float, list[Any]]:
    fresh_state(es, prefix)
    engine = Engine(es, prefix, rules, opts)
    t0 = time.perf_counter()
    results = run_batched(engine, rules, now=now) if opts.batch_size > 1 else engine.run(only_due=False)
    return time.perf_counter() - t0, results


def summary(results: list[Any]) -> str:
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    hits, alerts = sum(r.hits for r in results), sum(r.alerts for r in results)
    return f"{hits:,} hits, {alerts:,} alerts, " + ", ".join(f"{k}={v}" for k, v in sorted(statuses.items()))


def sqlite_baseline(paths: list[str], rule_dir: Path, limit: int | None) -> tuple[int, int, float, int]:
    """(rules run, events, seconds, matches) of the SQLite backend over the raw records."""
    from sigma.collection import SigmaCollection
    from sigma.rule import SigmaRule

    collection = SigmaCollection.load_ruleset([str(rule_dir)], collect_errors=True)
    rules = [r for r in collection.rules if isinstance(r, SigmaRule)]
    queries = list(sigma_sqlite.convert(rules).items())
    if limit is not None:
        queries = queries[:limit]
    t0 = time.perf_counter()
    db = sigma_sqlite.connect(_raws(paths))
    events = int(db.execute(f"SELECT count(*) FROM {sigma_sqlite.TABLE}").fetchone()[0])
    log(f"sqlite: {events:,} records loaded in {time.perf_counter() - t0:.1f}s (not timed below)")
    matches = 0
    t0 = time.perf_counter()
    for _, sql in queries:
        try:  # every matching row read back, as Zircolite does
            matches += len(db.execute(sql).fetchall())
        except sqlite3.Error:
            pass  # a field no record has (or a query SQLite rejects) costs what it cost
    return len(queries), events, time.perf_counter() - t0, matches


def _raws(paths: list[str]) -> Iterator[RawEvent]:
    for path in paths:
        files = (
            sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else [Path(path)]
        )
        for f in files:
            for raw in open_source(str(f)):
                if isinstance(raw, RawEvent):
                    yield raw


def run(es: Elasticsearch, args: argparse.Namespace) -> None:
    from detectors.sigma.loading import load_sigma

    rule_dir = Path(args.shared) / "data" / "sigma" / "rules" / "windows"
    t0 = time.perf_counter()
    rules = [c.rule for c in load_sigma([rule_dir]) if c.rule is not None][: args.limit_rules]
    log(f"rules: {len(rules):,} runnable Sigma rules converted in {time.perf_counter() - t0:.1f}s")
    prefix = f"bsig{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="bench-sigma-") as tmp:
        paths = inputs(Path(tmp), Path(args.shared), args.events)
        try:
            end = datetime.now(UTC)
            t0 = time.perf_counter()
            n = index_events(es, prefix, paths, end, args.rate)
            took = time.perf_counter() - t0
            log(f"events: {n:,} indexed in {took:.1f}s, ingested over {n / args.rate:.0f}s")
            es_rates = passes(es, prefix, rules, n, end, args)
            if not args.skip_baseline:
                baseline(paths, rule_dir, args, es_rates)
        finally:
            names = list(es.options(ignore_status=404).indices.get(index=f"{prefix}-*"))
            for i in range(0, len(names), 50):
                es.options(ignore_status=404).indices.delete(index=",".join(names[i : i + 50]))


@contextmanager
def _default_collections() -> Iterator[None]:
    """The detector's passes without ``fewer_collections`` (the baseline of that choice)."""
    import detectors.batch

    kept = detectors.batch.fewer_collections
    detectors.batch.fewer_collections = nullcontext  # type: ignore[assignment]
    try:
        yield
    finally:
        detectors.batch.fewer_collections = kept


def passes(
    es: Elasticsearch, prefix: str, rules: list[Rule], n: int, end: datetime, a: argparse.Namespace
) -> tuple[float, float]:
    """Time the full pass, the scheduled pass and the rule-by-rule sample; the full pass's
    rule×events per second, cold and warm."""
    opts = EngineOptions(
        ingest_delay=0.0, batch_size=a.batch_size, batch_clauses=a.batch_clauses, batch_workers=a.workers
    )
    now = end + timedelta(seconds=1)
    secs, results = timed_pass(es, prefix, rules, opts, now)
    rate = len(rules) * n / secs
    log(f"full pass, batched: {secs:.1f}s for {len(rules):,} rules × {n:,} events ({summary(results)})")
    log(f"  {rate / 1e6:,.1f}M rule×events/s (cold: the rules' matcher compiled in the pass)")
    secs, results = timed_pass(es, prefix, rules, opts, now)
    warm = len(rules) * n / secs
    log(f"full pass again, warm (as a daemon's next pass): {secs:.1f}s ({summary(results)})")
    log(f"  {warm / 1e6:,.1f}M rule×events/s")
    recent = replace(opts, initial_lookback=float(a.pass_seconds) + 1.0)
    secs, results = timed_pass(es, prefix, rules, recent, now)
    window_events = round(min(n, a.pass_seconds * a.rate))
    log(
        f"scheduled pass, batched, last {a.pass_seconds}s (~{window_events:,} events): {secs:.1f}s"
        f" ({summary(results)})"
    )
    with _default_collections():
        g_secs, g_results = timed_pass(es, prefix, rules, recent, now)
    log(f"  the same pass with CPython's default collections: {g_secs:.1f}s ({summary(g_results)})")
    log(f"  fewer collections is {g_secs / secs:.1f}x faster")
    lucene = replace(recent, batch_in_process=False)
    l_secs, l_results = timed_pass(es, prefix, rules, lucene, now)
    log(f"  the same pass as Lucene batches: {l_secs:.1f}s ({summary(l_results)})")
    log(f"  in process is {l_secs / secs:.1f}x faster")
    if a.lucene_full:
        f_secs, f_results = timed_pass(es, prefix, rules, replace(opts, batch_in_process=False), now)
        f_rate = len(rules) * n / f_secs / 1e6
        log(
            f"full pass as Lucene batches: {f_secs:.1f}s ({summary(f_results)}), {f_rate:,.1f}M rule×events/s"
        )
    if a.single_rules:
        sample = rules[:: max(1, len(rules) // a.single_rules)][: a.single_rules]
        single = replace(recent, batch_size=1)
        s_secs, s_results = timed_pass(es, prefix, sample, single, now)
        scaled = s_secs * len(rules) / len(sample)
        log(
            f"scheduled pass, rule by rule: {s_secs:.1f}s for {len(sample)} rules → {scaled:.1f}s for all"
            f" {len(rules):,} (scaled; {summary(s_results)}); batched is {scaled / secs:.1f}x faster"
        )
    return rate, warm


def baseline(paths: list[str], rule_dir: Path, a: argparse.Namespace, es_rates: tuple[float, float]) -> None:
    n_rules, events, secs, matches = sqlite_baseline(paths, rule_dir, a.baseline_rules)
    rate = n_rules * events / secs
    log(f"sqlite baseline: {n_rules:,} rules × {events:,} records in {secs:.1f}s, {matches:,} matches")
    log(f"  {rate / 1e6:,.2f}M rule×events/s")
    cold, warm = es_rates
    log(f"ratio batched Elasticsearch / SQLite: {cold / rate:.1f}x cold, {warm / rate:.1f}x warm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in all (about)")
    parser.add_argument("--rate", type=float, default=1000.0, help="events ingested per second")
    parser.add_argument("--pass-seconds", type=int, default=300, help="the scheduled pass's window")
    parser.add_argument("--limit-rules", type=int, default=None, help="only the first N rules")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    parser.add_argument("--batch-clauses", type=int, default=DEFAULTS.batch_clauses)
    parser.add_argument("--workers", type=int, default=DEFAULTS.batch_workers)
    parser.add_argument("--single-rules", type=int, default=100, help="rules timed one by one (0: none)")
    parser.add_argument("--baseline-rules", type=int, default=None, help="SQLite: only the first N rules")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--lucene-full", action="store_true", help="also the full pass as Lucene batches")
    parser.add_argument("--shared", default=None, help="the shared folder (SYSMON_SHARED_DIR, ../shared)")
    args = parser.parse_args()
    args.shared = args.shared or os.environ.get("SYSMON_SHARED_DIR") or str(REPO.parent / "shared")
    with devnode.cluster_env("bench-sigma") as env:
        settings = ClusterSettings.from_env(env)
        es = make_client(ClusterSettings(**{**settings.__dict__, "request_timeout": 900.0}))
        run(es, args)


if __name__ == "__main__":
    main()

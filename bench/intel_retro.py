"""The retro-hunt part of ``bench/intel.py``: ``added`` indicators a refresh adds, hunted over
``events`` retained connection events (see that file's docstring). Figures and ratios only."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from bench.detect import bulk
from detectors.intel.bulk import Bulk, delete_ids
from detectors.intel.delta import write_added
from detectors.intel.indices import DEFAULT_CHUNK_SIZE, lookup_index, setup_intel
from detectors.intel.loader import load_items, read_state
from detectors.intel.lookup import lookup_clause
from detectors.intel.model import Indicator
from detectors.loader import BUILTIN_DIR, load_rules
from detectors.retro import RetroHunter, pending_hunts
from detectors.setup import setup_alerts

PREFIX = "bench-retro"
DAYS = 85  # the events span three monthly indices


def _ip(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def _events(n: int, space: int, seed: int = 11) -> Iterator[tuple[str, dict[str, Any]]]:
    """Connections to addresses drawn from ``space`` consecutive IPs, over ``DAYS`` days, all
    shipped a day ago (so every scheduled run has examined them)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    ingested = (now - timedelta(days=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    for i in range(n):
        ts = now - timedelta(days=1, seconds=rng.randrange(DAYS * 86400))
        doc = {
            "@timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "event": {"kind": "event", "module": "sysmon", "code": "3", "ingested": ingested},
            "host": {"name": f"BENCH{i % 50:02d}.corp.example"},
            "destination": {"ip": _ip(rng.randrange(space))},
        }
        yield f"{PREFIX}-events-{ts:%Y.%m}", doc


def _feed(start: int, count: int) -> Iterator[Indicator]:
    for i in range(start, start + count):
        yield Indicator(type="ip", value=_ip(i), line=i - start + 1)


def _timed(func: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = func()
    return time.perf_counter() - t0, out


def run_retro(es: Elasticsearch, *, events: int, added: int, base: int) -> None:
    try:
        _run(es, events, added, base)
    finally:
        names = list(es.options(ignore_status=404).indices.get(index=f"{PREFIX}-*", expand_wildcards="all"))
        for i in range(0, len(names), 50):
            es.options(ignore_status=404).indices.delete(index=",".join(names[i : i + 50]))


def _run(es: Elasticsearch, events: int, added: int, base: int) -> None:
    space = 2 * (base + added) + events  # listed addresses are a slice of what events reach
    print(f"retro-hunt bench: {events:,} events, {base:,} listed, {added:,} added by a refresh")
    setup_alerts(es, PREFIX)
    setup_intel(es, PREFIX)
    t_ev, _ = _timed(lambda: bulk(es, _events(events, space)))
    es.indices.refresh(index=f"{PREFIX}-events-*")
    print(f"events indexed in {t_ev:.1f} s")
    rules = [r for r in load_rules([BUILTIN_DIR]).rules if r.id == "intel-ip-connection"]

    # the first load lists `base` addresses; its own hunt is run and set aside
    load_items(es, _feed(space, base), name="feed", prefix=PREFIX)
    RetroHunter(es, PREFIX, rules).run()
    new = lambda: _feed(space, base)  # noqa: E731
    t_load, res = _timed(lambda: load_items(es, _chain(new(), _feed(0, added)), name="feed", prefix=PREFIX))
    assert res.status == "loaded" and res.added == added, res
    t_delta = _delta_step(es, chunk_size=DEFAULT_CHUNK_SIZE)
    print(f"refresh (+ added chunks):     {t_load:8.2f} s   of which the diff and its chunks {t_delta:6.2f} s"
          f" ({t_delta / t_load:.0%})")  # fmt: skip

    [pending] = pending_hunts(es, PREFIX)
    clause = lookup_clause(es, "destination.ip", prefix=PREFIX, chunks={"feed": pending.chunks})
    lookups = len(clause["bool"]["should"])
    t_count, matched = _timed(lambda: es.count(index=f"{PREFIX}-events-*", query=clause)["count"])
    t_hunt, [hunt] = _timed(lambda: RetroHunter(es, PREFIX, rules).run())
    assert hunt.status == "done" and hunt.alerts == matched, (hunt, matched)
    print(f"hunt: {hunt.units} units, {lookups} terms lookup(s) per query, {hunt.hits:,} matches, "
          f"{hunt.alerts:,} alerts in {t_hunt:8.2f} s  ({events / t_hunt:,.0f} events/s)")  # fmt: skip

    def per_indicator() -> int:
        total = 0
        for i in range(added):
            q = {"term": {"destination.ip": _ip(i)}}
            total += int(es.count(index=f"{PREFIX}-events-*", query=q)["count"])
        return total

    t_each, each = _timed(per_indicator)
    assert each == matched, (each, matched)
    print(f"count via the added chunks:   {t_count * 1000:9.1f} ms")
    print(f"one count per added indicator:{t_each * 1000:9.1f} ms   ratio per-indicator / chunks "
          f"{t_each / t_count:8.1f}")  # fmt: skip
    print(f"whole hunt (alerts written) / per-indicator counts only: {t_hunt / t_each:6.2f}")


def _delta_step(es: Elasticsearch, chunk_size: int) -> float:
    """The diff of the refresh, done again on its two generations into scratch chunks."""
    state = read_state(es, "feed", prefix=PREFIX)
    assert state is not None
    old = {"ip": list(state.doc["retired"][-1]["chunks"])}
    bulk = Bulk(es)
    kw = {"index": lookup_index(PREFIX), "feed": "scratch", "generation": 0, "generation_id": "x"}
    t, added = _timed(
        lambda: write_added(es, bulk, old=old, new=state.doc["chunks"], chunk_size=chunk_size, **kw)
    )
    delete_ids(es, lookup_index(PREFIX), added.chunk_ids())
    return float(t)


def _chain(*parts: Iterator[Indicator]) -> Iterator[Indicator]:
    for part in parts:
        yield from part

"""``silence``: a host that went quiet, judged against its own history.

Per host (one composite aggregation, no script): its events per ``bucket`` over ``history``
(a ``date_histogram`` aligned on the end of history, empty buckets counted as zero, buckets
before the host's first event left out), and its events in the last ``window``. Expected =
median per bucket × window / bucket; the host is quiet when it sent fewer than ``fraction`` of
that. Hosts seen for less than ``min_history``, or expected to send fewer than ``min_expected``,
are never judged (a brand-new or barely active host is not "quiet").

One alert per host per quiet period: while an alert is ``ongoing`` each run updates its figures;
the run that finds the host back above the threshold ends the period (``ended``). Id = hash(rule,
host, start of the window that first found it quiet).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from detectors.alerts import alert_id, alert_index_for, base_alert, update_alerts, write_alerts
from detectors.builders.context import RunContext, RunStats
from detectors.model import Rule, SilenceParams
from detectors.query import alerts_pattern, events_pattern, iso, iter_composite, rule_query, set_path


@dataclass(frozen=True, slots=True)
class HostRate:
    host: str
    observed: int
    median: float
    expected: float
    first_seen: str
    last_seen: str


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _rates(
    rule: Rule, ctx: RunContext, p: SilenceParams, stats: RunStats, quiet: Mapping[str, float]
) -> list[HostRate]:
    """The hosts to judge and their rates. ``quiet``: hosts with an ongoing alert → the rate
    expected when they went quiet; they are judged against it whatever their history says now
    (a long silence drags their own median down to nothing)."""
    end = _ms(ctx.window.end)
    start, hist = end - p.window * 1000, end - (p.window + p.history) * 1000
    bucket = p.bucket * 1000

    def rng(lo: int | None, hi: int) -> dict[str, Any]:
        r: dict[str, Any] = {"lt": hi, "format": "epoch_millis"}
        return {"range": {p.clock: r | ({} if lo is None else {"gte": lo})}}

    histogram = {
        "field": p.clock,
        "fixed_interval": f"{p.bucket}s",
        "offset": f"{start % bucket}ms",
        "min_doc_count": 0,
        "extended_bounds": {"min": hist, "max": start - 1},
    }
    aggs = {
        "first": {"min": {"field": p.clock}},
        "last": {"max": {"field": p.clock}},
        "recent": {"filter": rng(start, end)},
        "hist": {"filter": rng(None, start), "aggs": {"b": {"date_histogram": histogram}}},
    }
    query = rule_query(ctx.es, rule, ctx.prefix, extra=[rng(hist, end)])
    out: list[HostRate] = []
    sources = [{"h": {"terms": {"field": p.host_field}}}]
    # hosts per page × buckets per host stays well under search.max_buckets (65,536)
    page = max(1, min(100, 40_000 // (p.history // p.bucket + 1)))
    for b in iter_composite(ctx.es, events_pattern(ctx.prefix), query, sources, aggs, page_size=page):
        stats.hits += int(b["doc_count"])
        host = str(b["key"]["h"])
        stored = quiet.get(host)
        first = int(b["first"]["value"])
        if first > start - p.min_history * 1000 and stored is None:
            continue  # too new to have a rate of its own
        # whole buckets only: the one holding the first event is partial
        counts = [int(x["doc_count"]) for x in b["hist"]["b"]["buckets"] if int(x["key"]) >= first]
        if len(counts) < 2 and stored is None:
            continue
        median = float(statistics.median(counts)) if counts else 0.0
        expected = median * p.window / p.bucket
        if stored is not None:
            expected = max(expected, stored)
        elif expected < p.min_expected:
            continue
        out.append(
            HostRate(
                host,
                int(b["recent"]["doc_count"]),
                median,
                expected,
                str(b["first"]["value_as_string"]),
                str(b["last"]["value_as_string"]),
            )
        )
    return out


def _ongoing(rule: Rule, ctx: RunContext) -> dict[str, dict[str, Any]]:
    resp = ctx.es.search(
        index=alerts_pattern(ctx.prefix),
        query={
            "bool": {"filter": [{"term": {"rule.id": rule.id}}, {"term": {"alert.silence.ongoing": True}}]}
        },
        size=10_000,
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    return {str(h["_source"]["alert"]["group"]["key"]): h for h in resp["hits"]["hits"]}


def _figures(ctx: RunContext, p: SilenceParams, r: HostRate) -> dict[str, Any]:
    end = ctx.window.end
    return {
        "window_start": iso(end - timedelta(seconds=p.window)),
        "window_end": iso(end),
        "observed": r.observed,
        "expected": round(r.expected, 3),
        "median_per_bucket": r.median,
        "last_seen": r.last_seen,
        "last_checked": iso(ctx.now),
    }


def _new_alert(rule: Rule, ctx: RunContext, p: SilenceParams, r: HostRate) -> tuple[str, str, dict[str, Any]]:
    since = iso(ctx.window.end - timedelta(seconds=p.window))
    aid = alert_id(rule.id, "silence", r.host, since)
    doc = base_alert(rule, ctx.now, aid)
    set_path(doc, p.host_field, r.host)
    doc["alert"]["original_time"] = since
    doc["alert"]["group"] = {"fields": [p.host_field], "values": [r.host], "key": r.host}
    doc["alert"]["silence"] = _figures(ctx, p, r) | {
        "since": since,
        "ongoing": True,
        "first_seen": r.first_seen,
        "bucket": p.bucket,
        "history": p.history,
        "fraction": p.fraction,
        "clock": p.clock,
    }
    doc["message"] = (
        f"{r.host} went quiet: {r.observed} events in the {p.window}s to {iso(ctx.window.end)}, "
        f"expected about {r.expected:.0f} (median {r.median:g} per {p.bucket}s over {p.history}s)"
    )
    return alert_index_for(ctx.prefix, since, ctx.now), aid, doc


def build_silence(rule: Rule, ctx: RunContext) -> RunStats:
    assert isinstance(rule.params, SilenceParams)
    p = rule.params
    stats = RunStats()
    ongoing = _ongoing(rule, ctx)
    expected = {h: float(a["_source"]["alert"]["silence"]["expected"]) for h, a in ongoing.items()}
    rates = _rates(rule, ctx, p, stats, expected)
    seen = {r.host for r in rates}
    for host, alert in ongoing.items():  # no event at all in the history: still quiet
        if host not in seen:
            sil = alert["_source"]["alert"]["silence"]
            rates.append(HostRate(host, 0, 0.0, expected[host], sil["first_seen"], sil["last_seen"]))
    created: list[tuple[str, str, dict[str, Any]]] = []
    updates: list[tuple[str, str, dict[str, Any]]] = []
    for r in rates:
        quiet = r.observed < p.fraction * r.expected
        old = ongoing.get(r.host)
        if quiet and old is None:
            created.append(_new_alert(rule, ctx, p, r))
        elif old is not None:
            part = _figures(ctx, p, r)
            if not quiet:  # back to its usual rate: the quiet period is over
                part |= {"ongoing": False, "ended": iso(ctx.window.end)}
            updates.append((old["_index"], old["_id"], {"alert": {"silence": part}}))
    res = write_alerts(ctx.es, created)
    stats.alerts += res.created
    stats.duplicates += res.duplicates
    stats.updated += update_alerts(ctx.es, updates)
    return stats

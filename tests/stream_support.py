"""What the stream detection tests share: alerts read back for comparison, and the scheduled
engine run over a given rule set."""

from __future__ import annotations

import copy
from typing import Any

from elasticsearch import Elasticsearch

from detectors.engine import Engine, EngineOptions, RunResult
from detectors.model import Rule

#: fields that say when an alert was written, not what it is
TIMING = (("@timestamp",), ("alert", "status_updated"), ("alert", "run"))


def alerts(es: Elasticsearch, prefix: str) -> dict[str, dict[str, Any]]:
    """Every alert of ``prefix`` by id (``_index`` kept in the document under ``_index``)."""
    es.options(ignore_status=404).indices.refresh(index=f"{prefix}-alerts-*")
    resp = es.options(ignore_status=404).search(
        index=f"{prefix}-alerts-*", size=10_000, query={"match_all": {}}, ignore_unavailable=True,
        track_total_hits=True,
    )  # fmt: skip
    hits = resp.get("hits", {}).get("hits", [])
    assert len(hits) == resp.get("hits", {}).get("total", {}).get("value", 0), "more alerts than one page"
    return {h["_id"]: h["_source"] | {"_index": h["_index"]} for h in hits}


def untimed(doc: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for path in TIMING:
        node = out
        for part in path[:-1]:
            node = node.get(part, {})
        node.pop(path[-1], None)
    return out


def scheduled_run(es: Elasticsearch, prefix: str, rules: list[Rule]) -> list[RunResult]:
    """One run of ``rules`` over everything ingested so far (the first run: no checkpoint). With
    no ingest delay, what was indexed in the last second must be made searchable first."""
    es.options(ignore_status=404).indices.refresh(index=f"{prefix}-events*")
    results = Engine(es, prefix, rules, EngineOptions(ingest_delay=0.0)).run(rules, only_due=False)
    failed = [r.line() for r in results if r.status != "ok"]
    assert not failed, failed
    return results


def forget_alerts(es: Elasticsearch, prefix: str) -> None:
    """No alert and no rule state left: the next scheduled run starts from scratch."""
    for pattern in (f"{prefix}-alerts-*", f"{prefix}-state*"):
        names = list(es.options(ignore_status=404).indices.get(index=pattern))
        if names:
            es.indices.delete(index=",".join(names))


def assert_schedule_agrees(
    es: Elasticsearch, prefix: str, rules: list[Rule], streamed: dict[str, dict[str, Any]]
) -> None:
    """A scheduled run after the stream run adds nothing; the scheduled engine alone, from
    scratch, writes the same alerts (same ids, same documents up to the timing fields).

    The first run shows that no rule finds an alert the stream did not write, so the second,
    which compares documents, runs only the rules that fired (with every SigmaHQ rule loaded,
    a small part of them: the CI's time)."""
    results = scheduled_run(es, prefix, rules)
    assert sum(r.alerts for r in results) == 0
    assert sum(r.duplicates for r in results) == len(streamed)
    assert alerts(es, prefix).keys() == streamed.keys()
    forget_alerts(es, prefix)
    fired = {d["rule"]["id"] for d in streamed.values()}
    scheduled_run(es, prefix, [r for r in rules if r.id in fired])
    scheduled = alerts(es, prefix)
    assert scheduled.keys() == streamed.keys()
    for aid, doc in streamed.items():
        assert untimed(doc) == untimed(scheduled[aid]), aid

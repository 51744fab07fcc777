"""Helpers for the stream matcher's agreement test (no tests here): what Elasticsearch answers
for each rule, the shipped documents as indexed, and an intel oracle answered by the node."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk

from detectors.intel.lookup import lookup_clause
from detectors.model import IntelClause, IntelMatchParams, Rule
from detectors.postfilter import keeps
from detectors.query import events_pattern, iter_pages, rule_query, set_path
from detectors.setup import setup_alerts
from detectors.stream.values import keyword_text, raw_values

BATCH = 50


def documents(es: Elasticsearch, prefix: str) -> dict[str, dict[str, Any]]:
    """Every shipped event as indexed: ``_id`` → ``_source``."""
    out: dict[str, dict[str, Any]] = {}
    for page in iter_pages(es, events_pattern(prefix), {"match_all": {}}, source=True):
        for h in page:
            out[h["_id"]] = h["_source"]
    return out


def es_matches(
    es: Elasticsearch, prefix: str, rules: Sequence[Rule], docs: dict[str, dict[str, Any]]
) -> dict[str, set[str]]:
    """Each rule's hits on the node (its scheduled query, then the |fieldref post-filter). Rules
    run BATCH at a time as named clauses of one query: each hit names the rules it matched, so
    the many monthly indices are walked once per batch rather than once per rule."""
    out: dict[str, set[str]] = {r.id: set() for r in rules}
    client = es.options(request_timeout=600, retry_on_status=(429,), max_retries=5)
    for i in range(0, len(rules), BATCH):
        batch = rules[i : i + BATCH]
        named = [{"bool": {**rule_query(es, r, prefix)["bool"], "_name": r.id}} for r in batch]
        query = {"bool": {"should": named, "minimum_should_match": 1}}
        for page in iter_pages(client, events_pattern(prefix), query, source=False):
            for h in page:
                for rid in h.get("matched_queries", []):
                    out[rid].add(h["_id"])
    byid = {r.id: r for r in rules}
    return {rid: {i for i in ids if keeps(byid[rid].filter, docs[i])} for rid, ids in out.items()}


def _clauses(rules: Sequence[Rule]) -> set[tuple[str, IntelClause]]:
    out: set[tuple[str, IntelClause]] = set()
    for r in rules:
        if r.filter.intel is not None:
            out.add(("intel", r.filter.intel))
        if isinstance(r.params, IntelMatchParams):
            out.add(("intel", IntelClause(r.params.fields, r.params.feeds, r.params.types)))
        out.update(("allow", a) for a in r.exceptions.allowlists)
    return out


class NodeIntel:
    """A stand-in for the intel snapshot whose every answer comes from the node: each distinct
    (field, value) of the documents is indexed alone in a probe index of the events template,
    and the lookup clause the scheduled engine uses says which of them the lists hold."""

    def __init__(self, es: Elasticsearch, prefix: str, rules: Sequence[Rule],
                 docs: dict[str, dict[str, Any]]) -> None:  # fmt: skip
        probe = f"{prefix}-events-probe"
        setup_alerts(es, prefix)
        clauses = _clauses(rules)
        fields = sorted({f for _, c in clauses for f in c.fields})
        values = sorted({(f, keyword_text(v)) for d in docs.values() for f in fields
                         for v in raw_values(d, tuple(f.split(".")))})  # fmt: skip
        actions = []
        for n, (f, v) in enumerate(values):
            doc: dict[str, Any] = {"@timestamp": "2020-01-01T00:00:00Z"}
            set_path(doc, f, v)
            actions.append({"_index": probe, "_id": str(n), "_source": doc})
        bulk(es, actions, refresh=True)
        self.answers: dict[tuple[str, str, tuple[str, ...] | None, tuple[str, ...] | None], set[str]] = {}
        for kind, c in clauses:
            for f in c.fields:
                q = lookup_clause(es, f, kind=kind, feeds=list(c.feeds) if c.feeds else None, prefix=prefix,  # type: ignore[arg-type]
                                  types=list(c.types) if c.types else None)  # fmt: skip
                hits = {h["_id"] for page in iter_pages(es, probe, q, source=False) for h in page}
                self.answers[(kind, f, c.feeds, c.types)] = {
                    values[int(h)][1] for h in hits if values[int(h)][0] == f
                }
        es.indices.delete(index=probe)
        self.asked = 0

    def has(self, kind: str, field: str, value: str, feeds: tuple[str, ...] | None,
            types: tuple[str, ...] | None) -> bool:  # fmt: skip
        self.asked += 1
        return value in self.answers[(kind, field, feeds, types)]

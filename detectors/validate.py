"""Check rules against a cluster: build each rule's query and run it (size 0)."""

from __future__ import annotations

from collections.abc import Sequence

from elasticsearch import ApiError, Elasticsearch

from detectors.engine import _error_key, error_text
from detectors.loader import RuleError
from detectors.model import Rule
from detectors.query import events_pattern, rule_query


def check_queries(es: Elasticsearch, rules: Sequence[Rule], prefix: str) -> list[RuleError]:
    """Every rule whose query does not build or run, as a :class:`RuleError` with file and line
    (all rules are checked; nothing stops at the first error)."""
    errors: list[RuleError] = []
    for rule in rules:
        try:
            query = rule_query(es, rule, prefix)
            es.search(
                index=events_pattern(prefix),
                query=query,
                size=0,
                ignore_unavailable=True,
                allow_no_indices=True,
                track_total_hits=False,
            )
        except (ApiError, ValueError, KeyError, TypeError) as exc:
            where = rule.at(_error_key(rule, exc))
            errors.append(RuleError(f"rule {rule.id}: {error_text(exc)}", path=where.path, line=where.line))
    return errors

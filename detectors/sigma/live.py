"""``sigma check --live``: the rules that run, against the events actually indexed. A rule whose
condition cannot hold with the fields its events carry (for its event codes) cannot fire here,
and the reason names the fields that never appear. Presence is probed with size-0 ``exists``
searches, one per (event code, field), each stopped at its first hit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from elasticsearch import Elasticsearch

from detectors.query import events_pattern
from detectors.sigma.needs import fields, verdict
from detectors.sigma.rules import Converted

_BATCH = 100
Probe = tuple[str, str]  # (event code, field); field "" = any event of that code


def _probe(es: Elasticsearch, index: str, probes: Sequence[Probe]) -> set[Probe]:
    found: set[Probe] = set()
    for i in range(0, len(probes), _BATCH):
        batch = probes[i : i + _BATCH]
        body: list[dict[str, Any]] = []
        for code, field in batch:
            clauses: list[dict[str, Any]] = [{"term": {"event.code": code}}]
            if field:
                clauses.append({"exists": {"field": field}})
            body += [
                {"index": index, "ignore_unavailable": True, "allow_no_indices": True},
                {
                    "size": 0,
                    "terminate_after": 1,
                    "track_total_hits": True,
                    "query": {"bool": {"filter": clauses}},
                },
            ]
        for probe, resp in zip(batch, es.msearch(searches=body)["responses"], strict=True):
            if "error" in resp:
                raise RuntimeError(f"probing {probe[1] or 'events'} of event {probe[0]}: {resp['error']}")
            if resp["hits"]["total"]["value"] > 0:
                found.add(probe)
    return found


def _reason(c: Converted, present: set[Probe], index: str) -> str | None:
    """Why ``c`` cannot fire on what is indexed, or None when it might."""
    assert c.rule is not None and c.rule.sigma is not None and c.rule.sigma.needs is not None
    need, codes = c.rule.sigma.needs, c.rule.filter.event_codes
    shown = ", ".join(codes)
    names = sorted(set(fields(need)))
    if not any((code, "") in present for code in codes):
        return f"no Sysmon event {shown} in {index}: {', '.join(names) or 'its fields'} never appear"

    def has(field: str) -> bool:
        return any((code, field) in present for code in codes)

    if verdict(need, has) != "no":
        return None
    absent = [f for f in names if not has(f)]
    return f"{', '.join(absent)} never appear in {index} for Sysmon event {shown}"


def live_check(es: Elasticsearch, prefix: str, converted: Iterable[Converted]) -> list[Converted]:
    """``converted`` with each running rule that cannot fire on the indexed events moved to
    cannot fire here."""
    items = list(converted)
    index = events_pattern(prefix)
    checked = [c for c in items if c.rule is not None and c.rule.sigma is not None and c.rule.sigma.needs]
    probes: set[Probe] = set()
    for c in checked:
        assert c.rule is not None and c.rule.sigma is not None and c.rule.sigma.needs is not None
        names = ["", *sorted(set(fields(c.rule.sigma.needs)))]
        probes.update((code, f) for code in c.rule.filter.event_codes for f in names)
    present = _probe(es, index, sorted(probes))
    out: list[Converted] = []
    for c in items:
        reason = _reason(c, present, index) if c in checked else None
        out.append(c if reason is None else replace(c, outcome="cannot_fire", reason=reason, rule=None))
    return out

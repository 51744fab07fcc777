"""What the ``sequence_gap`` builder and its alerts share: the fields, the (host, channel)
groups and the queries on them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from detectors.builders.context import RunContext
from detectors.model import Rule, SequenceGapParams
from detectors.query import Window, rule_query
from shipper.errors import ClusterError

RECORD = "winlog.record_id"
CREATED = "event.created"
SOURCE = ["@timestamp", CREATED, RECORD, "host", "winlog.channel", "winlog.computer_name"]


@dataclass(frozen=True, slots=True)
class Group:
    """One (host, channel) the window's records touch: their id and time span (epoch ms)."""

    host: str
    channel: str
    low: int
    high: int
    first_ms: int
    last_ms: int


def msearch(ctx: RunContext, bodies: Sequence[dict[str, Any]], index: str) -> list[dict[str, Any]]:
    """One ``msearch`` of ``bodies`` on ``index``; an error in any part fails the run."""
    if not bodies:
        return []
    searches: list[dict[str, Any]] = []
    for b in bodies:
        searches += [{"index": index, "ignore_unavailable": True, "allow_no_indices": True}, b]
    out: list[dict[str, Any]] = ctx.es.msearch(searches=searches)["responses"]
    for r in out:
        if "error" in r:
            raise ClusterError(f"sequence_gap search failed: {str(r['error'])[:300]}")
    return out


def base_query(
    rule: Rule, ctx: RunContext, extra: Sequence[dict[str, Any]] = (), window: Window | None = None
) -> dict[str, Any]:
    """The rule's records (its filter, minus exceptions) that carry an id and a write time."""
    must = [{"exists": {"field": RECORD}}, {"exists": {"field": CREATED}}, *extra]
    return rule_query(ctx.es, rule, ctx.prefix, window=window, extra=must)


def group_clause(p: SequenceGapParams, host: str, channel: str) -> list[dict[str, Any]]:
    return [{"term": {p.host_field: host}}, {"term": {p.channel_field: channel}}]

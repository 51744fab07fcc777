"""What every builder shares: the run's context and counts, and small query helpers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

from detectors.ancestry import DEFAULT_DEPTH
from detectors.intel.lookup import ChunkLists
from detectors.model import Rule
from detectors.query import PAGE_SIZE, Window, iso


@dataclass(frozen=True, slots=True)
class HuntScope:
    """A retro-hunt's run of an event rule (``query`` / ``intel_match`` builders): one events
    index, the intel match against ``chunks`` only (the indicators a load added), ``filters``
    added to the rule's query, and ``mark`` called on each alert after its intel enrichment —
    it annotates the alert and returns False to drop it (no current listing backs it)."""

    index: str
    chunks: ChunkLists | None  # None: the feeds' current lists
    filters: tuple[dict[str, Any], ...]
    mark: Callable[[dict[str, Any], dict[str, Any]], bool]


@dataclass(slots=True)
class RunContext:
    es: Elasticsearch
    prefix: str
    now: datetime
    window: Window
    ancestry_depth: int = DEFAULT_DEPTH
    page_size: int = PAGE_SIZE
    hunt: HuntScope | None = None


@dataclass(slots=True)
class RunStats:
    hits: int = 0
    alerts: int = 0
    duplicates: int = 0
    suppressed: int = 0
    updated: int = 0
    #: retro-hunt matches left out because no current listing backs them any more
    unlisted: int = 0
    notes: list[str] = field(default_factory=list)


Builder = Callable[[Rule, RunContext], RunStats]

# the earliest event of a bucket (patient zero, a new value's first sighting)
FIRST_EVENT = {"top_hits": {"size": 1, "sort": [{"@timestamp": {"order": "asc"}}]}}


def ms_to_iso(ms: float | int | None) -> str | None:
    if ms is None:
        return None
    return iso(datetime.fromtimestamp(float(ms) / 1000.0, tz=UTC))


def field_values(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, list):
        return [str(x) for x in v if x is not None]
    return [str(v)]


def key_clause(fields: Sequence[str], key: Sequence[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for f, v in zip(fields, key, strict=True):
        if v is None:
            out.append({"bool": {"must_not": [{"exists": {"field": f}}]}})
        else:
            out.append({"term": {f: v}})
    return out

"""What ``hunt process`` and ``hunt hash`` share: events read in time order, and one row per
event with the same columns."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from elasticsearch import Elasticsearch

from detectors.hunt.describe import describe
from detectors.hunt.output import Column
from detectors.query import events_pattern, get_path, iter_pages

TIME_ORDER = ({"@timestamp": {"order": "asc"}}, "_shard_doc")
SOURCE = (
    "@timestamp",
    "host.name",
    "event.code",
    "event.action",
    "process.*",
    "file.*",
    "registry.*",
    "dns.*",
    "source.*",
    "destination.*",
    "network.*",
    "user.*",
    "message",
    "sysmon.*",
    "winlog.event_data.*",
)

_GUID = re.compile(r"\{?([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})\}?")


def normalise_entity_id(value: str) -> str:
    """A process GUID as the shipper stores it (braced, upper-case); anything else unchanged."""
    text = value.strip()
    m = _GUID.fullmatch(text)
    return "{" + m.group(1).upper() + "}" if m else text


def events_in_time_order(
    es: Elasticsearch, prefix: str, query: dict[str, Any], limit: int | None, page_size: int = 1000
) -> Iterator[dict[str, Any]]:
    """Hits of ``query`` by ``@timestamp`` (PIT + ``search_after``: any number), at most ``limit``."""
    size = page_size if limit is None else max(1, min(page_size, limit))
    n = 0
    for page in iter_pages(
        es, events_pattern(prefix), query, source=list(SOURCE), page_size=size, sort=TIME_ORDER
    ):
        for hit in page:
            if limit is not None and n >= limit:
                return
            yield hit
            n += 1


def event_row(hit: dict[str, Any], relation: str) -> dict[str, Any]:
    src = hit["_source"]
    return {
        "time": src.get("@timestamp"),
        "host": get_path(src, "host.name"),
        "relation": relation,
        "event_code": get_path(src, "event.code"),
        "action": get_path(src, "event.action"),
        "executable": get_path(src, "process.executable"),
        "pid": get_path(src, "process.pid"),
        "entity_id": get_path(src, "process.entity_id"),
        "detail": describe(src),
        "event_id": hit.get("_id"),
        "index": hit.get("_index"),
    }


def timeline_columns(relation_title: str = "RELATION") -> list[Column]:
    return [
        Column("time", "TIME"),
        Column("host", "HOST", width=24),
        Column("relation", relation_title),
        Column("event_code", "EV", align="right"),
        Column("action", "ACTION", width=28),
        Column("executable", "EXECUTABLE", width=56),
        Column("pid", "PID", align="right"),
        Column("entity_id", "ENTITY ID"),
        Column("detail", "DETAIL", width=100),
        Column("event_id", "EVENT ID", in_table=False),
        Column("index", "INDEX", in_table=False),
    ]

"""``hunt process ENTITY_ID``: one process, as a timeline.

First its ancestry, root first (:func:`detectors.ancestry.build_chains`, one query per level),
then in ``@timestamp`` order its own events (``process.entity_id``), the creation of its
children (event 1 with ``process.parent.entity_id``) and the events that target it (events 8
and 10: ``TargetProcessGuid`` / ``TargetProcessGUID``), all on the process's host.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch

from detectors.ancestry import DEFAULT_DEPTH, Chain, build_chains
from detectors.hunt.scope import Scope
from detectors.hunt.timeline import event_row, events_in_time_order, normalise_entity_id
from detectors.query import events_pattern, get_path
from shipper.sysmon.events import EVENTS

_TARGET_FIELDS = ("winlog.event_data.TargetProcessGuid", "winlog.event_data.TargetProcessGUID")


class ProcessNotFound(LookupError):
    """No event names the process, or it is named on several hosts and none was chosen."""


@dataclass(frozen=True, slots=True)
class ProcessRequest:
    entity_id: str
    scope: Scope = field(default_factory=Scope)
    depth: int = DEFAULT_DEPTH
    limit: int | None = None


def locate(es: Elasticsearch, prefix: str, entity_id: str, hosts: tuple[str, ...]) -> str:
    """The one host whose events name ``entity_id`` (among ``hosts`` when given)."""
    flt: list[dict[str, Any]] = [{"term": {"process.entity_id": entity_id}}]
    if hosts:
        flt.append({"terms": {"host.name": list(hosts)}})
    resp = es.search(
        index=events_pattern(prefix),
        size=0,
        query={"bool": {"filter": flt}},
        aggs={"h": {"terms": {"field": "host.name", "size": 20}}},
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    found = [str(b["key"]) for b in (resp.get("aggregations") or {}).get("h", {}).get("buckets", [])]
    where = f" on {', '.join(hosts)}" if hosts else ""
    if not found:
        raise ProcessNotFound(f"no event of process {entity_id}{where} in {events_pattern(prefix)}")
    if len(found) > 1:
        raise ProcessNotFound(
            f"process {entity_id} appears on {len(found)} hosts ({', '.join(found)}): choose one with --host"
        )
    return found[0]


def ancestry_rows(chain: Chain) -> list[dict[str, Any]]:
    """The chain, root first, down to the process itself (``depth`` 0); a missing creation
    event or a cut chain is a row of its own, so the reader sees where the chain ends."""
    rows: list[dict[str, Any]] = []
    links = chain.links
    if chain.truncated:
        rows.append(
            {
                "relation": "truncated",
                "host": chain.host,
                "depth": -len(links),
                "detail": "more ancestors (raise --depth)",
            }
        )
    elif chain.broken:
        rows.append(
            {
                "relation": "missing",
                "host": chain.host,
                "entity_id": chain.missing_entity_id,
                "depth": -len(links),
                "detail": "creation event not shipped (started before the log, or lost)",
            }
        )
    for level, link in reversed(list(enumerate(links))):
        rows.append(
            {
                "time": link.start,
                "host": chain.host,
                "relation": "process" if level == 0 else "ancestor",
                "depth": -level,
                "event_code": "1",
                "action": EVENTS[1].action,
                "executable": link.executable,
                "pid": link.pid,
                "entity_id": link.entity_id,
                "detail": " ".join(
                    p for p in (link.command_line or "", f"[{link.user}]" if link.user else "") if p
                ),
            }
        )
    return rows


def _relation(src: dict[str, Any], entity_id: str) -> str:
    if get_path(src, "process.entity_id") == entity_id:
        return "self"
    if get_path(src, "process.parent.entity_id") == entity_id:
        return "child"
    return "target"


def activity_query(req: ProcessRequest, entity_id: str, host: str) -> dict[str, Any]:
    who: list[dict[str, Any]] = [
        {"term": {"process.entity_id": entity_id}},
        {
            "bool": {
                "filter": [{"term": {"event.code": "1"}}, {"term": {"process.parent.entity_id": entity_id}}]
            }
        },
        *({"term": {f: entity_id}} for f in _TARGET_FIELDS),
    ]
    scope = Scope(
        hosts=(host,), since=req.scope.since, until=req.scope.until, event_codes=req.scope.event_codes
    )
    # its own creation event is the ancestry's last row already
    start = {"bool": {"filter": [{"term": {"event.code": "1"}}, {"term": {"process.entity_id": entity_id}}]}}
    return {
        "bool": {
            "filter": [*scope.clauses(), {"bool": {"should": who, "minimum_should_match": 1}}],
            "must_not": [start],
        }
    }


def process_rows(es: Elasticsearch, prefix: str, req: ProcessRequest) -> Iterator[dict[str, Any]]:
    """The ancestry rows, then the activity in time order (at most ``limit`` events)."""
    entity_id = normalise_entity_id(req.entity_id)
    host = locate(es, prefix, entity_id, req.scope.hosts)
    chain = build_chains(es, prefix, [(host, entity_id)], depth=req.depth)[(host, entity_id)]
    yield from ancestry_rows(chain)
    for hit in events_in_time_order(es, prefix, activity_query(req, entity_id, host), req.limit):
        yield event_row(hit, _relation(hit["_source"], entity_id))

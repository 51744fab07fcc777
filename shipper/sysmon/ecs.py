"""Sysmon RawEvent → ECS document (docs/ecs-mapping.md). Pure: no I/O, never raises.

Public API: :data:`ECS_VERSION`, :func:`to_ecs`, :func:`to_ecs_and_id`, :func:`error_document`,
:func:`document_id`, :func:`emitted_fields` (and :data:`EMITTED_FIELDS`).

The mapper works on a normalised copy of the EventData; every rule that consumes a field removes
it from that copy, and what is left goes to ``winlog.event_data``. A field whose value cannot be
converted is not consumed: it stays raw under ``winlog.event_data`` and the document becomes a
``pipeline_error`` naming it.

This module builds the document's frame (event, times, host, related, errors); the EventData
rules are split by concern as in the native core's ``map/``: ``map_event_data`` (plain copies,
then ``map_process``, ``map_file``, ``map_hashes``, ``map_network``, ``map_dns``,
``map_registry``), ``map_winlog``, ``document_id``, all on ``map_tree``'s document and state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from shipper.raw import RawEvent
from shipper.sysmon.document_id import document_id, document_id_of
from shipper.sysmon.events import EVENTS
from shipper.sysmon.fields import EMITTED_FIELDS, MULTI_FIELD_PATHS
from shipper.sysmon.map_event_data import map_event_data
from shipper.sysmon.map_tree import Doc, State, int_or_none, raw_data, sub, text
from shipper.sysmon.map_winlog import LOG_LEVELS, map_winlog
from shipper.sysmon.normalise import (
    iso_to_millis,
    normalise_event_data,
    parse_iso_time,
    parse_utc_time,
    to_text,
)

__all__ = [
    "ECS_VERSION",
    "EMITTED_FIELDS",
    "MULTI_FIELD_PATHS",
    "document_id",
    "emitted_fields",
    "error_document",
    "to_ecs",
    "to_ecs_and_id",
]

ECS_VERSION: Final = "8.17.0"
MODULE: Final = "sysmon"
DATASET: Final = "sysmon.operational"


def emitted_fields() -> Mapping[str, str]:
    """Every ECS field path (dotted) the mapper can emit → its Elasticsearch type.

    ``winlog.event_data.*`` is an object of keywords. See :mod:`shipper.sysmon.fields`.
    """
    return EMITTED_FIELDS


def _event_fields(raw: RawEvent, eid: int | None, event_code: str) -> Doc:
    event: Doc = {
        "kind": "event",
        "code": event_code,
        "module": MODULE,
        "dataset": DATASET,
        "provider": text(raw.provider),
    }
    spec = EVENTS.get(eid) if eid is not None else None
    if spec is not None:
        if spec.category:
            event["category"] = list(spec.category)
        event["type"] = list(spec.type)
        event["action"] = spec.action
    return event


def _times(raw: RawEvent, st: State, doc: Doc, event: Doc) -> None:
    """``event.created`` and ``@timestamp`` (UtcTime, else TimeCreated)."""
    created: str | None = None
    if raw.time_created is not None:
        created = parse_iso_time(text(raw.time_created))
        if created is None:
            st.errors.append(f"TimeCreated: cannot convert {raw.time_created!r} to a time")
        else:
            event["created"] = created
    utc = st.data.get("UtcTime")
    if utc is not None:
        timestamp = parse_utc_time(utc)
        if timestamp is None:
            st.fail("UtcTime", utc, "a time")
        else:
            doc["@timestamp"] = timestamp
            del st.data["UtcTime"]
    if "@timestamp" not in doc and created is not None:
        doc["@timestamp"] = iso_to_millis(created)


def _related(st: State) -> Doc:
    related: Doc = {}
    if st.users:
        related["user"] = st.users
    if st.hashes:
        related["hash"] = st.hashes
    if st.ips:
        related["ip"] = st.ips
    if st.hosts:
        related["hosts"] = st.hosts
    return related


def _map(raw: RawEvent, data: dict[str, str]) -> Doc:
    """Map ``raw`` whose normalised EventData is ``data`` (consumed: the caller's copy)."""
    eid = raw.event_id if isinstance(raw.event_id, int) and not isinstance(raw.event_id, bool) else None
    event_code = str(eid) if eid is not None else to_text(raw.event_id)
    st = State(data)
    doc: Doc = {}
    event = _event_fields(raw, eid, event_code)
    _times(raw, st, doc, event)
    doc["event"] = event

    if raw.computer:
        computer = text(raw.computer)
        doc["host"] = {"name": computer, "hostname": computer.lower()}
    level = int_or_none(raw.level)
    if level is not None and level in LOG_LEVELS:
        doc["log"] = {"level": LOG_LEVELS[level]}
    rule = st.data.pop("RuleName", None)
    if rule is not None:
        doc["rule"] = {"name": rule}
    if raw.user_sid:
        doc["user"] = {"id": text(raw.user_sid)}

    map_event_data(st, doc, eid)
    related = _related(st)
    if related:
        doc["related"] = related
    map_winlog(raw, st, doc, event_code)
    doc["ecs"] = {"version": ECS_VERSION}

    if st.errors:
        _mark_error(doc, raw, "; ".join(st.errors))
    return doc


def _original(raw: RawEvent) -> str:
    if raw.original:
        return to_text(raw.original)
    try:
        return orjson.dumps(raw.event_data, default=to_text, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, ValueError):
        return repr(raw.event_data)


def _mark_error(doc: Doc, raw: RawEvent, message: str) -> None:
    event = sub(doc, "event")
    event["kind"] = "pipeline_error"
    event["original"] = _original(raw)
    error = sub(doc, "error")
    previous = error.get("message")  # a Sysmon error report's own message (event 255)
    error["message"] = [previous, message] if isinstance(previous, str) else message
    error["type"] = "mapping"


def _fallback(raw: RawEvent, exc: Exception) -> Doc:
    """The document for an event the mapper itself failed on: everything raw, tagged."""
    message = f"mapping failed: {type(exc).__name__}: {exc}"
    try:
        data = raw.event_data if isinstance(raw.event_data, Mapping) else {}
        event_data = {to_text(k): to_text(v) for k, v in data.items()}
        doc: Doc = {
            "event": {
                "kind": "pipeline_error",
                "code": to_text(raw.event_id),
                "module": MODULE,
                "dataset": DATASET,
                "provider": to_text(raw.provider),
                "original": _original(raw),
            },
            "error": {"type": "mapping", "message": message},
            "winlog": {"event_data": event_data} if event_data else {},
            "ecs": {"version": ECS_VERSION},
        }
        if not doc["winlog"]:
            del doc["winlog"]
        return doc
    except Exception:
        return {
            "event": {"kind": "pipeline_error", "module": MODULE, "dataset": DATASET},
            "error": {"type": "mapping", "message": message},
            "ecs": {"version": ECS_VERSION},
        }


def to_ecs(raw: RawEvent) -> dict[str, Any]:
    """The nested ECS document of one event. Never raises: a value that cannot be converted is
    kept raw under ``winlog.event_data`` and the document is tagged ``pipeline_error``."""
    try:
        return _map(raw, normalise_event_data(raw_data(raw)))
    except Exception as exc:  # the mapper's own bug must not stop a stream of millions
        return _fallback(raw, exc)


def to_ecs_and_id(raw: RawEvent) -> tuple[dict[str, Any], str]:
    """``(to_ecs(raw), document_id(raw))`` with the EventData normalised once, not twice."""
    try:
        data = normalise_event_data(raw_data(raw))
    except Exception:
        return to_ecs(raw), document_id(raw)
    doc_id = document_id_of(raw, data)  # before the mapper consumes ``data``
    try:
        return _map(raw, data), doc_id
    except Exception as exc:  # the mapper's own bug must not stop a stream of millions
        return _fallback(raw, exc), doc_id


def error_document(
    kind: str,
    message: str,
    source: str,
    position: str,
    original: str | None,
    when: str | None = None,
) -> dict[str, Any]:
    """The document for a record a reader could not read at all (a ``ReadError``).

    ``when`` is an ISO-8601 time (e.g. the read time) for ``@timestamp``; without it the
    document has none and the sink decides.
    """
    where = f"{source} ({position})" if position else source
    event: Doc = {"kind": "pipeline_error", "module": MODULE, "dataset": DATASET}
    if original is not None:
        event["original"] = original
    doc: Doc = {}
    if when is not None:
        parsed = parse_iso_time(when)
        if parsed is not None:
            doc["@timestamp"] = iso_to_millis(parsed)
    doc["event"] = event
    doc["error"] = {"type": kind, "message": f"{where}: {message}" if where else message}
    if source:
        doc["log"] = {"file": {"path": source}}
    doc["ecs"] = {"version": ECS_VERSION}
    return doc

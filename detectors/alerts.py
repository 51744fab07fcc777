"""Alert documents: building them from a rule and its source event(s), writing them exactly once,
and changing their triage status.

Ids are deterministic (a hash of the rule id and the source event's index and id, or of the group
key and window), and alerts go to ``<prefix>-alerts-YYYY.MM`` of the *source event's* time, so a
rerun, an overlapping window or a second scheduler always produces the same (index, _id) and
``op_type: create`` turns the repeat into a 409, counted as a duplicate.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

import orjson
from elasticsearch import ConflictError, Elasticsearch

from detectors.model import SEVERITY_NUMBER, Rule
from detectors.query import alerts_pattern, get_path, iso, set_path
from detectors.setup import alerts_index
from shipper.errors import ClusterError

Status = Literal["open", "acknowledged", "closed"]
STATUSES: tuple[str, ...] = ("open", "acknowledged", "closed")

#: What an alert copies from its event when the rule does not say (roots present are copied).
DEFAULT_COPY: tuple[str, ...] = (
    "host",
    "user",
    "process",
    "file",
    "network",
    "source",
    "destination",
    "dns",
    "registry",
    "related",
    "winlog.event_data",
    "winlog.record_id",
    "winlog.computer_name",
    "message",
)
#: Always copied (they identify the source record).
ALWAYS_COPY: tuple[str, ...] = (
    "winlog.record_id",
    "winlog.computer_name",
    "winlog.channel",
    "winlog.event_id",
)
_EVENT_COPY = ("code", "action", "category", "type", "provider", "module", "dataset", "created", "ingested")


def alert_id(rule_id: str, *parts: object) -> str:
    material = "\x1f".join([rule_id, *(str(p) for p in parts)]).encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(hashlib.blake2b(material, digest_size=20).digest()).rstrip(b"=").decode()


def month_suffix(timestamp: str | None, fallback: datetime) -> str:
    """``YYYY.MM`` of an ISO timestamp (the source event's), else of ``fallback``."""
    if timestamp and len(timestamp) >= 7 and timestamp[4] == "-":
        return f"{timestamp[:4]}.{timestamp[5:7]}"
    return f"{fallback:%Y.%m}"


def rule_doc(rule: Rule) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": rule.id,
        "name": rule.name,
        "description": rule.description,
        "ruleset": "builtin" if rule.builtin else "custom",
        "version": str(rule.version),
        "category": rule.type,
    }
    if rule.references:
        d["reference"] = list(rule.references)
    if rule.tags:
        d["tags"] = list(rule.tags)
    if rule.sigma is not None:
        meta = rule.sigma
        d.update(ruleset="sigma", uuid=meta.uuid, version=meta.modified or meta.date or "1")
        if meta.author:
            d["author"] = [a.strip() for a in meta.author.split(",") if a.strip()]
        if meta.license:
            d["license"] = meta.license
    return d


def sigma_doc(rule: Rule) -> dict[str, Any] | None:
    """``sigma.*`` of an alert: what ECS has no field for (status, level, false positives)."""
    meta = rule.sigma
    if meta is None:
        return None
    d: dict[str, Any] = {"level": meta.level, "logsource": dict(meta.logsource)}
    if meta.status:
        d["status"] = meta.status
    if meta.false_positives:
        d["false_positives"] = list(meta.false_positives)
    return d


def _technique_ref(tid: str) -> str:
    return f"https://attack.mitre.org/techniques/{tid.replace('.', '/')}/"


def threat_doc(rule: Rule) -> dict[str, Any]:
    """``threat.*`` as Elastic writes it: a sub-technique (``T1059.001``, named ``Parent: Sub``)
    is ``threat.technique`` T1059 (the parent's name) with ``threat.technique.subtechnique``
    T1059.001 (the sub-technique's name); without a known name the id stands for it."""
    techniques: dict[str, str] = {}  # parent id → name, in order
    subs: dict[str, str] = {}
    for t in (t for th in rule.threat for t in th.techniques):
        parent_id, _, sub = t.id.partition(".")
        parent_name, sep, sub_name = t.name.partition(": ")
        if not sub:
            techniques.setdefault(t.id, t.name)
            continue
        known = sep and t.name != t.id
        if not techniques.get(parent_id) or techniques[parent_id] == parent_id:
            techniques[parent_id] = parent_name if known else parent_id
        subs.setdefault(t.id, sub_name if known else t.name)
    doc: dict[str, Any] = {
        "framework": "MITRE ATT&CK",
        "tactic": {
            "id": [th.tactic_id for th in rule.threat],
            "name": [th.tactic_name for th in rule.threat],
            "reference": [f"https://attack.mitre.org/tactics/{th.tactic_id}/" for th in rule.threat],
        },
        "technique": {
            "id": list(techniques),
            "name": list(techniques.values()),
            "reference": [_technique_ref(i) for i in techniques],
        },
    }
    if subs:
        doc["technique"]["subtechnique"] = {
            "id": list(subs),
            "name": list(subs.values()),
            "reference": [_technique_ref(i) for i in subs],
        }
    return doc


def _static_parts(rule: Rule) -> bytes:
    """``rule``, ``threat`` and ``sigma`` of the rule's alerts, serialized once per rule object
    (a rule's alerts are written by the thousand; loading the bytes gives each its own copy)."""
    key = id(rule)
    hit = _STATIC.get(key)
    if hit is not None and hit[0] is rule:
        return hit[1]
    parts: dict[str, Any] = {"rule": rule_doc(rule), "threat": threat_doc(rule)}
    if (sigma := sigma_doc(rule)) is not None:
        parts["sigma"] = sigma
    raw = orjson.dumps(parts)
    if len(_STATIC) >= _STATIC_MAX:
        _STATIC.clear()
    _STATIC[key] = (rule, raw)
    return raw


_STATIC: dict[int, tuple[Rule, bytes]] = {}
_STATIC_MAX = 8192


def base_alert(rule: Rule, now: datetime, aid: str) -> dict[str, Any]:
    stamp = iso(now)
    doc: dict[str, Any] = {
        "@timestamp": stamp,
        "event": {
            "kind": "alert",
            "module": "sysmon",
            "dataset": "sysmon.alerts",
            "severity": SEVERITY_NUMBER[rule.severity],
            "risk_score": float(rule.risk_score),
        },
        "alert": {
            "id": aid,
            "status": "open",
            "status_updated": stamp,
            "severity": rule.severity,
            "type": rule.type,
        },
        "ecs": {"version": "8.17.0"},
    }
    doc.update(orjson.loads(_static_parts(rule)))
    return doc


def copy_fields(rule: Rule, src: dict[str, Any], into: dict[str, Any]) -> None:
    """Copy the rule's ``fields`` (roots or dotted fields; default :data:`DEFAULT_COPY`) that the
    source event has; ``event.*`` descriptors are always copied under the alert's ``event``."""
    picked: dict[str, Any] = {}
    for f in (*(rule.fields or DEFAULT_COPY), *ALWAYS_COPY):
        if f.startswith(_NOT_COPIED_PREFIXES) or f in _NOT_COPIED:
            continue
        value = get_path(src, f)
        if value is not None:
            set_path(picked, f, value)
    event = src.get("event") or {}
    picked_event = {k: event[k] for k in _EVENT_COPY if k in event and k not in into["event"]}
    # one serializer round trip copies everything picked (the alert never shares the hit's objects)
    fresh = orjson.loads(orjson.dumps([picked, picked_event]))
    _merge(into, fresh[0])
    into["event"].update(fresh[1])


_NOT_COPIED_PREFIXES = ("event.", "rule.", "alert.", "threat.")
_NOT_COPIED = frozenset({"event", "rule", "alert", "threat"})


def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    """``new``'s leaves written into ``into`` as :func:`set_path` would write them one by one."""
    for k, v in new.items():
        old = into.get(k)
        if isinstance(v, dict) and isinstance(old, dict):
            _merge(old, v)
        else:
            into[k] = v


def from_event(rule: Rule, hit: dict[str, Any], now: datetime, aid: str) -> dict[str, Any]:
    """An alert for one source event (``hit`` as returned by a search)."""
    src = hit["_source"]
    doc = base_alert(rule, now, aid)
    copy_fields(rule, src, doc)
    doc["alert"]["original_time"] = src.get("@timestamp")
    doc["alert"]["source"] = {
        "index": hit["_index"],
        "id": hit["_id"],
        "ingested": get_path(src, "event.ingested"),
    }
    return doc


@dataclass(slots=True)
class WriteResult:
    created: int = 0
    duplicates: int = 0


def create_alerts(
    es: Elasticsearch, items: Sequence[tuple[str, str, dict[str, Any]]], *, refresh: bool = False
) -> list[int]:
    """Create ``(index, id, doc)`` alerts with ``op_type: create``: the status of each, in order
    (201, or 409 for an alert that exists). Any other item error raises (the run fails and its
    checkpoint does not move). ``refresh``: searchable when this returns (the stream's alerts)."""
    statuses: list[int] = []
    for i in range(0, len(items), 1000):
        chunk = items[i : i + 1000]
        lines: list[bytes] = []
        for index, aid, doc in chunk:
            lines.append(orjson.dumps({"create": {"_index": index, "_id": aid}}))
            lines.append(orjson.dumps(doc))
        resp = es.bulk(operations=cast(Any, b"\n".join(lines) + b"\n"), refresh=refresh)
        for item in resp["items"]:
            r = item.get("create", {})
            status = int(r.get("status", 0))
            if status not in (200, 201, 409):
                raise ClusterError(
                    f"writing alert {r.get('_id')} to {r.get('_index')} failed: {r.get('error')}"
                )
            statuses.append(status)
    return statuses


def write_alerts(es: Elasticsearch, items: Sequence[tuple[str, str, dict[str, Any]]]) -> WriteResult:
    """Create ``(index, id, doc)`` alerts (:func:`create_alerts`); a 409 is a duplicate."""
    res = WriteResult()
    for status in create_alerts(es, items):
        if status == 409:
            res.duplicates += 1
        else:
            res.created += 1
    return res


def update_alerts(es: Elasticsearch, items: Sequence[tuple[str, str, dict[str, Any]]]) -> int:
    """Merge partial documents ``(index, id, doc)`` into existing alerts (``_update`` with ``doc``,
    no script): writing absolute values is idempotent. Any item error raises."""
    done = 0
    for i in range(0, len(items), 1000):
        chunk = items[i : i + 1000]
        lines: list[bytes] = []
        for index, aid, doc in chunk:
            lines.append(orjson.dumps({"update": {"_index": index, "_id": aid, "retry_on_conflict": 3}}))
            lines.append(orjson.dumps({"doc": doc}))
        resp = es.bulk(operations=cast(Any, b"\n".join(lines) + b"\n"), refresh=False)
        for item in resp["items"]:
            r = item.get("update", {})
            if int(r.get("status", 0)) not in (200, 201):
                raise ClusterError(
                    f"updating alert {r.get('_id')} in {r.get('_index')} failed: {r.get('error')}"
                )
            done += 1
    return done


def find_alerts(es: Elasticsearch, prefix: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Existing alerts by id across every month (with ``_seq_no``/``_primary_term``)."""
    wanted = sorted(set(ids))
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(wanted), 5000):
        chunk = wanted[i : i + 5000]
        resp = es.search(
            index=alerts_pattern(prefix),
            query={"ids": {"values": chunk}},
            size=len(chunk),
            seq_no_primary_term=True,
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        for h in resp["hits"]["hits"]:
            out[h["_id"]] = h
    return out


def put_alert(
    es: Elasticsearch, index: str, aid: str, doc: dict[str, Any], existing: dict[str, Any] | None
) -> bool:
    """Create (``existing`` None) or replace with optimistic concurrency; False on a conflict
    (someone else wrote it first: re-read and merge again)."""
    try:
        if existing is None:
            es.create(index=index, id=aid, document=doc, refresh=True)
        else:
            es.index(
                index=existing["_index"],
                id=aid,
                document=doc,
                if_seq_no=existing["_seq_no"],
                if_primary_term=existing["_primary_term"],
                refresh=True,
            )
    except ConflictError:
        return False
    return True


def alert_index_for(prefix: str, timestamp: str | None, now: datetime) -> str:
    return alerts_index(prefix, month_suffix(timestamp, now))


def set_status(es: Elasticsearch, prefix: str, aid: str, status: str, *, reason: str | None = None) -> str:
    """Change an alert's triage status (read-modify-write with ``if_seq_no``); returns the
    previous status. Raises ``KeyError`` for an unknown id."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    for _ in range(5):
        found = find_alerts(es, prefix, [aid]).get(aid)
        if found is None:
            raise KeyError(aid)
        previous = str(get_path(found["_source"], "alert.status") or "open")
        partial: dict[str, Any] = {"alert": {"status": status, "status_updated": iso(datetime.now(UTC))}}
        if reason:
            partial["alert"]["status_reason"] = reason
        try:
            es.update(
                index=found["_index"],
                id=aid,
                doc=partial,
                if_seq_no=found["_seq_no"],
                if_primary_term=found["_primary_term"],
                refresh=True,
            )
            return previous
        except ConflictError:
            continue
    raise ClusterError(f"alert {aid}: status kept changing under us; try again")

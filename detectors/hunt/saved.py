"""Saved stacks: ``hunt stack`` rows written to ``<prefix>-hunt-stack`` for Kibana.

Kibana cannot join events with the allowlist indices, so the stack is materialised: one document
per (stack name, by-fields, values), id :func:`row_id`, carrying the by-fields at their own event
paths (``process.hash.sha256``, typed by the events' mapping) and ``stack.*`` (count, hosts,
first/last seen, the allowlist and intel verdicts and the feeds behind them, when and over what it
was computed). A save writes every row of the stack (``known`` ones too: the dashboard filters on
``stack.allowlisted``), then deletes that stack's rows an earlier save wrote and this one did not
(values aged out of the scope), so the index holds exactly the latest save of each stack.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from detectors.heartbeat import DEFAULT_LEASE_TTL, LeaseHeartbeat
from detectors.hunt.scope import Scope
from detectors.hunt.stack import OnPage, StackError, StackRequest, StackRow, StackTotals, stack
from detectors.intel.bulk import Bulk, delete_ids, scan_ids
from detectors.query import iso, set_path
from detectors.setup import setup_alerts
from detectors.state import StateStore, default_owner


@dataclass(frozen=True, slots=True)
class SavedStack:
    """A stack the dashboard shows: its name, by-fields and event codes."""

    name: str
    fields: tuple[str, ...]
    event_codes: tuple[str, ...]


#: The stacks ``hunt save`` writes by default, each a table of the "Sysmon hunt" dashboard.
DEFAULT_STACKS: dict[str, SavedStack] = {
    s.name: s
    for s in (
        SavedStack("executables", ("process.executable", "process.hash.sha256"), ("1",)),
        SavedStack("modules", ("file.hash.sha256",), ("7",)),
        SavedStack("domains", ("dns.question.registered_domain",), ("22",)),
        SavedStack("destination-ips", ("destination.ip",), ("3",)),
    )
}
#: the lease key of a stack's save in the state index (rule ids never contain ':')
LEASE_PREFIX = "hunt-stack:"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def stack_index(prefix: str) -> str:
    return f"{prefix}-hunt-stack"


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise StackError(f"stack name {name!r}: use lower-case letters, digits, '-' and '_'")
    return name


def row_id(name: str, fields: Sequence[str], values: Sequence[Any]) -> str:
    """Deterministic: saving the same stack again replaces its rows instead of adding more."""
    key = json.dumps([name, list(fields), [str(v) for v in values]], ensure_ascii=False)
    return f"{name}:{hashlib.blake2b(key.encode(), digest_size=16).hexdigest()}"


def row_doc(
    name: str, fields: Sequence[str], row: StackRow, scope: Scope, computed_at: str
) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for f, v in zip(fields, row.values, strict=True):
        set_path(doc, f, v)
    doc["stack"] = {
        "name": name,
        "fields": list(fields),
        "values": [str(v) for v in row.values],
        "count": row.count,
        "hosts": row.hosts,
        "first_seen": row.first_seen,
        "last_seen": row.last_seen,
        "allowlisted": row.known,
        "intel_listed": bool(row.intel),
        "allowlists": list(row.allow),
        "intel_feeds": list(row.intel),
        "computed_at": computed_at,
        "scope": {
            "since": iso(scope.since) if scope.since else None,
            "until": iso(scope.until) if scope.until else None,
            "hosts": list(scope.hosts),
            "event_codes": list(scope.event_codes),
        },
    }
    return doc


@dataclass(frozen=True, slots=True)
class SaveResult:
    name: str
    rows: int
    allowlisted: int
    intel: int
    removed: int
    computed_at: str

    def line(self) -> str:
        return (
            f"saved: stack={self.name} rows={self.rows} allowlisted={self.allowlisted} "
            f"unknown={self.rows - self.allowlisted} intel={self.intel} removed={self.removed}"
        )


def save_stack(
    es: Elasticsearch,
    prefix: str,
    name: str,
    req: StackRequest,
    *,
    now: datetime | None = None,
    on_page: OnPage | None = None,
) -> SaveResult:
    """Write every row of ``req`` (``unknown_only`` and ``limit`` ignored) as stack ``name``;
    remove the rows of ``name`` that this save did not write. Refreshes the index. One save per
    stack at a time (a lease in the state index, as rules have): another one raises."""
    check_name(name)
    if any(f == "stack" or f.startswith("stack.") for f in req.fields):
        raise StackError("--by: stack.* fields cannot be saved (the saved rows' own fields)")
    req = dataclasses.replace(req, unknown_only=False, limit=None, order="value")
    if not es.indices.exists_index_template(name=stack_index(prefix)):
        setup_alerts(es, prefix)  # a save before `setup`: the rows must never get dynamic mappings
    store, key, owner = StateStore(es, prefix), f"{LEASE_PREFIX}{name}", default_owner()
    store.ensure()
    if not store.acquire(key, owner, DEFAULT_LEASE_TTL):
        holder = store.lease_holder(key)
        raise StackError(f"stack {name} is being saved by {holder[0] if holder else 'another run'}")
    try:
        with LeaseHeartbeat(store, key, owner, DEFAULT_LEASE_TTL):
            return _write(es, prefix, name, req, iso(now or datetime.now(UTC)), on_page)
    finally:
        store.release(key, owner)


def _write(
    es: Elasticsearch, prefix: str, name: str, req: StackRequest, computed_at: str, on_page: OnPage | None
) -> SaveResult:
    index = stack_index(prefix)
    totals = StackTotals()
    bulk = Bulk(es)
    for row in stack(es, prefix, req, totals, on_page):
        bulk.index(
            index,
            row_id(name, req.fields, row.values),
            row_doc(name, req.fields, row, req.scope, computed_at),
        )
    bulk.flush()
    if bulk.errors:
        doc_id, reason = bulk.errors[0]
        raise StackError(f"{index}: {len(bulk.errors)} rows not saved, e.g. {doc_id}: {reason}")
    es.indices.refresh(index=index, ignore_unavailable=True)
    removed = 0
    if es.indices.exists(index=index):
        # no _delete_by_query (a module stock nodes may lack): scan the stale ids, delete by id
        stale = {
            "bool": {
                "filter": [
                    {"term": {"stack.name": name}},
                    {"range": {"stack.computed_at": {"lt": computed_at}}},
                ]
            }
        }
        removed = delete_ids(es, index, list(scan_ids(es, index, stale)))
        es.indices.refresh(index=index)
    return SaveResult(name, bulk.written, totals.known, totals.intel, removed, computed_at)


def check_stacks(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in DEFAULT_STACKS]
    if unknown:
        raise StackError(f"no such stack: {', '.join(unknown)} (known: {', '.join(DEFAULT_STACKS)})")


def save_defaults(
    es: Elasticsearch, prefix: str, names: Sequence[str], scope: Scope, *, now: datetime | None = None
) -> list[SaveResult]:
    """Save the named default stacks (all when ``names`` is empty) over ``scope`` (its event
    codes are each stack's own)."""
    check_stacks(names)
    results = []
    for name in names or list(DEFAULT_STACKS):
        s = DEFAULT_STACKS[name]
        req = StackRequest(fields=s.fields, scope=dataclasses.replace(scope, event_codes=s.event_codes))
        results.append(save_stack(es, prefix, name, req, now=now))
    return results


def window_scope(scope: Scope, window: int | None, now: datetime | None = None) -> Scope:
    """``scope`` with ``since`` = ``window`` seconds before ``now`` (each round of a service
    saves the last ``window``, not a fixed start)."""
    if window is None:
        return scope
    return dataclasses.replace(scope, since=(now or datetime.now(UTC)) - timedelta(seconds=window))


def run_every(
    save: Callable[[], list[SaveResult]], every: float, stop: threading.Event, log: Callable[[str], None]
) -> int:
    """Call ``save`` now and then every ``every`` seconds until ``stop`` is set; a failed round
    is logged and the next one tries again (the cluster may be down). Returns the rounds run."""
    rounds = 0
    while not stop.is_set():
        try:
            for res in save():
                log(res.line())
        except Exception as exc:  # keep the service alive; the next round retries
            log(f"saved: failed: {type(exc).__name__}: {exc}")
        rounds += 1
        stop.wait(every)
    return rounds

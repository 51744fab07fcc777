"""Per-rule state and leases in ``<prefix>-state``.

Two kinds of documents, by ``_id``:

- ``state:<rule id>``: checkpoint (the end of the last examined ``event.ingested`` window), last
  run, status, hits, alerts, duration, last error. Only the lease holder writes it.
- ``lease:<rule id>``: owner and expiry. Taken with optimistic concurrency: ``create`` when
  absent, else an ``index`` with ``if_seq_no``/``if_primary_term`` of the expired (or own) lease
  that was read, so of two schedulers racing for the same rule exactly one wins. No scripts.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from detectors.query import iso
from shipper.errors import ClusterError
from shipper.templates import mappings_dir


def state_index(prefix: str) -> str:
    return f"{prefix}-state"


def state_body() -> dict[str, Any]:
    body: dict[str, Any] = json.loads((mappings_dir() / "state.json").read_text(encoding="utf-8"))
    return body


def ensure_state_index(es: Elasticsearch, prefix: str) -> bool:
    """Create ``<prefix>-state`` if missing; True when it was created."""
    if es.indices.exists(index=state_index(prefix)):
        return False
    body = state_body()
    try:
        es.indices.create(index=state_index(prefix), mappings=body["mappings"], settings=body["settings"])
    except Exception as exc:
        if "resource_already_exists" in str(exc):
            return False
        raise
    return True


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def process_start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22): with
    the pid it names one process, even after the pid is reused. None where /proc has no entry."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count from the last ")"
    return stat[stat.rfind(b")") + 2 :].split()[19].decode()


def default_owner() -> str:
    """``host:pid:start:tag``: enough for another run on this host to tell that we are gone."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{process_start_time(pid) or '-'}:{uuid.uuid4().hex[:6]}"


def holder_gone(owner: str) -> bool:
    """True when ``owner`` is a process on this host that no longer exists (killed, crashed):
    its lease can be taken over at once. Holders elsewhere are never judged from here."""
    parts = owner.split(":")
    if len(parts) < 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if not os.path.isdir("/proc"):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    started = process_start_time(pid)
    if started is None:
        return True
    return len(parts) >= 4 and parts[2] != "-" and parts[2] != started


@dataclass(frozen=True, slots=True)
class RuleState:
    rule_id: str
    checkpoint: datetime | None = None
    last_run: datetime | None = None
    last_success: datetime | None = None
    status: str = "never"
    hits: int = 0
    alerts: int = 0
    duplicates: int = 0
    duration: float = 0.0
    last_error: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    runs: int = 0

    def to_doc(self) -> dict[str, Any]:
        def t(d: datetime | None) -> str | None:
            return iso(d) if d else None

        return {
            "kind": "state",
            "rule_id": self.rule_id,
            "checkpoint": t(self.checkpoint),
            "last_run": t(self.last_run),
            "last_success": t(self.last_success),
            "status": self.status,
            "hits": self.hits,
            "alerts": self.alerts,
            "duplicates": self.duplicates,
            "duration": self.duration,
            "last_error": self.last_error,
            "window": {"start": t(self.window_start), "end": t(self.window_end)},
            "runs": self.runs,
        }

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> RuleState:
        w = d.get("window") or {}
        return cls(
            rule_id=d["rule_id"],
            checkpoint=parse_time(d.get("checkpoint")),
            last_run=parse_time(d.get("last_run")),
            last_success=parse_time(d.get("last_success")),
            status=d.get("status") or "never",
            hits=int(d.get("hits") or 0),
            alerts=int(d.get("alerts") or 0),
            duplicates=int(d.get("duplicates") or 0),
            duration=float(d.get("duration") or 0.0),
            last_error=d.get("last_error"),
            window_start=parse_time(w.get("start")),
            window_end=parse_time(w.get("end")),
            runs=int(d.get("runs") or 0),
        )


def _held_by_other(holder: str, owner: str, expires: datetime | None, now: datetime) -> bool:
    """Whether a lease keeps ``owner`` out. A released lease has no holder: free whatever its
    expiry says (it was released by a run at another clock)."""
    if not holder or holder == owner or expires is None or expires <= now:
        return False
    return not holder_gone(holder)


class StateStore:
    def __init__(self, es: Elasticsearch, prefix: str) -> None:
        self.es = es
        self.prefix = prefix
        self.index = state_index(prefix)

    def ensure(self) -> None:
        ensure_state_index(self.es, self.prefix)

    def get(self, rule_id: str) -> RuleState:
        try:
            resp = self.es.get(index=self.index, id=f"state:{rule_id}")
        except NotFoundError:
            return RuleState(rule_id)
        return RuleState.from_doc(resp["_source"])

    def all(self) -> dict[str, RuleState]:
        if not self.es.indices.exists(index=self.index):
            return {}
        resp = self.es.search(index=self.index, query={"term": {"kind": "state"}}, size=10_000)
        return {h["_source"]["rule_id"]: RuleState.from_doc(h["_source"]) for h in resp["hits"]["hits"]}

    def put(self, state: RuleState) -> None:
        self.es.index(index=self.index, id=f"state:{state.rule_id}", document=state.to_doc(), refresh=True)

    # ------------------------------------------------------------------ leases
    def acquire(self, rule_id: str, owner: str, ttl: float, now: datetime | None = None) -> bool:
        """Take the lease of ``rule_id`` for ``ttl`` seconds; False when someone else holds it."""
        now = now or datetime.now(UTC)
        doc = {
            "kind": "lease",
            "rule_id": rule_id,
            "owner": owner,
            "acquired": iso(now),
            "expires": iso(now + timedelta(seconds=ttl)),
        }
        lid = f"lease:{rule_id}"
        try:
            cur = self.es.get(index=self.index, id=lid)
        except NotFoundError:
            try:
                self.es.create(index=self.index, id=lid, document=doc, refresh=True)
                return True
            except ConflictError:
                return False
        src = cur["_source"]
        expires = parse_time(src.get("expires"))
        holder = str(src.get("owner") or "")
        if _held_by_other(holder, owner, expires, now):
            return False
        try:
            self.es.index(
                index=self.index,
                id=lid,
                document=doc,
                if_seq_no=cur["_seq_no"],
                if_primary_term=cur["_primary_term"],
                refresh=True,
            )
        except ConflictError:
            return False
        return True

    def renew(self, rule_id: str, owner: str, ttl: float) -> bool:
        """Push our lease's expiry to now + ``ttl``; False when it is no longer ours."""
        lid = f"lease:{rule_id}"
        try:
            cur = self.es.get(index=self.index, id=lid)
        except NotFoundError:
            return False
        if cur["_source"].get("owner") != owner:
            return False
        doc = dict(cur["_source"])
        doc["expires"] = iso(datetime.now(UTC) + timedelta(seconds=ttl))
        try:
            self.es.index(
                index=self.index,
                id=lid,
                document=doc,
                if_seq_no=cur["_seq_no"],
                if_primary_term=cur["_primary_term"],
                refresh=True,
            )
        except ConflictError:
            return False
        return True

    def release(self, rule_id: str, owner: str) -> None:
        """Give the lease back (expire it now), only if still ours."""
        lid = f"lease:{rule_id}"
        try:
            cur = self.es.get(index=self.index, id=lid)
        except NotFoundError:
            return
        if cur["_source"].get("owner") != owner:
            return
        doc = dict(cur["_source"])
        doc["expires"] = iso(datetime.now(UTC))
        doc["owner"] = ""
        try:
            self.es.index(
                index=self.index,
                id=lid,
                document=doc,
                if_seq_no=cur["_seq_no"],
                if_primary_term=cur["_primary_term"],
                refresh=True,
            )
        except ConflictError:
            pass

    def lease_holder(self, rule_id: str) -> tuple[str, datetime | None] | None:
        try:
            cur = self.es.get(index=self.index, id=f"lease:{rule_id}")
        except NotFoundError:
            return None
        src = cur["_source"]
        return str(src.get("owner") or ""), parse_time(src.get("expires"))

    # ------------------------------------------------------------- many at once
    # The same documents and the same optimistic concurrency as above, for a batch of rules
    # (detectors/batch.py): one ``mget`` and one ``_bulk`` (one refresh) instead of a few
    # requests per rule.
    def get_many(self, rule_ids: Sequence[str]) -> dict[str, RuleState]:
        found = self._mget([f"state:{r}" for r in rule_ids])
        return {
            r: RuleState.from_doc(d["_source"]) if d is not None else RuleState(r)
            for r, d in zip(rule_ids, found, strict=True)
        }

    def put_many(self, states: Sequence[RuleState]) -> None:
        ops = [({"index": {"_id": f"state:{s.rule_id}"}}, s.to_doc()) for s in states]
        for rid, status, error in self._bulk(ops):
            if status not in (200, 201):
                raise ClusterError(f"writing the state of rule {rid} failed: {error}")

    def acquire_many(
        self, rule_ids: Sequence[str], owner: str, ttl: float, now: datetime | None = None
    ) -> tuple[set[str], dict[str, str]]:
        """Take the leases of ``rule_ids`` (each exactly as :meth:`acquire`): the rules won, and
        an error text per rule whose lease could not be written for another reason than a race."""
        now = now or datetime.now(UTC)
        doc = {"kind": "lease", "owner": owner, "acquired": iso(now)}
        doc["expires"] = iso(now + timedelta(seconds=ttl))
        ops: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for rid, cur in zip(rule_ids, self._mget([f"lease:{r}" for r in rule_ids]), strict=True):
            if cur is None:
                ops.append(({"create": {"_id": f"lease:{rid}"}}, {**doc, "rule_id": rid}))
                continue
            src = cur["_source"]
            expires = parse_time(src.get("expires"))
            holder = str(src.get("owner") or "")
            if _held_by_other(holder, owner, expires, now):
                continue
            ops.append(({"index": _if_unchanged(rid, cur)}, {**doc, "rule_id": rid}))
        won: set[str] = set()
        errors: dict[str, str] = {}
        for rid, status, error in self._bulk(ops):
            if status in (200, 201):
                won.add(rid)
            elif status != 409:
                errors[rid] = str(error)
        return won, errors

    def renew_many(self, rule_ids: Sequence[str], owner: str, ttl: float) -> set[str]:
        """Push the expiry of our leases among ``rule_ids``; the rules whose lease is still ours."""
        expires = iso(datetime.now(UTC) + timedelta(seconds=ttl))
        return self._rewrite_own(rule_ids, owner, {"expires": expires})

    def release_many(self, rule_ids: Sequence[str], owner: str) -> None:
        """Give back (expire now) those of the leases that are still ours."""
        self._rewrite_own(rule_ids, owner, {"expires": iso(datetime.now(UTC)), "owner": ""})

    def _rewrite_own(self, rule_ids: Sequence[str], owner: str, change: dict[str, Any]) -> set[str]:
        ops: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for rid, cur in zip(rule_ids, self._mget([f"lease:{r}" for r in rule_ids]), strict=True):
            if cur is None or cur["_source"].get("owner") != owner:
                continue
            ops.append(({"index": _if_unchanged(rid, cur)}, {**cur["_source"], **change}))
        return {rid for rid, status, _ in self._bulk(ops) if status in (200, 201)}

    def _mget(self, ids: Sequence[str]) -> list[dict[str, Any] | None]:
        out: list[dict[str, Any] | None] = []
        for i in range(0, len(ids), 1000):
            resp = self.es.mget(index=self.index, ids=list(ids[i : i + 1000]))
            out.extend(d if d.get("found") else None for d in resp["docs"])
        return out

    def _bulk(self, ops: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> list[tuple[str, int, Any]]:
        """(rule id, status, error) per operation, in order; one refresh for all of them."""
        out: list[tuple[str, int, Any]] = []
        for i in range(0, len(ops), 1000):
            chunk = ops[i : i + 1000]
            lines: list[dict[str, Any]] = []
            for action, doc in chunk:
                lines += [action, doc]
            resp = self.es.bulk(index=self.index, operations=lines, refresh=True)
            for item in resp["items"]:
                r = next(iter(item.values()))
                rid = str(r.get("_id", "")).split(":", 1)[-1]
                out.append((rid, int(r.get("status", 0)), r.get("error")))
        return out


def _if_unchanged(rule_id: str, cur: dict[str, Any]) -> dict[str, Any]:
    """The bulk action head that rewrites the lease ``cur`` only if nobody changed it since."""
    return {"_id": f"lease:{rule_id}", "if_seq_no": cur["_seq_no"], "if_primary_term": cur["_primary_term"]}

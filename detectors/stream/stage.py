"""The stream detection stage of the shipper (``sysmon-ship ship|watch --detect``).

Every document is checked as the sink queues it (:meth:`StreamStage.observe`: the bulk item,
so the document is exactly what will be indexed, ``event.ingested`` and the envelope in) against
the rules the stream can run (:class:`~detectors.stream.rules.StreamRules`) with the intel lists
in memory (:class:`~detectors.stream.intel.IntelCache`). A match waits until the sink
acknowledges its event (:meth:`StreamStage.acknowledged`), so an alert never names an event that
is not in the cluster (a dead-lettered one gets none); then it is written as the scheduled
engine writes it: same ``_id``, index and shape (``from_event``, ``add_intel``, ancestry), with
``op_type: create`` (a 409: the scheduled engine wrote it first).

Nothing here may stop the shipping: an alert write that fails, or intel that cannot be loaded,
is counted and reported as degraded detection; the scheduled engine, which examines every event
by ``event.ingested``, covers it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from elasticsearch import Elasticsearch

from detectors.alerts import alert_index_for, create_alerts
from detectors.ancestry import DEFAULT_DEPTH
from detectors.builders.context import RunContext
from detectors.builders.enrich import add_ancestry, add_intel
from detectors.builders.event_alert import event_alert
from detectors.engine import error_text
from detectors.model import Rule
from detectors.query import Window, get_path, iso
from detectors.stream.intel import IntelCache
from detectors.stream.processes import ProcessCache
from detectors.stream.rules import StreamRules
from shipper.sending import BatchResult


def stream_plan(rules: Sequence[Rule]) -> StreamRules:
    """The rules the stream runs: the matcher's choice among those whose alert is one per event
    (a suppressed rule's alert carries figures of its whole group: it stays scheduled)."""
    plain = [r for r in rules if r.suppression is None]
    compiled = StreamRules.compile(plain)
    for r in rules:
        if r.suppression is not None:
            compiled.unsupported[r.id] = "suppression groups are counted by the scheduled engine"
    return compiled


@dataclass(frozen=True, slots=True)
class Match:
    """Rules matched by one queued event, waiting for its acknowledgement."""

    seq: int
    index: str
    doc_id: str
    doc: dict[str, Any]
    rules: tuple[Rule, ...]


class StreamStage:
    """For the shipper's thread (the sink calls it there); see the module's text."""

    def __init__(
        self,
        es: Elasticsearch,
        prefix: str,
        rules: StreamRules,
        intel: IntelCache | None,
        processes: ProcessCache,
        *,
        ancestry_depth: int = DEFAULT_DEPTH,
    ) -> None:
        self.es, self.prefix, self.rules = es, prefix, rules
        self.intel = intel if rules.needs_intel else None
        self.processes = processes
        self.ancestry_depth = ancestry_depth
        self._waiting: dict[str, deque[Match]] = {}
        self.counts = {"checked": 0, "matched": 0, "alerts": 0, "duplicates": 0, "failed": 0, "no_intel": 0}
        self.degraded: str | None = None  # the last reason detection was degraded
        if self.intel is not None:
            self.intel.poll(force=True)
            self.degraded = self.intel.error
        self._warm_alert_index()

    def _warm_alert_index(self) -> None:
        """Create this month's alert index now (as the scheduled engine would at its first
        alert): the first alert then costs a write, not an index creation (~0.7 s)."""
        index = alert_index_for(self.prefix, None, datetime.now(UTC))
        try:
            self.es.options(ignore_status=400).indices.create(index=index)  # 400: it exists
        except Exception:
            pass  # the first alert creates it, a little later

    # ---------------------------------------------------------------- documents in

    def _memory(self) -> Any:
        if self.intel is None:
            return None
        mem = self.intel.current()
        if mem is None or self.intel.error:
            self.degraded = self.intel.error or "intel not loaded yet"
        return mem

    def observe(self, items: list[bytes], source: str, first_seq: int) -> None:
        if self.intel is not None:
            self.intel.poll_soon()  # a rebuild runs beside the shipping, never in its way
        mem = self._memory()
        if self.intel is not None and mem is None:
            self.counts["no_intel"] += len(items)  # intel rules skipped: the schedule covers them
        waiting = None
        docs = [orjson.loads(item[item.index(b"\n") + 1 :]) for item in items]
        for doc in docs:
            self.processes.see(doc)
        found = self.rules.match_items(items, docs, mem)
        for k, (item, doc, matched) in enumerate(zip(items, docs, found, strict=True)):
            if not matched:
                continue
            action = orjson.loads(item[: item.index(b"\n")])["create"]
            if waiting is None:
                waiting = self._waiting.setdefault(source, deque())
            waiting.append(Match(first_seq + k, action["_index"], action["_id"], doc, tuple(matched)))
            self.counts["matched"] += len(matched)
        self.counts["checked"] += len(items)

    # ---------------------------------------------------------------- acknowledged: alerts out

    def acknowledged(self, result: BatchResult) -> None:
        dead, dup = set(result.dead), set(result.duplicated)
        ready: list[Match] = []
        again: list[int] = []  # positions in ready of events the cluster already held
        for acked in result.acked:
            waiting = self._waiting.get(acked.source)
            while waiting and waiting[0].seq <= acked.last:
                m = waiting.popleft()
                if (acked.source, m.seq) in dead:
                    continue
                if (acked.source, m.seq) in dup:
                    again.append(len(ready))
                ready.append(m)
        if ready:
            self._write(self._as_stored(ready, again))

    def _as_stored(self, ready: list[Match], again: list[int]) -> list[Match]:
        """An event shipped again (a rerun, another collector) is the first shipment's in the
        cluster, its ``event.ingested`` and envelope included: its alert copies that one, as the
        scheduled engine's does (one real-time ``mget``, only for such matches)."""
        if not again:
            return ready
        try:
            docs = [{"_index": ready[i].index, "_id": ready[i].doc_id} for i in again]
            found = self.es.mget(docs=docs)["docs"]
        except Exception as exc:
            self.degraded = f"reading events shipped again failed: {error_text(exc)}"
            return ready
        out = list(ready)
        for i, got in zip(again, found, strict=True):
            if got.get("found"):
                out[i] = replace(ready[i], doc=got["_source"])
        return out

    def close(self) -> None:
        """Nothing acknowledged is left waiting (the sink delivers every result before); what
        was never acknowledged gets no alert here (the schedule covers it once it is in)."""
        self._waiting.clear()

    def _write(self, ready: list[Match]) -> None:
        n = sum(len(m.rules) for m in ready)
        try:
            items = self._alerts(ready, datetime.now(UTC))
            # searchable at once: the bulk refreshes the alert shards it wrote to, only when a
            # batch made alerts (rare), instead of waiting up to refresh_interval for them
            statuses = create_alerts(self.es, items, refresh=True)
        except Exception as exc:  # never stops the shipping: the schedule covers these events
            self.counts["failed"] += n
            self.degraded = f"writing {n} alerts failed: {error_text(exc)}"
            return
        self.counts["duplicates"] += sum(s == 409 for s in statuses)
        self.counts["alerts"] += sum(s != 409 for s in statuses)

    def _alerts(self, ready: list[Match], now: datetime) -> list[tuple[str, str, dict[str, Any]]]:
        """(index, id, document) of every alert: ``event_alert``, as the scheduled engine's."""
        ctx = RunContext(self.es, self.prefix, now, Window(None, now), ancestry_depth=self.ancestry_depth)
        per_rule: dict[str, tuple[Rule, list[dict[str, Any]], list[dict[str, Any]]]] = {}
        items: list[tuple[str, str, dict[str, Any]]] = []
        srcs: list[dict[str, Any]] = []
        for m in ready:
            hit = {"_index": m.index, "_id": m.doc_id, "_source": m.doc}
            # the run that made it: this event's ingestion (timing fields, as the schedule's)
            run = {"window_start": get_path(m.doc, "event.ingested"), "window_end": iso(now)}
            for rule in m.rules:
                index, aid, doc = event_alert(rule, hit, self.prefix, now, run)
                items.append((index, aid, doc))
                srcs.append(m.doc)
                entry = per_rule.setdefault(rule.id, (rule, [], []))
                entry[1].append(doc)
                entry[2].append(m.doc)
        for rule, docs, rsrcs in per_rule.values():
            if rule.type == "intel_match":
                add_intel(ctx, rule, docs, rsrcs)  # indicator documents from the cluster: rare
        add_ancestry(
            ctx,
            [d for _, _, d in items],
            srcs,
            lambda starts, known: self.processes.chains(
                self.es, self.prefix, starts, depth=self.ancestry_depth, seed=known
            ),
        )
        return items

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.counts,
            "rules": len(self.rules.supported),
            "scheduled_only": len(self.rules.unsupported),
            "degraded": self.degraded,
        }
        if self.intel is not None:
            mem = self.intel.current()
            out["intel_generations"] = dict(mem.generations) if mem is not None else {}
        return out

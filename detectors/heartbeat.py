"""Keep a rule's lease alive while its run lives.

Leases are short (``DEFAULT_LEASE_TTL``) so that a run that dies on another host, where its
process cannot be checked, blocks the rule for one TTL at most. A live run renews its lease every
third of the TTL from a daemon thread; a run that outlives its lease is not stopped (alert ids
are deterministic, so a second runner can only add 409s), but the loss is logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from types import TracebackType

from detectors.state import StateStore

log = logging.getLogger(__name__)

DEFAULT_LEASE_TTL = 60.0


class LeaseHeartbeat:
    """``with LeaseHeartbeat(store, rule_id, owner, ttl):`` renews the lease until the block ends."""

    def __init__(self, store: StateStore, rule_id: str, owner: str, ttl: float) -> None:
        self.store = store
        self.rule_id = rule_id
        self.owner = owner
        self.ttl = ttl
        self.renewals = 0
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{rule_id}", daemon=True)

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.ttl)

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3.0):
            try:
                if self.store.renew(self.rule_id, self.owner, self.ttl):
                    self.renewals += 1
                    continue
            except Exception as exc:  # the node is away: try again next beat, the TTL still holds
                log.warning("rule %s: could not renew its lease: %s", self.rule_id, exc)
                continue
            self.lost = True
            log.warning("rule %s: its lease was taken by another run while this one ran", self.rule_id)
            return


class BatchHeartbeat(LeaseHeartbeat):
    """The leases of a batch of rules, renewed together (one ``mget`` and one ``_bulk``)."""

    def __init__(self, store: StateStore, rule_ids: Sequence[str], owner: str, ttl: float) -> None:
        super().__init__(store, f"batch of {len(rule_ids)}", owner, ttl)
        self.rule_ids = list(rule_ids)

    def _beat(self) -> None:
        while self.rule_ids and not self._stop.wait(self.ttl / 3.0):
            try:
                kept = self.store.renew_many(self.rule_ids, self.owner, self.ttl)
            except Exception as exc:  # the node is away: try again next beat, the TTL still holds
                log.warning("a batch of %d rules: could not renew the leases: %s", len(self.rule_ids), exc)
                continue
            self.renewals += 1
            lost = [r for r in self.rule_ids if r not in kept]
            if lost:
                self.lost = True
                log.warning("rules %s: their leases were taken by another run while this one ran", lost)
                self.rule_ids = [r for r in self.rule_ids if r in kept]

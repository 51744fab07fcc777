"""Record-id sequences, pure: where one (host, channel)'s ``winlog.record_id`` skips or restarts.

A channel numbers its records 1, 2, 3 … in the order it writes them; clearing the log (or
reverting a VM) starts again low. Records arrive here in time order (``event.created``, the
record's TimeCreated, then record id): a record whose id is more than ``tolerance`` below the
highest id of its epoch starts a new epoch (a *reset*); within an epoch, the ids are sorted and
every run of missing ids between two present ones is a *gap*. Sorting by id within an epoch makes
the few records written in the same instant but stamped out of order harmless.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

FindingKind = Literal["gap", "reset"]


@dataclass(frozen=True, slots=True)
class Record:
    record_id: int
    created: str  # ISO time the record was written (event.created)
    timestamp: str  # @timestamp
    index: str = ""
    doc_id: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    """A gap (``first``..``last`` missing between ``before`` and ``after``) or a reset
    (``before`` is the highest record of the old epoch, ``after`` the first of the new)."""

    kind: FindingKind
    before: Record
    after: Record

    @property
    def first(self) -> int:
        return self.before.record_id + 1 if self.kind == "gap" else self.after.record_id

    @property
    def last(self) -> int:
        return self.after.record_id - 1 if self.kind == "gap" else self.before.record_id

    @property
    def missing(self) -> int:
        return self.last - self.first + 1 if self.kind == "gap" else 0


def epochs(records: Iterable[Record], tolerance: int) -> tuple[list[list[Record]], list[Finding]]:
    """Split time-ordered records where the id drops by more than ``tolerance``."""
    out: list[list[Record]] = []
    resets: list[Finding] = []
    top: Record | None = None
    for rec in records:
        if top is None or rec.record_id < top.record_id - tolerance:
            if top is not None:
                resets.append(Finding("reset", top, rec))
            out.append([])
            top = rec
        out[-1].append(rec)
        if rec.record_id > top.record_id:
            top = rec
    return out, resets


def gaps(epoch: Iterable[Record]) -> list[Finding]:
    """Missing ids between consecutive present ids of one epoch (duplicates ignored)."""
    found: list[Finding] = []
    prev: Record | None = None
    for rec in sorted(epoch, key=lambda r: (r.record_id, r.created)):
        if prev is not None and rec.record_id > prev.record_id + 1:
            found.append(Finding("gap", prev, rec))
        if prev is None or rec.record_id != prev.record_id:
            prev = rec
    return found


def findings(records: Iterable[Record], tolerance: int) -> list[Finding]:
    """Every reset and every gap of time-ordered records, in id order within each epoch."""
    parts, resets = epochs(records, tolerance)
    out: list[Finding] = list(resets)
    for part in parts:
        out.extend(gaps(part))
    return out

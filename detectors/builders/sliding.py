"""The sliding-window scan of correlation rules: pure, no I/O.

A window starts at an event (its anchor) and holds every event of the group up to ``timespan``
later, ends included: two events 2 minutes apart share a 5-minute window wherever the clock's
5-minute marks fall. Anchors are taken in time order; the first window whose figure satisfies the
condition is a match, and anchors inside a match's window (or inside the window of an alert an
earlier run wrote) start none, so a burst gives one alert per window, not one per event.

A window is considered only when it holds a *fresh* event (ingested in this run's extended
window) that no existing alert window covers: a rerun, or an overlapping window, finds only
windows it has already judged. Conditions that a later event could still break (``lt``, ``lte``,
``eq``, ``neq``) are judged only on windows that have closed (``anchor + timespan`` before the
run's horizon); ``gt``/``gte`` can only grow, so they are judged at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from detectors.model import CompareOp, CorrelationKind

#: conditions a later event could turn false again: judged only on closed windows
CLOSED_ONLY: frozenset[str] = frozenset({"lt", "lte", "eq", "neq"})


@dataclass(frozen=True, slots=True)
class Member:
    """One event of a group, as the scan sees it."""

    t: int  # @timestamp, epoch milliseconds
    id: str  # the event's _id
    index: str
    base: int  # which base rule matched it (position in the correlation's rules)
    value: str | None = None  # value_count: the counted field's value


@dataclass(frozen=True, slots=True)
class Spec:
    kind: CorrelationKind
    timespan_ms: int
    op: CompareOp
    count: int
    n_bases: int = 1


@dataclass(frozen=True, slots=True)
class Match:
    start: int  # the anchor's @timestamp (ms)
    end: int  # start + timespan
    figure: int  # events, distinct values or base rules (in order), as the condition read it
    members: tuple[Member, ...]


def holds(op: CompareOp, figure: int, count: int) -> bool:
    return {
        "gt": figure > count,
        "gte": figure >= count,
        "lt": figure < count,
        "lte": figure <= count,
        "eq": figure == count,
        "neq": figure != count,
    }[op]


def _key(kind: CorrelationKind, m: Member) -> Hashable | None:
    """What a window counts distinct of: events (one event may match two base rules), values,
    base rules. None: not counted (an event without the value_count field)."""
    if kind == "event_count":
        return m.id
    if kind == "value_count":
        return m.value
    return m.base


def ordered_figure(members: Sequence[Member], n_bases: int) -> int:
    """How many of the base rules occur in order (rule 1, then rule 2, …) within ``members``."""
    need = 0
    for m in members:
        if m.base == need:
            need += 1
            if need == n_bases:
                break
    return need


def _inside(t: int, held: Sequence[tuple[int, int]]) -> bool:
    return any(s <= t <= e for s, e in held)


def scan(
    spec: Spec,
    events: Sequence[Member],
    fresh: frozenset[str] | set[str],
    held: Sequence[tuple[int, int]] = (),
    horizon: int | None = None,
) -> list[Match]:
    """The matches of one group. ``events`` in any order; ``fresh``: ids this run must judge;
    ``held``: windows ``(start, end)`` of existing alerts of the group; ``horizon``: the time
    (ms) before which a window must end to count as closed (None: all are)."""
    ev = sorted(events, key=lambda m: (m.t, m.id, m.base))
    # prefix counts of fresh events no existing alert covers: "does this window hold one?" in O(1)
    open_fresh = [0]
    for m in ev:
        open_fresh.append(open_fresh[-1] + (m.id in fresh and not _inside(m.t, held)))
    closed_only = spec.op in CLOSED_ONLY
    counts: Counter[Hashable] = Counter()
    out: list[Match] = []
    last_end: int | None = None
    j = 0
    for i, anchor in enumerate(ev):
        end = anchor.t + spec.timespan_ms
        while j < len(ev) and ev[j].t <= end:  # grow the window to the anchor's end
            k = _key(spec.kind, ev[j])
            if k is not None:
                counts[k] += 1
            j += 1
        if i > 0:  # the previous anchor leaves the window
            k = _key(spec.kind, ev[i - 1])
            if k is not None:
                counts[k] -= 1
                if counts[k] == 0:
                    del counts[k]
        if (last_end is not None and anchor.t <= last_end) or _inside(anchor.t, held):
            continue
        if closed_only and horizon is not None and end >= horizon:
            continue
        if spec.kind == "temporal_ordered" and anchor.base != 0:
            continue  # an ordered chain starts with the first rule: its window starts there
        if open_fresh[j] - open_fresh[i] == 0:
            continue
        window = ev[i:j]
        figure = ordered_figure(window, spec.n_bases) if spec.kind == "temporal_ordered" else len(counts)
        if holds(spec.op, figure, spec.count):
            out.append(Match(anchor.t, end, figure, tuple(window)))
            last_end = end
    return out


def merge_ranges(times: Sequence[int], before: int, after: int) -> list[tuple[int, int]]:
    """``[t - before, t + after]`` for every time, merged into as few ranges as possible."""
    out: list[tuple[int, int]] = []
    for t in sorted(times):
        lo, hi = t - before, t + after
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out

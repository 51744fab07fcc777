"""The matcher's building blocks: a predicate over one document (and the intel snapshot), with
the literals one of which any matching document must contain (for the prefilter), combined as
Lucene combines boolean clauses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Test = Callable[[dict[str, Any], Any], bool]


@dataclass(frozen=True, slots=True)
class Pred:
    """``test(doc, intel)``; ``literals``: lower-case strings at least one of which occurs in the
    lower-cased text of every document the predicate accepts (None: no such guarantee)."""

    test: Test
    literals: frozenset[str] | None = None
    needs_intel: bool = False


def _always(_doc: dict[str, Any], _intel: Any) -> bool:
    return True


def _never(_doc: dict[str, Any], _intel: Any) -> bool:
    return False


ALWAYS = Pred(_always)
NEVER = Pred(_never, frozenset())  # no document matches: an empty set of alternatives


def _score(lits: frozenset[str]) -> tuple[int, int]:
    # the most selective set: its shortest literal as long as possible, then fewest alternatives
    return (min((len(x) for x in lits), default=1 << 30), -len(lits))


def best_literals(preds: Sequence[Pred]) -> frozenset[str] | None:
    sets = [p.literals for p in preds if p.literals is not None]
    return max(sets, key=_score) if sets else None


def union_literals(preds: Sequence[Pred]) -> frozenset[str] | None:
    if any(p.literals is None for p in preds):
        return None
    out: set[str] = set()
    for p in preds:
        out |= p.literals or frozenset()
    return frozenset(out)


def all_of(preds: Sequence[Pred]) -> Pred:
    if not preds:
        return ALWAYS
    if len(preds) == 1:
        return preds[0]
    tests = tuple(p.test for p in preds)
    return Pred(
        lambda d, i: all(t(d, i) for t in tests), best_literals(preds), any(p.needs_intel for p in preds)
    )


def any_of(preds: Sequence[Pred]) -> Pred:
    if not preds:
        return NEVER
    if len(preds) == 1:
        return preds[0]
    tests = tuple(p.test for p in preds)
    return Pred(
        lambda d, i: any(t(d, i) for t in tests), union_literals(preds), any(p.needs_intel for p in preds)
    )


def not_(pred: Pred) -> Pred:
    test = pred.test
    return Pred(lambda d, i: not test(d, i), None, pred.needs_intel)


def boolean(must: Sequence[Pred], should: Sequence[Pred], must_not: Sequence[Pred], min_should: int) -> Pred:
    """A Lucene BooleanQuery: every ``must``, no ``must_not``, at least ``min_should`` of
    ``should``. (A query of only ``must_not`` clauses matches all other documents: Elasticsearch
    adds a match-all to a purely negative query.)"""
    parts = list(must)
    if min_should > len(should):
        return NEVER
    if min_should == 1:
        parts.append(any_of(should))
    elif min_should > 1:
        tests = tuple(p.test for p in should)
        need = min_should
        parts.append(
            Pred(
                lambda d, i: sum(1 for t in tests if t(d, i)) >= need,
                union_literals(should),
                any(p.needs_intel for p in should),
            )
        )
    parts.extend(not_(p) for p in must_not)
    return all_of(parts)

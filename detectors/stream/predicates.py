"""The matcher's building blocks: a predicate over one document (and the intel snapshot), with
the literals one of which any matching document must contain (for the prefilter), combined as
Lucene combines boolean clauses. Each also carries its description as data (``ir``, see
:mod:`detectors.stream.native`) when the native core can evaluate it."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Test = Callable[[dict[str, Any], "Context"], bool]
Getter = Callable[[dict[str, Any]], list[Any]]
#: a necessary literal: (document path, lower-case text found in one of the path's values)
Literal = tuple[str, str]
Literals = frozenset[Literal]
#: a predicate as data for the native core (JSON: dicts, lists, strings, numbers; see native.py)
IR = dict[str, Any]


def ir_paths(ir: Any) -> set[str]:
    """The document paths an IR tree reads (its fields' and ``present``'s ``path``)."""
    if isinstance(ir, dict):
        found = {ir["path"]} if isinstance(ir.get("path"), str) else set()
        for v in ir.values():
            if isinstance(v, dict | list):
                found |= ir_paths(v)
        return found
    if isinstance(ir, list):
        return set().union(*(ir_paths(v) for v in ir))
    return set()


class Context:
    """What one document's evaluation shares: the intel snapshot, and each field's values read
    once (a Sigma rule asks the same field dozens of times)."""

    __slots__ = ("_values", "intel")

    def __init__(self, intel: Any) -> None:
        self.intel = intel
        self._values: dict[str, list[Any]] = {}

    def values(self, key: str, get: Getter, doc: dict[str, Any]) -> list[Any]:
        got = self._values.get(key)
        if got is None:
            got = self._values[key] = get(doc)
        return got


@dataclass(frozen=True, slots=True)
class FieldRegex:
    """A keyword leaf as a whole-term regex on one field's values, so that the leaves of an OR
    on one field become one regex."""

    key: str
    get: Getter
    pattern: str
    field: IR  # the field as the native core reads it (native.field_ir)


@dataclass(frozen=True, slots=True)
class Pred:
    """``test(doc, context)``; ``literals``: (path, lower-case text) pairs at least one of which
    occurs in the lower-cased values of its path in every document the predicate accepts (None:
    no such guarantee); ``ir``: the same test as data, None where only Python can run it."""

    test: Test
    literals: Literals | None = None
    needs_intel: bool = False
    regex: FieldRegex | None = None
    ir: IR | None = None


def regex_pred(regex: FieldRegex, literals: Literals | None) -> Pred:
    rx = re.compile(regex.pattern, re.DOTALL)
    key, get = regex.key, regex.get
    ir = {"t": "re", "f": regex.field, "p": regex.pattern}
    return Pred(lambda d, c: any(rx.fullmatch(v) for v in c.values(key, get, d)), literals, False, regex, ir)


def _irs(preds: Sequence[Pred]) -> list[IR] | None:
    irs = [p.ir for p in preds]
    return None if any(x is None for x in irs) else irs  # type: ignore[return-value]


def _merge_regexes(preds: Sequence[Pred]) -> list[Pred]:
    """The regex leaves of one field OR-ed as one alternation (same answer, one pass)."""
    groups: dict[str, list[Pred]] = {}
    rest: list[Pred] = []
    for p in preds:
        if p.regex is None:
            rest.append(p)
        else:
            groups.setdefault(p.regex.key, []).append(p)
    for same in groups.values():
        if len(same) == 1:
            rest.append(same[0])
            continue
        first = same[0].regex
        assert first is not None
        pattern = "|".join(f"(?:{p.regex.pattern})" for p in same if p.regex is not None)
        rest.append(regex_pred(FieldRegex(first.key, first.get, pattern, first.field), union_literals(same)))
    return rest


def _always(_doc: dict[str, Any], _intel: Any) -> bool:
    return True


def _never(_doc: dict[str, Any], _intel: Any) -> bool:
    return False


ALWAYS = Pred(_always, ir={"t": "true"})
# no document matches: an empty set of alternatives
NEVER = Pred(_never, frozenset(), ir={"t": "false"})


def _score(lits: Literals) -> tuple[int, int]:
    # the most selective set: its shortest literal as long as possible, then fewest alternatives
    return (min((len(x) for _, x in lits), default=1 << 30), -len(lits))


def best_literals(preds: Sequence[Pred]) -> Literals | None:
    sets = [p.literals for p in preds if p.literals is not None]
    return max(sets, key=_score) if sets else None


def union_literals(preds: Sequence[Pred]) -> Literals | None:
    if any(p.literals is None for p in preds):
        return None
    out: set[Literal] = set()
    for p in preds:
        out |= p.literals or frozenset()
    return frozenset(out)


def all_of(preds: Sequence[Pred]) -> Pred:
    if not preds:
        return ALWAYS
    if len(preds) == 1:
        return preds[0]
    tests = tuple(p.test for p in preds)
    irs = _irs(preds)
    return Pred(
        lambda d, i: all(t(d, i) for t in tests),
        best_literals(preds),
        any(p.needs_intel for p in preds),
        ir=None if irs is None else {"t": "all", "c": irs},
    )


def any_of(preds: Sequence[Pred]) -> Pred:
    if not preds:
        return NEVER
    preds = _merge_regexes(preds)
    if len(preds) == 1:
        return preds[0]
    tests = tuple(p.test for p in preds)
    irs = _irs(preds)
    return Pred(
        lambda d, i: any(t(d, i) for t in tests),
        union_literals(preds),
        any(p.needs_intel for p in preds),
        ir=None if irs is None else {"t": "any", "c": irs},
    )


def not_(pred: Pred) -> Pred:
    test = pred.test
    ir = None if pred.ir is None else {"t": "not", "c": pred.ir}
    return Pred(lambda d, i: not test(d, i), None, pred.needs_intel, ir=ir)


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
        irs = _irs(should)
        parts.append(
            Pred(
                lambda d, i: sum(1 for t in tests if t(d, i)) >= need,
                union_literals(should),
                any(p.needs_intel for p in should),
                ir=None if irs is None else {"t": "atleast", "n": need, "c": irs},
            )
        )
    parts.extend(not_(p) for p in must_not)
    return all_of(parts)

"""Which rules an event can match, without evaluating the others: rules indexed by event code,
and by necessary literals found in one Aho-Corasick pass over the event's lower-cased text.

A rule's literals are a set one of which occurs in the lower-cased text of every document its
query accepts (:mod:`detectors.stream.predicates`), so skipping a rule none of whose literals
occur never loses a match."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import ahocorasick

from detectors.stream.values import java_lower, keyword_text

_SEP = "\x00"  # never inside a literal, so no literal spans two values


def _scalars(doc: Any) -> Iterator[str]:
    if isinstance(doc, dict):
        for v in doc.values():
            yield from _scalars(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _scalars(v)
    elif doc is not None:
        yield keyword_text(doc)


def event_text(doc: dict[str, Any]) -> str:
    return _SEP + _SEP.join(java_lower(s) for s in _scalars(doc)) + _SEP


class Prefilter:
    """Per event code (``None``: rules of every code) the rules always evaluated and, through
    the automaton, those that need one of their literals."""

    def __init__(self, codes: Sequence[tuple[str, ...]], literals: Sequence[frozenset[str] | None]) -> None:
        self._always: dict[str | None, list[int]] = {}
        self._gated: dict[str | None, set[int]] = {}
        by_literal: dict[str, list[int]] = {}
        for i, (cs, lits) in enumerate(zip(codes, literals, strict=True)):
            for code in cs or (None,):
                if lits is None:
                    self._always.setdefault(code, []).append(i)
                else:
                    self._gated.setdefault(code, set()).add(i)
            for lit in lits or ():
                by_literal.setdefault(lit, []).append(i)
        self._automaton: Any = None
        if by_literal:
            self._automaton = ahocorasick.Automaton()
            for lit, idx in by_literal.items():
                self._automaton.add_word(lit, tuple(idx))
            self._automaton.make_automaton()

    def candidates(self, doc: dict[str, Any], codes: Sequence[str]) -> list[int]:
        """The rules to evaluate for ``doc`` (whose event codes are ``codes``), in rule order."""
        keys: list[str | None] = [None, *codes]
        out: set[int] = set()
        for k in keys:
            out.update(self._always.get(k, ()))
        gated: set[int] = set()
        for k in keys:
            gated |= self._gated.get(k, set())
        if gated and self._automaton is not None:
            found: set[int] = set()
            for _end, idx in self._automaton.iter(event_text(doc)):
                found.update(idx)
            out |= gated & found
        return sorted(out)

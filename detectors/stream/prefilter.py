"""Which rules an event can match, without evaluating the others: rules indexed by event code,
and by necessary literals found by one Aho-Corasick pass over each path's lower-cased values.

A rule's literals are (path, text) pairs one of which occurs in the lower-cased values of its
path in every document its query accepts (:mod:`detectors.stream.predicates`), so skipping a
rule none of whose literals occur never loses a match."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ahocorasick

from detectors.stream.predicates import Literals
from detectors.stream.values import java_lower, keyword_text, raw_values

_SEP = "\x00"  # never inside a literal, so no literal spans two values


def path_text(doc: dict[str, Any], parts: tuple[str, ...]) -> str:
    """The lower-cased text of one path's values, each between separators."""
    vals = [java_lower(keyword_text(v)) for v in raw_values(doc, parts)]
    return _SEP + _SEP.join(vals) + _SEP if vals else ""


class Prefilter:
    """Per event code (``None``: rules of every code) the rules always evaluated and, through
    one automaton per path, those that need one of their literals on that path."""

    def __init__(self, codes: Sequence[tuple[str, ...]], literals: Sequence[Literals | None]) -> None:
        self._always: dict[str | None, list[int]] = {}
        self._gated: dict[str | None, set[int]] = {}
        by_path: dict[str, dict[str, list[int]]] = {}
        path_codes: dict[str, set[str | None]] = {}
        for i, (cs, lits) in enumerate(zip(codes, literals, strict=True)):
            for code in cs or (None,):
                if lits is None:
                    self._always.setdefault(code, []).append(i)
                else:
                    self._gated.setdefault(code, set()).add(i)
            for path, lit in lits or ():
                by_path.setdefault(path, {}).setdefault(lit, []).append(i)
                path_codes.setdefault(path, set()).update(cs or (None,))
        # (path, its automaton, the codes of its rules: None when a rule of every code uses it)
        self._automata: list[tuple[tuple[str, ...], Any, frozenset[str | None] | None]] = []
        for path, words in sorted(by_path.items()):
            automaton = ahocorasick.Automaton()
            for lit, idx in words.items():
                automaton.add_word(lit, tuple(idx))
            automaton.make_automaton()
            pc = path_codes[path]
            self._automata.append((tuple(path.split(".")), automaton, None if None in pc else frozenset(pc)))

    def candidates(self, doc: dict[str, Any], codes: Sequence[str]) -> list[int]:
        """The rules to evaluate for ``doc`` (whose event codes are ``codes``), in rule order."""
        keys: list[str | None] = [None, *codes]
        out: set[int] = set()
        for k in keys:
            out.update(self._always.get(k, ()))
        gated: set[int] = set()
        for k in keys:
            gated |= self._gated.get(k, set())
        if gated:
            hits: set[tuple[int, ...]] = set()
            for parts, automaton, pcodes in self._automata:
                if pcodes is not None and pcodes.isdisjoint(keys):
                    continue
                text = path_text(doc, parts)
                if text:
                    hits.update(idx for _end, idx in automaton.iter(text))
            found: set[int] = set()
            for idx in hits:
                found.update(idx)
            out |= gated & found
        return sorted(out)

"""The stream matcher's rules in the native core (``sysmon_native.RuleMatcher``, Rust): each
rule's predicate as data (``Pred.ir``, written by :mod:`detectors.stream.leaves` and
:mod:`detectors.stream.predicates`), evaluated on the document's JSON with the same field
reading, case folding and literal prefilter as the Python predicates. The native core refuses
a rule whose pattern its regex engine cannot take; such rules, and those only Python can run
(intel lookups, ``|fieldref``), stay with the Python predicates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from detectors.stream.fields import field_spec
from detectors.stream.leaves import field_ir
from detectors.stream.predicates import Pred
from shipper.native.core import native


@dataclass(frozen=True, slots=True)
class NativeRules:
    """Rules ``positions`` (indexes into the caller's list) as one native matcher."""

    matcher: Any
    positions: tuple[int, ...]

    def match_json(self, doc: bytes) -> list[int]:
        """Positions (the caller's indexes) of the rules that accept the document's JSON."""
        pos = self.positions
        return [pos[i] for i in self.matcher.match_json(doc)]

    def match_items(self, items: Sequence[bytes]) -> list[list[int]]:
        """``match_json`` of each bulk item's source (``action\\nsource``)."""
        pos = self.positions
        return [[pos[i] for i in got] for got in self.matcher.match_items(items)]

    def candidates(self, doc: dict[str, Any]) -> list[int]:
        return [self.positions[i] for i in self.matcher.candidates_json(orjson.dumps(doc))]


def native_rules(
    preds: Sequence[Pred], codes: Sequence[tuple[str, ...]], positions: Sequence[int]
) -> tuple[NativeRules | None, dict[int, str]]:
    """The native matcher of ``preds[p]`` for every ``p`` in ``positions`` (each with its
    ``ir``), or None without the native core; and the positions it refused, with the reason."""
    module = native()
    if module is None or not positions:
        return None, {}
    spec = {
        "code": field_ir(field_spec("event.code")),
        "rules": [
            {
                "codes": list(codes[p]),
                "lits": None if preds[p].literals is None else sorted(preds[p].literals or ()),
                "pred": preds[p].ir,
            }
            for p in positions
        ],
    }
    matcher = module.RuleMatcher(orjson.dumps(spec))
    refused = {positions[i]: why for i, why in matcher.rejected()}
    return NativeRules(matcher, tuple(positions)), refused

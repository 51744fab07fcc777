"""The stream matcher: the rules the scheduled engine runs, compiled into in-process predicates
that accept exactly the documents the rule's query (:func:`detectors.query.rule_query`, plus
the ``|fieldref`` post-filter) accepts on the node. A construct that cannot be reproduced
exactly leaves the rule to the scheduled engine, with the reason in ``unsupported``."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol

import orjson

from detectors.intel.lookup import FIELD_TYPES
from detectors.model import IntelClause, IntelMatchParams, Rule
from detectors.postfilter import keeps
from detectors.query import _values_clause
from detectors.stream.dsl import compile_dsl
from detectors.stream.errors import Unsupported
from detectors.stream.fields import field_spec
from detectors.stream.lucene import compile_lucene
from detectors.stream.native import native_rules
from detectors.stream.predicates import Context, Pred, all_of, any_of, ir_paths, not_
from detectors.stream.prefilter import Prefilter
from detectors.stream.values import accessor, keyword_text, raw_values, utf16_len


class IntelMemory(Protocol):
    """What the matcher asks of an intel snapshot (detectors.stream.intel.IntelMemory)."""

    def has(self, kind: Any, field: str, value: str, feeds: tuple[str, ...] | None,
            types: tuple[str, ...] | None) -> bool: ...  # fmt: skip


#: rule types the stream runs; every other type needs the events before (or after) this one
STREAM_TYPES = frozenset({"query", "intel_match"})
NEEDS_HISTORY = "needs history"


def _intel(clause: IntelClause, kind: str) -> Pred:
    """Any of the clause's fields holds a value the (intel or allow) lists have."""
    getters = []
    for f in clause.fields:
        if clause.types is None and f not in FIELD_TYPES:
            raise Unsupported(f"no indicator types known for field {f!r}")
        spec = field_spec(f)
        if spec.kind not in ("keyword", "ip"):
            raise Unsupported(f"intel lookup on {f} ({spec.kind} field)")
        getters.append((f, tuple(spec.path.split(".")), spec.ignore_above))
    feeds, types = clause.feeds, clause.types

    def test(doc: dict[str, Any], ctx: Context) -> bool:
        intel = ctx.intel
        for f, parts, limit in getters:
            for raw in raw_values(doc, parts):
                v = keyword_text(raw)
                if limit is not None and utf16_len(v) > limit:
                    continue  # not indexed: the terms lookup cannot see it
                if intel.has(kind, f, v, feeds, types):
                    return True
        return False

    return Pred(test, None, True)


def _compile(rule: Rule) -> Pred:
    flt = rule.filter
    parts: list[Pred] = []
    if flt.query is not None:
        parts.append(compile_dsl(flt.query))
    if flt.lucene is not None:
        parts.append(compile_lucene(flt.lucene))
    if flt.intel is not None:
        parts.append(_intel(flt.intel, "intel"))
    if isinstance(rule.params, IntelMatchParams):
        p = rule.params
        parts.append(_intel(IntelClause(p.fields, p.feeds, p.types), "intel"))
    excluded = [_intel(a, "allow") for a in rule.exceptions.allowlists]
    excluded += [compile_dsl(_values_clause(v.field, v.values)) for v in rule.exceptions.values]
    if excluded:
        parts.append(not_(any_of(excluded)))
    if flt.field_refs:
        parts.append(Pred(lambda d, _i: keeps(flt, d)))
    return all_of(parts)


#: rule objects compiled before, with their predicate or why not (a daemon's batched passes
#: compile the same rules every few minutes; luqum parsing is most of the cost)
_MEMO: dict[int, tuple[Rule, Pred | str]] = {}
_MEMO_MAX = 20_000


def _compiled(rule: Rule) -> Pred:
    got = _MEMO.get(id(rule))
    if got is None or got[0] is not rule:
        value: Pred | str
        try:
            value = _compile(rule)
        except Unsupported as exc:
            value = str(exc)
        if len(_MEMO) >= _MEMO_MAX:
            _MEMO.clear()
        got = _MEMO[id(rule)] = (rule, value)
    if isinstance(got[1], str):
        raise Unsupported(got[1])
    return got[1]


class StreamRules:
    """The supported rules, their predicates and the prefilter that picks which to evaluate."""

    supported: tuple[Rule, ...]
    unsupported: dict[str, str]
    needs_intel: bool

    def __init__(self, rules: Sequence[Rule], preds: Sequence[Pred], unsupported: dict[str, str],
                 prefilter: bool, native: bool) -> None:  # fmt: skip
        self.supported = tuple(rules)
        self.unsupported = unsupported
        self._preds = tuple(preds)
        self.needs_intel = any(p.needs_intel for p in preds)
        self._codes = accessor(field_spec("event.code"))
        codes = [r.filter.event_codes for r in rules]
        wanted = [i for i, p in enumerate(preds) if p.ir is not None] if native and prefilter else []
        self._native, refused = native_rules(preds, codes, wanted)
        #: rules the native core refused (they run in Python): rule id → reason
        self.native_refused = {rules[i].id: why for i, why in refused.items()}
        in_native = set(wanted) - set(refused) if self._native is not None else set()
        #: positions of the rules evaluated in Python, and their prefilter
        self._python = tuple(i for i in range(len(preds)) if i not in in_native)
        self._prefilter = Prefilter(
            [codes[i] for i in self._python], [preds[i].literals if prefilter else None for i in self._python]
        )

    @property
    def native_count(self) -> int:
        """How many rules the native core evaluates."""
        return len(self._preds) - len(self._python)

    def native_ids(self) -> frozenset[str]:
        """The ids of the rules the native core evaluates."""
        python = set(self._python)
        return frozenset(r.id for i, r in enumerate(self.supported) if i not in python)

    def fields_read(self, ids: Collection[str]) -> frozenset[str] | None:
        """Every document path the rules ``ids`` read, ``event.code`` (the prefilter's) included;
        None when one of them has no IR (a Python predicate, whose reads are not listed)."""
        paths = {"event.code"}
        for rule, pred in zip(self.supported, self._preds, strict=True):
            if rule.id in ids:
                if pred.ir is None:
                    return None
                paths |= ir_paths(pred.ir)
        return frozenset(paths)

    @classmethod
    def compile(cls, rules: Sequence[Rule], *, prefilter: bool = True, native: bool = True) -> StreamRules:
        """``prefilter=False``: evaluate every rule of the event's code (to check the prefilter);
        ``native=False`` (or no native core): every rule by its Python predicate."""
        ok: list[Rule] = []
        preds: list[Pred] = []
        unsupported: dict[str, str] = {}
        for rule in rules:
            if rule.type not in STREAM_TYPES:
                unsupported[rule.id] = NEEDS_HISTORY
                continue
            try:
                preds.append(_compiled(rule))
            except Unsupported as exc:
                unsupported[rule.id] = str(exc)
                continue
            ok.append(rule)
        return cls(ok, preds, unsupported, prefilter, native)

    def candidates(self, doc: dict[str, Any]) -> list[int]:
        """Indexes into ``supported`` of the rules evaluated for ``doc``."""
        py = [self._python[i] for i in self._prefilter.candidates(doc, self._codes(doc))]
        return sorted(py + (self._native.candidates(doc) if self._native is not None else []))

    def _python_matches(self, doc: dict[str, Any], intel: IntelMemory | None) -> list[int]:
        out: list[int] = []
        ctx = Context(intel)
        for k in self._prefilter.candidates(doc, self._codes(doc)):
            i = self._python[k]
            pred = self._preds[i]
            if pred.needs_intel and intel is None:
                continue
            if pred.test(doc, ctx):
                out.append(i)
        return out

    def match(self, doc: dict[str, Any], intel: IntelMemory | None) -> list[Rule]:
        """The supported rules whose scheduled query matches ``doc`` (the shipper's ECS document);
        rules that need intel are left out when ``intel`` is None."""
        found = self._python_matches(doc, intel) + self._native_matches(doc)
        return [self.supported[i] for i in sorted(found)]

    def match_native(self, doc: dict[str, Any]) -> list[Rule]:
        """The rules the native core runs (``native_ids``) whose query matches ``doc``; the
        others are not evaluated."""
        return [self.supported[i] for i in sorted(self._native_matches(doc))]

    def _native_matches(self, doc: dict[str, Any]) -> list[int]:
        return self._native_one(orjson.dumps(doc), doc) if self._native is not None else []

    def _native_one(self, source: bytes, doc: dict[str, Any]) -> list[int]:
        """The native rules' answer for one document; one its JSON reader refuses (nesting
        deeper than 128, which the shipper's JSON allows) is answered by their Python predicates."""
        assert self._native is not None
        try:
            return self._native.match_json(source)
        except ValueError:
            codes = set(self._codes(doc))
            ctx = Context(None)
            return [
                i
                for i in self._native.positions
                if (
                    not self.supported[i].filter.event_codes
                    or codes & set(self.supported[i].filter.event_codes)
                )
                and self._preds[i].test(doc, ctx)
            ]

    def match_items(
        self, items: Sequence[bytes], docs: Sequence[dict[str, Any]], intel: IntelMemory | None
    ) -> list[list[Rule]]:
        """``match`` for each bulk item (``action\nsource``) and its parsed source: the native
        rules read the item's bytes as they are."""
        natives: list[list[int]] = [[] for _ in items]
        if self._native is not None:
            try:
                natives = self._native.match_items(items)
            except ValueError:  # one item the native reader refuses: each on its own
                natives = [
                    self._native_one(item[item.index(b"\n") + 1 :], doc)
                    for item, doc in zip(items, docs, strict=True)
                ]
        out = []
        for doc, found in zip(docs, natives, strict=True):
            both = self._python_matches(doc, intel) + found
            out.append([self.supported[i] for i in sorted(both)])
        return out

"""``query_string`` (default operator OR, ``analyze_wildcard``) as Elasticsearch runs it on our
keyword-heavy mapping, parsed with luqum.

Lucene's classic parser does not give AND precedence over OR: the clauses of one level form one
BooleanQuery, an ``AND`` makes its neighbours required and ``NOT`` prohibits its clause (so
``a AND b OR c`` requires a and b, and ``a OR NOT b`` is "a and not b"). luqum builds a
precedence tree; :func:`_clauses` reads it back into the flat clause list and the occurs are set
as Lucene's ``addClause`` sets them."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from luqum.exceptions import ParseError
from luqum.parser import parser
from luqum.tree import (
    AndOperation,
    Boost,
    FieldGroup,
    From,
    Group,
    Item,
    Not,
    OrOperation,
    Phrase,
    Plus,
    Prohibit,
    Range,
    Regex,
    SearchField,
    To,
    UnknownOperation,
    Word,
)

from detectors.stream import leaves
from detectors.stream.errors import Unsupported
from detectors.stream.fields import field_spec
from detectors.stream.predicates import ALWAYS, Pred, boolean

_OPS = (AndOperation, OrOperation, UnknownOperation)


def _unescape(text: str) -> str:
    """Lucene's discardEscapeChar (``\\u`` escapes refused: rare, and easy to misread)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 == len(text):
                raise Unsupported(f"term {text!r} ends with an escape")
            if text[i + 1] == "u":
                raise Unsupported(f"term {text!r} has a \\u escape")
            out.append(text[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _has_wildcard(text: str) -> bool:
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] in "*?":
            return True
        i += 1
    return False


def _clauses(node: Item) -> list[tuple[str | None, Item]]:
    """The flat (conjunction, operand) list of one level: the operator between two operands is
    the one of their lowest common node."""
    if not isinstance(node, _OPS):
        return [(None, node)]
    op = "AND" if isinstance(node, AndOperation) else "OR" if isinstance(node, OrOperation) else None
    out: list[tuple[str | None, Item]] = []
    for k, child in enumerate(node.children):
        sub = _clauses(child)
        if k:
            sub[0] = (op, sub[0][1])
        out += sub
    return out


def _level(node: Item, field: str | None) -> Pred:
    must: list[Pred] = []
    should: list[Pred] = []
    must_not: list[Pred] = []
    occurs: list[str] = []
    preds: list[Pred] = []
    for conj, operand in _clauses(node):
        mod = None
        if isinstance(operand, Not | Prohibit):
            mod, operand = "NOT", operand.a
        elif isinstance(operand, Plus):
            mod, operand = "REQ", operand.a
        if isinstance(operand, Not | Prohibit | Plus):
            raise Unsupported("two modifiers on one clause")
        if occurs and conj == "AND" and occurs[-1] != "MUST_NOT":
            occurs[-1] = "MUST"
        prohibited = mod == "NOT"
        required = mod == "REQ" or (conj == "AND" and not prohibited)
        occurs.append("MUST_NOT" if prohibited else "MUST" if required else "SHOULD")
        preds.append(_operand(operand, field))
    for occur, p in zip(occurs, preds, strict=True):
        {"MUST": must, "SHOULD": should, "MUST_NOT": must_not}[occur].append(p)
    if len(preds) == 1 and occurs[0] != "MUST_NOT":
        return preds[0]
    return boolean(must, should, must_not, 0 if must else (1 if should else 0))


def _operand(node: Item, field: str | None) -> Pred:
    if isinstance(node, Group):
        return _level(node.expr, field)
    if isinstance(node, SearchField):
        if field is not None:
            raise Unsupported(f"field {node.name} inside the group of field {field}")
        expr = node.expr
        if isinstance(expr, FieldGroup):
            return _level(expr.expr, node.name)
        return _value(node.name, expr)
    if isinstance(node, (*_OPS, Not, Prohibit, Plus)):
        return _level(node, field)
    if field is None:
        raise Unsupported(f"a term without a field ({node}): it searches every field")
    if isinstance(node, FieldGroup):
        return _level(node.expr, field)
    return _value(field, node)


def _bound(word: Item) -> str | None:
    if not isinstance(word, Word | Phrase):
        raise Unsupported(f"range bound {word}")
    text = word.value[1:-1] if isinstance(word, Phrase) else word.value
    return None if text == "*" else _unescape(text)


def _value(name: str, expr: Item) -> Pred:
    if "*" in name or "?" in name:
        if name == "*" and isinstance(expr, Word) and expr.value == "*":
            return ALWAYS
        raise Unsupported(f"field pattern {name}")
    if isinstance(expr, Boost):  # a boost changes scores, never which documents match
        expr = expr.expr
    if name == "_exists_":
        if not isinstance(expr, Word) or _has_wildcard(expr.value):
            raise Unsupported(f"_exists_:{expr}")
        return leaves.exists(field_spec(_unescape(expr.value)))
    spec = field_spec(name)
    if isinstance(expr, Word):
        v = expr.value
        if v == "*":
            return leaves.exists(spec)
        if _has_wildcard(v):
            if "\\u" in v.replace("\\\\", ""):
                raise Unsupported(f"term {v!r} has a \\u escape")
            return leaves.wildcard(spec, v)
        return leaves.term(spec, _unescape(v))
    if isinstance(expr, Phrase):
        # a field searched with the keyword analyzer: a phrase is one term, as a word is
        if spec.kind not in ("keyword", "ip", "long", "boolean", "unmapped"):
            raise Unsupported(f"phrase on {name} ({spec.kind} field)")
        return leaves.term(spec, _unescape(expr.value[1:-1]))
    if isinstance(expr, Regex):
        return leaves.regexp(spec, expr.value[1:-1])
    if isinstance(expr, Range):
        return leaves.range_(spec, _bound(expr.low), _bound(expr.high), expr.include_low, expr.include_high)
    if isinstance(expr, From):
        return leaves.range_(spec, _bound(expr.a), None, expr.include, False)
    if isinstance(expr, To):
        return leaves.range_(spec, None, _bound(expr.a), False, expr.include)
    if isinstance(expr, FieldGroup | Group):
        return _level(expr.expr, name)
    raise Unsupported(f"{type(expr).__name__} {expr} on {name}")


@lru_cache(maxsize=4096)
def compile_lucene(query: str) -> Pred:
    """The predicate of a ``query_string`` query; raises Unsupported."""
    try:
        tree: Any = parser.parse(query)
    except (ParseError, Exception) as exc:  # luqum raises plain errors for some input too
        raise Unsupported(f"luqum cannot parse the query: {exc}") from exc
    return _operand(tree, None)

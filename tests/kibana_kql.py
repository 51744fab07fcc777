"""The subset of KQL the shipped saved objects use, translated to Lucene ``query_string``, so the
tests can run each object's query against a real node (Kibana itself cannot run there).

Supported: ``field:value`` / ``field : "quoted value"`` terms, ``field:*`` (the field exists),
joined by ``and``/``or``/``not`` and parentheses. Other wildcards, ranges, bare words and value
lists are rejected with a
:class:`~detectors.kibana.objects.KibanaError`, so an object using more fails its test rather
than being translated wrongly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from detectors.kibana.objects import KibanaError

_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<lp>\() | (?P<rp>\)) |
        (?P<quoted>"(?:[^"\\]|\\.)*") |
        (?P<colon>:) |
        (?P<star>\*(?=[\s)]|$)) |
        (?P<word>[^\s():"\\*<>{}]+)
    )""",
    re.VERBOSE,
)
_FIELD_RE = re.compile(r"^[A-Za-z_@][A-Za-z0-9_@.]*$")
_LUCENE_SPECIAL = re.compile(r'([+\-=&|><!(){}\[\]^"~*?:\\/ ])')
_OPS = {"and": "AND", "or": "OR", "not": "NOT"}


def _tokens(query: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(query):
        if query[pos:].strip() == "":
            break
        m = _TOKEN_RE.match(query, pos)
        if not m or m.end() == pos:
            raise KibanaError(f"KQL {query!r}: unsupported syntax at {query[pos:].strip()[:20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


@dataclass(frozen=True, slots=True)
class KqlQuery:
    """A parsed query of the supported KQL subset: ``field:value`` / ``field : "quoted value"``
    / ``field:*`` terms joined by ``and``/``or``/``not`` and parentheses (no other wildcards,
    ranges or bare words)."""

    lucene: str
    fields: tuple[str, ...]


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.toks = _tokens(query)
        self.i = 0
        self.fields: list[str] = []

    def fail(self, why: str) -> KibanaError:
        return KibanaError(f"KQL {self.query!r}: {why} (supported: field:value, and/or/not, parentheses)")

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise self.fail("unexpected end")
        self.i += 1
        return tok

    def op(self, name: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "word" and tok[1].lower() == name:
            self.i += 1
            return True
        return False

    def expr(self) -> str:  # or-expression
        parts = [self.conj()]
        while self.op("or"):
            parts.append(self.conj())
        return " OR ".join(parts)

    def conj(self) -> str:
        parts = [self.unary()]
        while self.op("and"):
            parts.append(self.unary())
        return " AND ".join(parts)

    def unary(self) -> str:
        if self.op("not"):
            return f"NOT {self.unary()}"
        kind, text = self.take()
        if kind == "lp":
            inner = self.expr()
            if self.take()[0] != "rp":
                raise self.fail("missing ')'")
            return f"({inner})"
        if kind != "word" or text.lower() in _OPS or not _FIELD_RE.match(text):
            raise self.fail(f"expected a field name, got {text!r}")
        if self.take()[0] != "colon":
            raise self.fail(f"expected ':' after {text!r} (bare words are not supported)")
        vkind, value = self.take()
        if vkind == "star":  # KQL's exists query
            self.fields.append(text)
            return f"_exists_:{text}"
        if vkind == "quoted":
            literal = json.loads(value)
        elif vkind == "word" and value.lower() not in _OPS:
            literal = value
        else:
            raise self.fail(f"expected a value after {text}:")
        self.fields.append(text)
        return f'{text}:"{_escape_phrase(literal)}"' if vkind == "quoted" else f"{text}:{_escape(literal)}"

    def parse(self) -> KqlQuery:
        if not self.toks:
            return KqlQuery("", ())
        lucene = self.expr()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return KqlQuery(lucene, tuple(dict.fromkeys(self.fields)))


def _escape(value: str) -> str:
    return _LUCENE_SPECIAL.sub(r"\\\1", value)


def _escape_phrase(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def parse_kql(query: str) -> KqlQuery:
    """Parse the supported KQL subset; raises :class:`KibanaError` for anything else."""
    return _Parser(query).parse()


def kql_to_lucene(query: str) -> str:
    """The Lucene ``query_string`` equivalent of a supported KQL query ('' for an empty one)."""
    return parse_kql(query).lucene


def es_query(
    kql: str, *, time_field: str | None = None, time_range: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The Elasticsearch query Kibana's request amounts to: the KQL as ``query_string`` (strict:
    not lenient, AND default) plus the time filter on the data view's time field."""
    filters: list[dict[str, Any]] = []
    lucene = kql_to_lucene(kql)
    if lucene:
        filters.append({"query_string": {"query": lucene, "default_operator": "AND", "lenient": False}})
    if time_field and time_range:
        filters.append({"range": {time_field: {"gte": time_range[0], "lte": time_range[1]}}})
    return {"bool": {"filter": filters}} if filters else {"match_all": {}}

"""Lucene's term patterns as Python regular expressions matched against a whole term:
wildcards (``*``, ``?``, ``\\`` escapes) and Lucene regular expressions. What Lucene reads
differently from Python, or what we cannot be sure of, raises :class:`Unsupported`."""

from __future__ import annotations

import re
from collections.abc import Callable

from detectors.stream.errors import Unsupported

#: Lucene's predefined classes (RegExp.expandPredefined), not Python's Unicode ones
_PREDEFINED = {
    "d": "0-9",
    "D": "^0-9",
    "s": " \\t\\n\\r",
    "S": "^ \\t\\n\\r",
    "w": "a-zA-Z_0-9",
    "W": "^a-zA-Z_0-9",
}
#: meaningful to Lucene's RegExp with the ALL flags Elasticsearch passes; refused unescaped
_LUCENE_OPERATORS = set('&~#@<>"')


def _char(c: str, fold: Callable[[str], str] | None) -> str:
    if fold is None or fold(c) == c:
        return re.escape(c)
    return f"[{re.escape(c)}{re.escape(fold(c))}]"


def wildcard_regex(pattern: str, fold: Callable[[str], str] | None = None) -> str:
    """A wildcard pattern (escapes as Lucene's WildcardQuery reads them) as a regex; ``fold``:
    the other case a literal character may take (a case-insensitive query)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 == len(pattern):
                out.append(re.escape("\\"))  # a trailing escape is a literal backslash
                break
            out.append(_char(pattern[i + 1], fold))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else _char(c, fold))
        i += 1
    return "".join(out)


def wildcard_literals(pattern: str) -> list[str]:
    """The literal runs of a wildcard pattern (escapes resolved)."""
    runs: list[str] = [""]
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            runs[-1] += pattern[i + 1]
            i += 2
            continue
        if c in "*?":
            runs.append("")
        else:
            runs[-1] += c
        i += 1
    return [r for r in runs if r]


#: Lucene 10's regexp case folding adds these to the ASCII pairs (the Kelvin sign and the long s
#: fold to k and s; the dotless and dotted Turkish i do not fold to i: seen on ES 9)
_FOLD_EXTRA = {"k": "\u212a", "s": "\u017f"}


def _ascii_fold(c: str) -> str:
    return c.lower() + c.upper() + _FOLD_EXTRA.get(c.lower(), "")


class _RegexReader:
    """A recursive-descent reader of Lucene's RegExp grammar, writing Python syntax."""

    def __init__(self, pattern: str, ascii_fold: bool) -> None:
        self.p = pattern
        self.i = 0
        self.fold = ascii_fold

    def fail(self, why: str) -> Unsupported:
        return Unsupported(f"regular expression /{self.p}/: {why}")

    def peek(self) -> str | None:
        return self.p[self.i] if self.i < len(self.p) else None

    def union(self) -> str:
        parts = [self.concat()]
        while self.peek() == "|":
            self.i += 1
            parts.append(self.concat())
        return "|".join(parts)

    def concat(self) -> str:
        out: list[str] = []
        while self.peek() not in (None, "|", ")"):
            out.append(self.repeat())
        return "".join(out)

    def repeat(self) -> str:
        atom = self.atom()
        while self.peek() in ("*", "+", "?", "{"):
            c = self.p[self.i]
            self.i += 1
            if c == "{":
                end = self.p.find("}", self.i)
                body = self.p[self.i : end] if end > 0 else ""
                if not re.fullmatch(r"\d+(,\d*)?", body):
                    raise self.fail(f"repeat {{{body}}}")
                self.i = end + 1
                c = "{" + body + "}"
            atom = f"(?:{atom}){c}"  # stacked repeats stay repeats (Python reads *+ as possessive)
        return atom

    def folds(self, c: str) -> bool:
        if not self.fold or c.lower() == c.upper():
            return False
        if not c.isascii():
            raise self.fail(f"case-insensitive non-ASCII letter {c!r}")
        return True

    def literal(self, c: str) -> str:
        return f"[{_ascii_fold(c)}]" if self.folds(c) else re.escape(c)

    def atom(self) -> str:
        c = self.p[self.i]
        self.i += 1
        if c == ".":
            return "."
        if c == "(":
            inner = self.union()
            if self.peek() != ")":
                raise self.fail("unbalanced (")
            self.i += 1
            return f"(?:{inner})"
        if c == "[":
            return self.char_class()
        if c == "\\":
            return self.escape(in_class=False)
        if c in _LUCENE_OPERATORS or c in "*+?{}]":
            raise self.fail(f"operator {c!r}")
        return self.literal(c)

    def escape(self, in_class: bool) -> str:
        if self.i >= len(self.p):
            raise self.fail("trailing backslash")
        c = self.p[self.i]
        self.i += 1
        if c in _PREDEFINED:
            body = _PREDEFINED[c]
            if in_class:
                if body.startswith("^"):
                    raise self.fail(f"\\{c} inside a class")
                return body
            return f"[{body}]"
        return re.escape(c) if in_class else self.literal(c)

    def char_class(self) -> str:
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        items: list[str] = []
        while True:
            c = self.peek()
            if c is None:
                raise self.fail("unclosed [")
            self.i += 1
            if c == "]" and items:
                break
            if c == "\\":
                items.append(self.escape(in_class=True))
                continue
            if c in "[]-":
                raise self.fail(f"{c!r} in a character class")
            if self.peek() == "-" and self.i + 1 < len(self.p) and self.p[self.i + 1] != "]":
                hi = self.p[self.i + 1]
                if hi in "\\[]" or ord(hi) < ord(c):
                    raise self.fail(f"range {c}-{hi}")
                # Lucene folds the case of single characters only, never of a range (seen on ES 9)
                items.append(f"{re.escape(c)}-{re.escape(hi)}")
                self.i += 2
                continue
            items.append(_ascii_fold(c) if self.folds(c) else re.escape(c))
        return "[" + ("^" if negate else "") + "".join(items) + "]"


def lucene_regex(pattern: str, ascii_case_insensitive: bool = False) -> re.Pattern[str]:
    """A Lucene regular expression (whole-term match) as a compiled Python one."""
    reader = _RegexReader(pattern, ascii_case_insensitive)
    body = reader.union()
    if reader.i != len(pattern):
        raise reader.fail(f"unexpected {pattern[reader.i]!r}")
    try:
        return re.compile(body, re.DOTALL)
    except re.error as exc:
        raise reader.fail(str(exc)) from exc

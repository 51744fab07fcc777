"""Sigma regular expressions as Lucene's: a Sigma regex searches (``re.search``), a Lucene one
matches the whole term; Lucene has no ``(?:``, no lookaround, no flags, and treats ``<>#@&~"``
as operators. :func:`lucene_regex` rewrites what can be rewritten and refuses the rest."""

from __future__ import annotations

from sigma.exceptions import SigmaFeatureNotSupportedByBackendError

_OPERATORS = set('<>#@&~"')


def _lower_literals(pattern: str) -> str:
    """Letters lower-cased outside escapes (``\\D`` and ``\\W`` keep their meaning)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        out.append(c.lower())
        i += 1
    return "".join(out)


def _class_end(pattern: str, start: int) -> int:
    """The index after the ``]`` closing the character class opened at ``start``."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return min(i + 1, len(pattern))


def split_flags(pattern: str) -> tuple[str, bool]:
    """A leading ``(?i)`` (SigmaHQ writes it inline) → the pattern without it, and True."""
    if pattern.startswith("(?i)"):
        return pattern[4:], True
    return pattern, False


def _top_level_alternatives(pattern: str) -> list[str]:
    """``a|b`` split where the bar is outside groups, classes and escapes."""
    parts: list[str] = []
    depth = 0
    in_class = False
    start = 0
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[" and not in_class:
            i = _class_end(pattern, i)
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    parts.append(pattern[start:])
    return parts


def lucene_regex(pattern: str, *, ignore_case: bool) -> str:
    """``pattern`` (Python/PCRE syntax, search semantics) as a Lucene whole-term regex."""
    alternatives = _top_level_alternatives(pattern)
    if len(alternatives) > 1:
        return "(" + "|".join(lucene_regex(a, ignore_case=ignore_case) for a in alternatives) + ")"
    out: list[str] = []
    i = 0
    n = len(pattern)
    anchored_start = pattern.startswith("^")
    if anchored_start:
        i = 1
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt in "AZbBzG":
                raise SigmaFeatureNotSupportedByBackendError(
                    f"Lucene regular expressions have no \\{nxt} anchor"
                )
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[":
            end = _class_end(pattern, i)
            out.append(pattern[i:end])
            i = end
            continue
        if c == "(" and pattern.startswith("(?", i):
            if pattern.startswith("(?:", i):
                out.append("(")
                i += 3
                continue
            raise SigmaFeatureNotSupportedByBackendError(
                "Lucene regular expressions have no lookaround, named groups or inline flags"
            )
        if c == "$" and i == n - 1:
            break
        if c in ("^", "$"):
            raise SigmaFeatureNotSupportedByBackendError(
                "Lucene regular expressions have no ^ or $ inside a pattern"
            )
        if c in _OPERATORS:
            out.append("\\" + c)
        else:
            out.append(c)
        i += 1
    body = "".join(out)
    anchored_end = pattern.endswith("$") and not pattern.endswith("\\$")
    if ignore_case:
        body = _lower_literals(body)
    return ("" if anchored_start else ".*") + body + ("" if anchored_end else ".*")

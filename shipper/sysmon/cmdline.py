"""Windows command-line splitting, exactly as ``CommandLineToArgvW`` does it.

Hand-written rather than ``mslex.split_msvcrt``, which implements the same quote and backslash
rules for the arguments but (1) splits on every Unicode whitespace character (Python's ``\\s``:
newlines, NBSP, U+3000…) where Windows splits on space and tab only, and (2) does not give
``argv[0]`` its special rule (the program name ends at the next quote or at the first space or
tab; backslashes and quotes in it are not escapes). ``tests/unit/test_sysmon_cmdline.py`` checks
this against mslex wherever the two sets of rules coincide.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

_BLANK_RE: Final = re.compile(r"[ \t]")
# One token of the argument part: a run of blanks, backslashes followed by quotes, or plain text
# (anything but blanks, backslashes and quotes; or backslashes not followed by a quote).
_TOKEN_RE: Final = re.compile(r'([ \t]+)|(\\*)("+)|([^ \t\\"]+|\\+)')
_SPLIT_BLANKS_RE: Final = re.compile(r"[ \t]+")
# Fast path when no quote is escaped or doubled: an argument is a run of unquoted text and
# quoted sections (a quote only toggles quote mode); the quotes are then simply removed.
_SIMPLE_ARG_RE: Final = re.compile(r'(?:[^ \t"]+|"[^"]*"?)+')


def _program_name(s: str) -> tuple[str, int]:
    """argv[0] and the index where the arguments start."""
    if s.startswith('"'):
        end = s.find('"', 1)
        if end < 0:
            return s[1:], len(s)
        return s[1:end], end + 1
    m = _BLANK_RE.search(s)
    i = m.start() if m is not None else len(s)
    return s[:i], i


def _split_arguments(s: str) -> list[str]:
    """The arguments after argv[0], by the msvcrt-2008 rules ``CommandLineToArgvW`` uses:
    2n backslashes + quote → n backslashes and a quote-mode toggle; 2n+1 → n backslashes and a
    literal quote; inside quotes, ``""`` is a literal quote (which also leaves quote mode)."""
    if '"' not in s:
        return [a for a in _SPLIT_BLANKS_RE.split(s) if a]
    if '\\"' not in s and '""' not in s:
        return [a.replace('"', "") for a in _SIMPLE_ARG_RE.findall(s)]
    args: list[str] = []
    cur: list[str] = []
    in_arg = False
    quote_mode = False
    for m in _TOKEN_RE.finditer(s):
        blanks, slashes, quotes, text = m.groups()
        if blanks is not None:
            if quote_mode:
                cur.append(blanks)
            elif in_arg:
                args.append("".join(cur))
                cur = []
                in_arg = False
            continue
        in_arg = True
        if quotes is None:
            cur.append(text)
            continue
        n_slashes = len(slashes)
        cur.append("\\" * (n_slashes // 2))
        n_quotes = len(quotes)
        if n_slashes % 2:
            cur.append('"')
            n_quotes -= 1
        # Each further quote: in quote mode, a second consecutive quote is a literal one and
        # ends quote mode (the "3 quotes" counter of the original implementation).
        q = 1 if quote_mode else 0
        for _ in range(n_quotes):
            q += 1
            if q == 3:
                cur.append('"')
                q = 0
        if q == 2:
            q = 0
        quote_mode = q == 1
    if in_arg:
        args.append("".join(cur))
    return args


@lru_cache(maxsize=8192)
def _split_cached(command_line: str) -> tuple[str, ...]:
    program, rest = _program_name(command_line)
    # Arguments start after blanks; a quoted program name may be followed directly by text.
    return (program, *_split_arguments(command_line[rest:]))


def split_command_line(command_line: str) -> list[str]:
    """Split like ``CommandLineToArgvW``; an empty command line gives no arguments.

    Results are cached (command lines, parent command lines above all, repeat a lot); each call
    returns a new list."""
    if not command_line:
        return []
    return list(_split_cached(command_line))

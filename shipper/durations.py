"""The one duration grammar of the project's YAML (rule intervals and windows, feed refreshes).

A duration is a positive whole number of seconds (``90``, also as text) or one or more parts of
a number and a unit — ``s``, ``m``, ``h``, ``d``, ``w`` — in any case, white space allowed
between them: ``30s``, ``5m``, ``1h30m``, ``7d``, ``2w``. The total must be positive.
"""

from __future__ import annotations

import re

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# \d, not [0-9]: both former grammars took any decimal digit, and int() reads them all
_SECONDS = re.compile(r"\d+")
_PARTS = re.compile(r"(?:\d+[smhdw])+")
_PART = re.compile(r"(\d+)([smhdw])")
EXAMPLES = "30s, 5m, 1h30m, 7d or 2w"


def parse_duration(value: object) -> int:
    """A duration (a YAML value: a number of seconds or text) → seconds; ValueError if not one."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        compact = "".join(value.split()).lower()
        if _SECONDS.fullmatch(compact):
            seconds = int(compact)
        elif _PARTS.fullmatch(compact):
            seconds = sum(int(n) * UNITS[u] for n, u in _PART.findall(compact))
        else:
            raise ValueError(f"{value!r} is not a duration like {EXAMPLES}")
    else:
        raise ValueError(f"{value!r} is not a duration like {EXAMPLES}")
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, not {value!r}")
    return seconds

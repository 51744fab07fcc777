"""Compact sorted key sets for intel in memory: a million indicators in tens of megabytes.

:class:`SortedKeys` holds byte strings (UTF-8 values, raw hash digests, packed IP addresses)
sorted, with an ``array('Q')`` of 8-byte heads searched by the C ``bisect`` and the rest of
each key in one ``bytes`` blob; :class:`Ranges` holds merged integer ranges (CIDR networks).
Both are immutable once built; lookups take microseconds.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate

_HEAD = 8  # bytes of a key in its head, zero-padded: heads follow the keys' bytewise order
_BIG = sys.byteorder == "big"


def _head(key: bytes) -> int:
    return int.from_bytes(key[:_HEAD].ljust(_HEAD, b"\0"), "big")


def _heads(prefixes: Iterable[bytes]) -> array[int]:
    # from one bytes object in C rather than an int per key in Python: most of the build time
    heads = array("Q")
    heads.frombytes(b"".join(prefixes))
    if not _BIG:
        heads.byteswap()
    return heads


class SortedKeys:
    """An immutable set of byte strings, sorted bytewise, with an ``array('Q')`` of their
    zero-padded 8-byte heads for the C ``bisect``. Keys of one width (hash digests, one IP
    family) keep only what follows the head: ``max(8, width)`` bytes a key; keys of mixed widths
    keep the whole key and a 4-byte offset as well (``8 + len + 4``)."""

    __slots__ = ("_blob", "_heads", "_offsets", "_width")

    def __init__(self, keys: Iterable[bytes]) -> None:
        ordered = sorted(set(keys))
        widths = {len(k) for k in ordered}
        self._width: int | None = widths.pop() if len(widths) == 1 else (0 if not ordered else None)
        self._offsets: array[int] | None = None
        self._heads = _heads(k[:_HEAD].ljust(_HEAD, b"\0") for k in ordered)
        if self._width is not None:
            self._blob = b"".join(k[_HEAD:] for k in ordered)  # empty up to 8 bytes a key
        else:
            self._blob = b"".join(ordered)
            code = "I" if len(self._blob) < 2**32 else "Q"
            self._offsets = array(code, accumulate(map(len, ordered), initial=0))

    def __len__(self) -> int:
        return len(self._heads)

    def _item(self, i: int) -> bytes:
        """Key ``i`` as compared within a run of equal heads: its rest past the head when all
        keys have one width, else the whole key."""
        if self._offsets is None:
            w = (self._width or 0) - _HEAD
            return self._blob[i * w : (i + 1) * w]
        return self._blob[self._offsets[i] : self._offsets[i + 1]]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, bytes):
            return False
        width = self._width
        if width is not None and len(key) != width:
            return False
        head = _head(key)
        heads = self._heads
        lo = bisect_left(heads, head)
        if lo == len(heads) or heads[lo] != head:
            return False
        if width is not None and width <= _HEAD:
            return True  # the head is the whole key
        probe = key if width is None else key[_HEAD:]
        hi = bisect_right(heads, head, lo)
        while lo < hi:  # keys sharing a head (e.g. one IPv6 /64): binary search on the rest
            mid = (lo + hi) // 2
            found = self._item(mid)
            if found == probe:
                return True
            if found < probe:
                lo = mid + 1
            else:
                hi = mid
        return False

    def nbytes(self) -> int:
        """Bytes held by the arrays and the blob (object headers aside)."""
        extra = self._offsets.itemsize * len(self._offsets) if self._offsets is not None else 0
        return self._heads.itemsize * len(self._heads) + len(self._blob) + extra


class Ranges:
    """Closed integer ranges, merged where they overlap or touch, for containment tests.
    ``bits`` 32 packs the bounds into ``array('I')``; wider bounds stay Python ints."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, ranges: Iterable[tuple[int, int]], bits: int) -> None:
        merged: list[list[int]] = []
        for start, end in sorted(ranges):
            if merged and start <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        starts = [r[0] for r in merged]
        ends = [r[1] for r in merged]
        self._starts: Sequence[int] = array("I", starts) if bits <= 32 else starts
        self._ends: Sequence[int] = array("I", ends) if bits <= 32 else ends

    def __len__(self) -> int:
        return len(self._starts)

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        i = bisect_right(self._starts, value) - 1
        return i >= 0 and value <= self._ends[i]

    def nbytes(self) -> int:
        if isinstance(self._starts, array):
            return 2 * self._starts.itemsize * len(self._starts)
        return 2 * 8 * len(self._starts)  # list slots only; small ints are shared or 32 bytes more

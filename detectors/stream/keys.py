"""Compact sorted key sets for intel in memory: a million indicators in tens of megabytes.

:class:`SortedKeys` holds byte strings (UTF-8 values, raw hash digests, packed IP addresses)
sorted, with an ``array('Q')`` of 8-byte heads searched by the C ``bisect`` and the rest of
each key in one ``bytes`` blob; :class:`Ranges` holds merged integer ranges (CIDR networks).
Both are immutable once built; lookups take microseconds.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence

_HEAD = 7  # bytes of the key in its head; the eighth byte is the key's length


def _head(key: bytes) -> int:
    # the first 7 bytes (zero-padded), then the length: "ab" and "ab\0" stay apart; keys sort
    # by (head, rest), which is not bytewise order, and need not be
    n = len(key)
    if n >= _HEAD:
        return int.from_bytes(key[:_HEAD], "big") << 8 | (n if n < 255 else 255)
    return int.from_bytes(key, "big") << (8 * (_HEAD - n) + 8) | n


def _pairs(keys: Iterable[bytes]) -> set[tuple[int, bytes]]:
    # inline for the common long keys: a function call per key is most of the build time
    out: set[tuple[int, bytes]] = set()
    short: list[bytes] = []
    for k in keys:
        n = len(k)
        if n >= _HEAD:
            out.add((int.from_bytes(k[:_HEAD], "big") << 8 | (n if n < 255 else 255), k[_HEAD:]))
        else:
            short.append(k)
    out.update((_head(k), b"") for k in short)
    return out


class SortedKeys:
    """An immutable set of byte strings. Fixed-width keys (hash digests, one IP family) store
    their rests without offsets: 8 + max(0, width - 7) bytes a key."""

    __slots__ = ("_blob", "_heads", "_offsets", "_width")

    def __init__(self, keys: Iterable[bytes]) -> None:
        pairs = sorted(_pairs(keys))
        self._heads = array("Q", [h for h, _ in pairs])
        rests = [r for _, r in pairs]
        self._blob = b"".join(rests)
        widths = {len(r) for r in rests}
        self._width: int | None = widths.pop() if len(widths) == 1 else (0 if not rests else None)
        self._offsets: array[int] | None = None
        if self._width is None:
            code = "I" if len(self._blob) < 2**32 else "Q"
            offsets = array(code, [0])
            total = 0
            for rest in rests:
                total += len(rest)
                offsets.append(total)
            self._offsets = offsets

    def __len__(self) -> int:
        return len(self._heads)

    def _rest(self, i: int) -> bytes:
        if self._offsets is None:
            w = self._width or 0
            return self._blob[i * w : (i + 1) * w]
        return self._blob[self._offsets[i] : self._offsets[i + 1]]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, bytes):
            return False
        head = _head(key)
        heads = self._heads
        lo = bisect_left(heads, head)
        if lo == len(heads) or heads[lo] != head:
            return False
        rest = key[_HEAD:]
        if self._width == 0:
            return True  # the head is the whole key
        hi = bisect_right(heads, head, lo)
        while lo < hi:  # keys sharing a head (e.g. one IPv6 /56): binary search on the rests
            mid = (lo + hi) // 2
            found = self._rest(mid)
            if found == rest:
                return True
            if found < rest:
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

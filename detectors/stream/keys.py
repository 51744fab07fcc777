"""Compact sorted key sets for intel in memory: a million indicators in tens of megabytes.

:class:`SortedKeys` holds byte strings (UTF-8 values, raw hash digests, packed IP addresses)
sorted, with an array of 8-byte heads (4-byte for IPv4 addresses) searched by the C ``bisect``
and the rest of each key in one ``bytes`` blob; it is built without a set and with joins done
batch by batch, so building holds little more than the keys themselves; :class:`Ranges` holds
merged integer ranges (CIDR networks). Both are immutable once built; lookups take microseconds.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate, groupby, islice
from operator import eq
from typing import TypeVar

_HEAD = 8  # bytes of a key in its head, zero-padded: heads follow the keys' bytewise order
_BIG = sys.byteorder == "big"
_T = TypeVar("_T", bytes, int)
_BATCH = 65_536  # keys joined at a time: one batch of slices alive, never one per key


def _head(key: bytes, size: int = _HEAD) -> int:
    return int.from_bytes(key[:size].ljust(size, b"\0"), "big")


def _joined(parts: Callable[[int, int], Iterable[bytes]], n: int) -> bytes:
    """``b"".join`` of ``parts(start, stop)`` batch by batch: joining a generator of a million
    slices at once would hold them all (tens of megabytes) for a moment."""
    return b"".join(b"".join(parts(i, min(n, i + _BATCH))) for i in range(0, n, _BATCH))


def _heads(keys: Sequence[bytes], size: int) -> array[int]:
    # from bytes in C rather than an int per key in Python: most of the build time
    heads = array("I" if size == 4 else "Q")
    assert heads.itemsize == size
    heads.frombytes(_joined(lambda a, b: (k[:size].ljust(size, b"\0") for k in keys[a:b]), len(keys)))
    if not _BIG:
        heads.byteswap()
    return heads


def unique_sorted(keys: list[bytes]) -> list[bytes]:
    """``keys`` sorted bytewise, in place, without duplicates (no set: a million keys would
    add 32 MB)."""
    keys.sort()
    return _dedup(keys)


def _dedup(ordered: list[_T]) -> list[_T]:
    """A sorted list without its repeats (itself when it has none, the usual case)."""
    if any(map(eq, ordered, islice(ordered, 1, None))):
        return [k for k, _ in groupby(ordered)]
    return ordered


class SortedKeys:
    """An immutable set of byte strings, sorted bytewise, with an array of their zero-padded
    heads for the C ``bisect``: 4-byte heads (``array('I')``) for keys of one width up to 4
    (IPv4 addresses: the head is the key), else 8-byte heads (``array('Q')``). Keys of one width
    keep only what follows the head: ``max(head, width)`` bytes a key; keys of mixed widths keep
    the whole key and a 4-byte offset as well (``8 + len + 4``)."""

    __slots__ = ("_blob", "_heads", "_offsets", "_size", "_width")

    def __init__(self, keys: Iterable[bytes]) -> None:
        self._build(unique_sorted(list(keys)))

    @classmethod
    def of_sorted(cls, ordered: list[bytes]) -> SortedKeys:
        """From keys already sorted bytewise and unique (:func:`unique_sorted`)."""
        self = cls.__new__(cls)
        self._build(ordered)
        return self

    @classmethod
    def of_ints(cls, values: Iterable[int], width: int) -> SortedKeys:
        """Keys of ``width`` (at most 4) bytes given as big-endian integers, in any order: no
        bytes object per key (a million IPv4 addresses in 4 MB)."""
        if width > 4:
            raise ValueError("of_ints takes keys of at most 4 bytes")
        self = cls.__new__(cls)
        ordered = sorted(values)  # Python ints for a moment: no in-place sort for an array
        unique = _dedup(ordered)
        self._width, self._size, self._offsets, self._blob = width, 4, None, b""
        self._heads = array("I", unique if width == 4 else [v << (8 * (4 - width)) for v in unique])
        return self

    def _build(self, ordered: list[bytes]) -> None:
        widths = {len(k) for k in ordered}
        self._width: int | None = widths.pop() if len(widths) == 1 else (0 if not ordered else None)
        self._size = 4 if self._width is not None and 0 < self._width <= 4 else _HEAD
        self._offsets: array[int] | None = None
        self._heads = _heads(ordered, self._size)
        if self._width is not None and self._width <= _HEAD:
            self._blob = b""  # the heads are the keys
        elif self._width is not None:
            self._blob = _joined(lambda a, b: (k[_HEAD:] for k in ordered[a:b]), len(ordered))
        else:
            self._blob = _joined(lambda a, b: ordered[a:b], len(ordered))
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
        head = _head(key, self._size)
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

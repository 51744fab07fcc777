"""One feed's list of one indicator type, in memory, answering as Elasticsearch's ``terms``
lookup does for the event field it is matched against.

Three ways a list is compared (the event field's mapping decides, see :mod:`detectors.stream.intel`):

* **ip fields** (``destination.ip`` …, type ``ip``): addresses compare as Elasticsearch stores
  them, 16 bytes with IPv4 as IPv4-mapped IPv6 — so ``::ffff:1.2.3.4`` is ``1.2.3.4`` — and a
  ``cidr`` value is a prefix query: containment, IPv4 and IPv6, an IPv6 network holding the
  mapped range included;
* **keyword fields**: exact strings; hashes are kept as raw digests (half the bytes of hex);
* **``.caseless`` sub-fields** (image path / name types): Elasticsearch's ``lowercase``
  normaliser applies to the event value and to the looked-up values alike.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from .keys import Ranges, SortedKeys, unique_sorted
from .values import java_lower

_HASH_HEX = {"md5": 32, "sha1": 40, "sha256": 64}
_HEX = frozenset("0123456789abcdef")
_MAPPED = 0xFFFF << 32
_MAPPED_PREFIX = bytes(10) + b"\xff\xff"
Addr = bytes
"""An address as compared: 4 bytes (IPv4, IPv4-mapped IPv6 included) or 16 (IPv6)."""


def parse_addr(text: str) -> Addr | None:
    """The address an ``ip`` field would hold for ``text`` — 4 bytes for IPv4 and IPv4-mapped
    IPv6, else 16 —, or None if it is not one."""
    try:
        return socket.inet_pton(socket.AF_INET, text)
    except OSError:
        pass
    try:
        packed = socket.inet_pton(socket.AF_INET6, text)
    except OSError:
        try:  # a scope id (fe80::1%eth0): the address without it
            packed = ipaddress.IPv6Address(text).packed
        except ValueError:
            return None
    return packed[12:] if packed[:12] == _MAPPED_PREFIX else packed


def _network(text: str) -> tuple[int, int, int] | None:
    """(family, first, last) of a CIDR value (host bits ignored), IPv4-mapped networks as IPv4;
    None if unparsable. By hand: ``ipaddress.ip_network`` costs tens of microseconds a value."""
    addr, sep, bits = text.partition("/")
    packed = parse_addr(addr)
    if packed is None or (sep and not (bits.isdigit() and bits.isascii())) or "%" in addr:
        return None
    width = 8 * len(packed)
    prefix = int(bits) if sep else width
    if len(packed) == 4 and ":" in addr:  # a mapped network: the prefix counts 128 bits
        prefix -= 96
        if prefix < 0:
            return 6, *_span(_MAPPED | int.from_bytes(packed, "big"), prefix + 96, 128)
    if prefix > width:
        return None
    return (4 if width == 32 else 6), *_span(int.from_bytes(packed, "big"), prefix, width)


def _span(value: int, prefix: int, width: int) -> tuple[int, int]:
    host = (1 << (width - prefix)) - 1
    return value & ~host, value | host


_pton4 = partial(socket.inet_pton, socket.AF_INET)


def _canonical(addr: Addr) -> str:
    """The text ``inet_ntop`` writes for an address (what the intel parsers store)."""
    return socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)


@dataclass(frozen=True, slots=True, eq=False)
class TypeList:
    """The values of one (feed, indicator type). ``text``: the values as looked up on a keyword
    field (lower-cased for caseless types; for hashes only those that are not lower-case hex
    of the type's length, the others are in ``digests``; for ``ip`` with ``ip_text`` only those
    that are not an address written canonically, the others are in ``addrs``/``addrs6``);
    ``addrs``/``v4_nets``/``v6_nets``: the ``ip``/``cidr`` values as an ip field compares them
    (IPv4 and IPv6 apart)."""

    type: str
    count: int
    text: SortedKeys
    digests: SortedKeys | None = None
    addrs: SortedKeys | None = None
    addrs6: SortedKeys | None = None
    v4_nets: Ranges | None = None
    v6_nets: Ranges | None = None
    ip_text: bool = False

    def has_text(self, value: str) -> bool:
        if self.digests is not None and len(value) == _HASH_HEX[self.type] and _HEX.issuperset(value):
            return bytes.fromhex(value) in self.digests
        if self.ip_text:  # every listed address was written canonically: addrs answer for them
            addr = parse_addr(value)
            if addr is not None and _canonical(addr) == value:
                return self.has_addr(addr)
        if not self.text:
            return False
        return value.encode("utf-8", "surrogatepass") in self.text

    def has_addr(self, addr: Addr) -> bool:
        if self.addrs is not None:  # one set per family: fixed-width keys, no offsets
            return addr in (self.addrs if len(addr) == 4 else self.addrs6 or ())
        value = int.from_bytes(addr, "big")
        if len(addr) == 4 and self.v4_nets is not None and value in self.v4_nets:
            return True
        if self.v6_nets is None or not len(self.v6_nets):
            return False
        return (_MAPPED | value if len(addr) == 4 else value) in self.v6_nets

    def nbytes(self) -> int:
        parts = (self.text, self.digests, self.addrs, self.addrs6, self.v4_nets, self.v6_nets)
        return sum(p.nbytes() for p in parts if p is not None)


def _encode(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


class ListBuilder:
    """One :class:`TypeList` built chunk by chunk: each chunk's strings become compact keys
    (bytes, digests, integers) as it is added and can be dropped at once, so a million values
    are never held as strings, keys and sorted copies all together."""

    def __init__(self, type_: str, *, caseless: bool) -> None:
        self.type, self.caseless, self.count = type_, caseless, 0
        self._text: list[bytes] = []  # keyword-field keys (see TypeList.text)
        self._digests: list[bytes] = []
        self._v4 = array("I")  # canonical IPv4 addresses, as integers
        self._v6: list[bytes] = []  # canonical IPv6 addresses
        self._odd: list[tuple[Addr, bytes]] = []  # ip values not written canonically, and their text
        self._nets: list[tuple[int, int, int]] = []

    def add(self, values: Sequence[str]) -> None:
        self.count += len(values)
        if self.caseless:
            self._text += [_encode(java_lower(v)) for v in values]
        elif self.type in _HASH_HEX:
            width = _HASH_HEX[self.type]
            for v in values:
                if len(v) == width and _HEX.issuperset(v):
                    self._digests.append(bytes.fromhex(v))
                else:
                    self._text.append(_encode(v))
        elif self.type == "ip":
            self._add_ips(values)
        else:
            self._text += [_encode(v) for v in values]
            if self.type == "cidr":
                self._nets += [n for n in map(_network, values) if n is not None]

    def _add_ips(self, values: Sequence[str]) -> None:
        try:  # the usual chunk: IPv4 addresses written canonically, checked in C (map)
            four = list(map(_pton4, values))
        except OSError:
            four = []
        if not four or list(map(socket.inet_ntoa, four)) != list(values):
            four = []
            for v in values:
                addr = parse_addr(v)
                if addr is None:
                    self._text.append(_encode(v))
                elif _canonical(addr) != v:
                    self._odd.append((addr, _encode(v)))
                elif len(addr) == 4:
                    four.append(addr)
                else:
                    self._v6.append(addr)
        packed = array("I")
        packed.frombytes(b"".join(four))  # big-endian words: one C call a chunk
        if sys.byteorder == "little":
            packed.byteswap()
        self._v4.extend(packed)

    def build(self) -> TypeList:
        """The list; the builder is emptied (its intermediates freed)."""
        t, count = self.type, self.count
        if t == "ip":
            return self._build_ips()
        text = SortedKeys.of_sorted(unique_sorted(self._text))
        self._text = []
        if t in _HASH_HEX:
            digests = SortedKeys.of_sorted(unique_sorted(self._digests))
            self._digests = []
            return TypeList(t, count, text, digests=digests)
        if t == "cidr":
            nets, self._nets = self._nets, []
            v4 = Ranges(((a, b) for f, a, b in nets if f == 4), bits=32)
            v6 = Ranges(((a, b) for f, a, b in nets if f == 6), bits=128)
            return TypeList(t, count, text, v4_nets=v4, v6_nets=v6)
        return TypeList(t, count, text)

    def _build_ips(self) -> TypeList:
        odd, self._odd = self._odd, []
        if odd:  # some text is not its address's canonical text: every text is kept as it is
            self._text += [b for _, b in odd]
            self._text += [_encode(_canonical(i.to_bytes(4, "big"))) for i in self._v4]
            self._text += [_encode(_canonical(a)) for a in self._v6]
        ints, self._v4 = self._v4, array("I")
        ints.extend(int.from_bytes(a, "big") for a, _ in odd if len(a) == 4)
        addrs = SortedKeys.of_ints(ints, 4)
        del ints
        v6, self._v6 = self._v6, []
        v6 += [a for a, _ in odd if len(a) == 16]
        addrs6 = SortedKeys.of_sorted(unique_sorted(v6))
        text = SortedKeys.of_sorted(unique_sorted(self._text))
        self._text = []
        return TypeList("ip", self.count, text, addrs=addrs, addrs6=addrs6, ip_text=not odd)


def build_list(type_: str, values: list[str], *, caseless: bool) -> TypeList:
    """The in-memory list of one (feed, type) from its lookup chunks' ``values``."""
    builder = ListBuilder(type_, caseless=caseless)
    builder.add(values)
    return builder.build()

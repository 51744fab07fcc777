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
from collections.abc import Iterable
from dataclasses import dataclass

from .keys import Ranges, SortedKeys
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


@dataclass(frozen=True, slots=True, eq=False)
class TypeList:
    """The values of one (feed, indicator type). ``text``: the values as looked up on a keyword
    field (lower-cased for caseless types; for hashes only those that are not lower-case hex
    of the type's length, the others are in ``digests``); ``addrs``/``v4_nets``/``v6_nets``:
    the ``ip``/``cidr`` values as an ip field compares them (IPv4 and IPv6 apart)."""

    type: str
    count: int
    text: SortedKeys
    digests: SortedKeys | None = None
    addrs: SortedKeys | None = None
    addrs6: SortedKeys | None = None
    v4_nets: Ranges | None = None
    v6_nets: Ranges | None = None

    def has_text(self, value: str) -> bool:
        if self.digests is not None and len(value) == _HASH_HEX[self.type] and _HEX.issuperset(value):
            return bytes.fromhex(value) in self.digests
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


def _encode(values: Iterable[str]) -> Iterable[bytes]:
    return (v.encode("utf-8", "surrogatepass") for v in values)


def build_list(type_: str, values: list[str], *, caseless: bool) -> TypeList:
    """The in-memory list of one (feed, type) from its lookup chunks' ``values``."""
    if caseless:
        return TypeList(type_, len(values), SortedKeys(_encode(java_lower(v) for v in values)))
    if type_ in _HASH_HEX:
        width = _HASH_HEX[type_]
        hexes = [v for v in values if len(v) == width and _HEX.issuperset(v)]
        others = [v for v in values if not (len(v) == width and _HEX.issuperset(v))]
        digests = SortedKeys(bytes.fromhex(v) for v in hexes)
        return TypeList(type_, len(values), SortedKeys(_encode(others)), digests=digests)
    text = SortedKeys(_encode(values))
    if type_ == "ip":
        addrs = [a for a in (parse_addr(v) for v in values) if a is not None]
        ip4 = SortedKeys(a for a in addrs if len(a) == 4)
        ip6 = SortedKeys(a for a in addrs if len(a) == 16)
        return TypeList(type_, len(values), text, addrs=ip4, addrs6=ip6)
    if type_ == "cidr":
        nets = [n for n in (_network(v) for v in values) if n is not None]
        v4 = Ranges(((a, b) for f, a, b in nets if f == 4), bits=32)
        v6 = Ranges(((a, b) for f, a, b in nets if f == 6), bits=128)
        return TypeList(type_, len(values), text, v4_nets=v4, v6_nets=v6)
    return TypeList(type_, len(values), text)

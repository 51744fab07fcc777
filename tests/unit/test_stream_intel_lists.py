"""The packed key sets and per-type lists of intel in memory, against plain Python sets and
``ipaddress`` containment (the cluster comparison is in tests/integration/test_stream_intel.py)."""

from __future__ import annotations

import ipaddress
import random

import pytest

from detectors.stream.keys import Ranges, SortedKeys
from detectors.stream.lists import ListBuilder, build_list, parse_addr
from detectors.stream.values import java_lower as lucene_lower
from detectors.stream.values import utf16_len


def _random_keys(rng: random.Random, n: int) -> list[bytes]:
    keys = [rng.randbytes(rng.choice((0, 1, 3, 7, 8, 9, 16, 32))) for _ in range(n)]
    # keys sharing their 7-byte head, and keys that differ only by trailing NULs
    keys += [b"shared-" + rng.randbytes(rng.randint(0, 5)) for _ in range(200)]
    keys += [b"ab", b"ab\0", b"ab\0\0", b"", b"\0"]
    return keys


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sorted_keys_answer_as_a_set(seed: int) -> None:
    rng = random.Random(seed)
    keys = _random_keys(rng, 3000)
    listed = set(keys[::2])
    packed = SortedKeys(listed)
    assert len(packed) == len(listed)
    for key in keys + [k + b"\0" for k in keys[:300]] + [k[:-1] for k in keys[:300] if k]:
        assert (key in packed) == (key in listed), key


def test_fixed_width_keys_carry_no_offsets() -> None:
    digests = [bytes.fromhex(f"{i:064x}") for i in range(1000)]
    packed = SortedKeys(digests)
    assert packed.nbytes() == 1000 * 32  # an 8-byte head and the 24 bytes after it
    assert all(d in packed for d in digests)
    assert bytes.fromhex(f"{1000:064x}") not in packed
    assert "not bytes" not in packed


def test_ranges_merge_and_contain() -> None:
    rng = random.Random(7)
    spans = [(a, a + rng.randint(0, 50)) for a in (rng.randint(0, 5000) for _ in range(300))]
    ranges = Ranges(spans, bits=32)
    assert len(ranges) < len(spans)  # overlapping and touching spans merged
    for v in range(-5, 5100):
        assert (v in ranges) == any(a <= v <= b for a, b in spans), v
    assert 3 not in Ranges([], bits=128)


def test_ip_list_compares_as_an_ip_field() -> None:
    lst = build_list("ip", ["10.0.0.1", "2001:db8::1", "::ffff:192.0.2.9", "not an ip"], caseless=False)
    for value in ("10.0.0.1", "::ffff:10.0.0.1", "2001:db8:0:0::1", "192.0.2.9"):
        addr = parse_addr(value)
        assert addr is not None and lst.has_addr(addr), value
    for value in ("10.0.0.2", "2001:db8::2", "::10.0.0.1"):
        addr = parse_addr(value)
        assert addr is not None and not lst.has_addr(addr), value
    assert parse_addr("not an ip") is None
    assert lst.has_text("not an ip") and lst.has_text("::ffff:192.0.2.9") and not lst.has_text("192.0.2.9")


def test_cidr_list_contains_like_ipaddress() -> None:
    nets = ["10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32", "::ffff:172.16.0.0/108", "64:ff9b::/96"]
    lst = build_list("cidr", nets, caseless=False)
    parsed = [ipaddress.ip_network(n) for n in nets]
    rng = random.Random(3)
    probes = ["10.255.255.255", "11.0.0.0", "192.168.1.77", "192.168.2.1", "172.16.3.4", "172.32.0.1"]
    probes += ["2001:db8:ffff::1", "2001:db9::1", "::ffff:10.1.2.3", "64:ff9b::a00:1"]
    probes += [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(500)]
    for value in probes:
        addr = parse_addr(value)
        assert addr is not None
        ip = ipaddress.ip_address(value)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        want = any(ip.version == n.version and ip in n for n in parsed)
        want = want or (ip.version == 4 and ipaddress.IPv6Address(f"::ffff:{ip}") in parsed[3])
        assert lst.has_addr(addr) == want, value


def test_an_ipv6_network_holding_the_mapped_range_contains_ipv4() -> None:
    # Elasticsearch stores IPv4 as IPv4-mapped IPv6: ::/0 matches every address
    lst = build_list("cidr", ["::/0"], caseless=False)
    for value in ("1.2.3.4", "::1", "255.255.255.255"):
        addr = parse_addr(value)
        assert addr is not None and lst.has_addr(addr)
    narrow = build_list("cidr", ["2001:db8::/32"], caseless=False)
    addr = parse_addr("1.2.3.4")
    assert addr is not None and not narrow.has_addr(addr)


def test_hashes_are_digests_and_compare_exactly() -> None:
    sha = "ab" * 32
    lst = build_list("sha256", [sha, "not-hex-but-listed"], caseless=False)
    assert lst.digests is not None and len(lst.digests) == 1
    assert lst.has_text(sha)
    assert not lst.has_text(sha.upper())  # a keyword field is case-sensitive
    assert not lst.has_text("cd" * 32)
    assert lst.has_text("not-hex-but-listed")


def test_caseless_lists_lower_case_as_lucene() -> None:
    lst = build_list("image_path", [r"C:\Temp\EVIL.exe", "İNSTALL.exe"], caseless=True)
    assert lst.has_text(lucene_lower(r"c:\temp\Evil.EXE"))
    assert lst.has_text("install.exe")  # U+0130 lower-cases to a plain i in Lucene
    assert lucene_lower("ΟΔΟΣ") == "οδοσ"  # per code point: no final sigma
    assert utf16_len("a\U0001f600") == 3


def test_networks_parse_as_ipaddress_does() -> None:
    rng = random.Random(9)
    texts = [f"{ipaddress.IPv4Address(rng.getrandbits(32))}/{rng.randint(0, 32)}" for _ in range(300)]
    texts += [f"{ipaddress.IPv6Address(rng.getrandbits(128))}/{rng.randint(0, 128)}" for _ in range(300)]
    texts += ["::ffff:10.1.0.0/112", "::ffff:0:0/80", "10.0.0.0", "10.0.0.0/33", "10.0.0.0/", "x/8"]
    for text in texts:
        lst = build_list("cidr", [text], caseless=False)
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            assert len(lst.v4_nets or ()) + len(lst.v6_nets or ()) == 0, text
            continue
        mapped = net.version == 6 and net.prefixlen >= 96 and net.network_address.ipv4_mapped is not None
        inside = str(net.network_address.ipv4_mapped if mapped else net.network_address)  # type: ignore[union-attr]
        last = net.broadcast_address
        outside = last + 1 if int(last) < (1 << net.max_prefixlen) - 1 else None
        for value, want in ((inside, True), (str(last), True), (str(outside), False)):
            addr = parse_addr(value)
            if addr is not None:
                assert lst.has_addr(addr) == want, (text, value)


def _ip_texts(rng: random.Random, n: int) -> list[str]:
    out = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(n)]
    out += [str(ipaddress.IPv6Address(rng.getrandbits(128))) for _ in range(n // 4)]
    return out


def _other_forms(value: str) -> list[str]:
    """The same address written otherwise: upper-case, mapped, zero-padded, with a scope."""
    ip = ipaddress.ip_address(value)
    if ip.version == 4:
        return [f"::ffff:{value}", "0" + value, value + " "]
    return [value.upper(), ip.exploded, value + "%eth0"]


@pytest.mark.parametrize("odd", [False, True])
def test_ip_text_answers_as_a_set_of_the_strings(odd: bool) -> None:
    # canonical addresses are answered from the address sets, not kept as text as well
    rng = random.Random(11)
    listed = [*_ip_texts(rng, 400), "not an ip", "10.0.0.1"]
    if odd:  # a value not written canonically: every text is then kept as it is
        listed += ["::ffff:192.0.2.9", "2001:DB8::9"]
    lst = build_list("ip", listed, caseless=False)
    assert lst.ip_text is not odd and (len(lst.text) == 1 if not odd else len(lst.text) == len(set(listed)))
    probes = listed + [f for v in [*listed[:100], "192.0.2.9", "2001:db8::9"] for f in _other_forms(v)]
    probes += [*_ip_texts(rng, 200), "", "10.0.0.01"]
    for value in probes:
        assert lst.has_text(value) == (value in listed), value


def test_lists_built_chunk_by_chunk_equal_one_build() -> None:
    rng = random.Random(12)
    values = [*_ip_texts(rng, 900), "::ffff:10.1.2.3", "x", "10.0.0.1", "10.0.0.1"]
    probes = values + _ip_texts(rng, 300) + [v.upper() for v in values[:50]]
    addrs = {parse_addr(v) for v in values}
    for type_, caseless in (("ip", False), ("domain", False), ("image_name", True)):
        whole = build_list(type_, values, caseless=caseless)
        builder = ListBuilder(type_, caseless=caseless)
        for start in range(0, len(values), 97):
            builder.add(values[start : start + 97])
        parts = builder.build()
        assert parts.count == whole.count == len(values) and parts.nbytes() == whole.nbytes()
        for value in probes:
            want = (lucene_lower(value) in {lucene_lower(v) for v in values}) if caseless else value in values
            assert parts.has_text(lucene_lower(value) if caseless else value) == want, (type_, value)
            addr = parse_addr(value)
            if type_ == "ip" and addr is not None:
                assert parts.has_addr(addr) == (addr in addrs), value


def test_keys_of_four_bytes_and_integers() -> None:
    rng = random.Random(13)
    keys = {rng.randbytes(4) for _ in range(2000)}
    ints = [int.from_bytes(k, "big") for k in keys] * 2  # repeats are dropped
    for packed in (SortedKeys(keys), SortedKeys.of_ints(ints, 4)):
        assert len(packed) == len(keys) and packed.nbytes() == 4 * len(keys)
        for key in list(keys)[:500] + [rng.randbytes(4) for _ in range(500)] + [b"abc", b"abcde"]:
            assert (key in packed) == (key in keys), key
    short = SortedKeys.of_ints([1, 2, 0xFFFF], 2)
    assert b"\0\1" in short and b"\xff\xff" in short and b"\0\3" not in short
    with pytest.raises(ValueError):
        SortedKeys.of_ints([1], 5)

"""DNS query events: status names, record types, answers, registered domains."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipper.raw import SYSMON_PROVIDER, RawEvent
from shipper.sysmon.dns import Answer, parse_ip, parse_query_results, status_name, type_name
from shipper.sysmon.ecs import to_ecs
from shipper.sysmon.psl import DomainParts, split_domain


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("0", "SUCCESS"),
        ("9003", "DNS_ERROR_RCODE_NAME_ERROR"),
        ("9501", "DNS_INFO_NO_RECORDS"),
        ("1460", "ERROR_TIMEOUT"),
        ("123", "ERROR_INVALID_NAME"),
        ("424242", "424242"),
        ("x", "x"),
    ],
)
def test_status_name(code: str, name: str) -> None:
    assert status_name(code) == name


def test_type_names() -> None:
    assert [type_name(n) for n in (1, 5, 12, 28, 33, 65, 4242)] == [
        "A",
        "CNAME",
        "PTR",
        "AAAA",
        "SRV",
        "HTTPS",
        "TYPE4242",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("::ffff:13.107.21.200", "13.107.21.200"),
        ("::FFFF:10.0.0.1", "10.0.0.1"),
        ("2a00:1450:4001:0829:0000:0000:0000:200e", "2a00:1450:4001:829::200e"),
        ("fe80::1%12", "fe80::1"),
        ("::1", "::1"),
        ("10.0.0.300", None),
        ("::ffff:10.0.0.300", None),
        ("example.com", None),
    ],
)
def test_parse_ip(value: str, expected: str | None) -> None:
    assert parse_ip(value) == expected


def test_query_results() -> None:
    parsed = parse_query_results(
        "type:  5 edge.example.net;type:  33 _ldap._tcp.dc;::ffff:13.107.21.200;2a00:1450::200e;"
    )
    assert parsed.answers == (
        Answer("CNAME", "edge.example.net"),
        Answer("SRV", "_ldap._tcp.dc"),
        Answer("A", "13.107.21.200"),
        Answer("AAAA", "2a00:1450::200e"),
    )
    assert parsed.ips == ("13.107.21.200", "2a00:1450::200e")
    assert parsed.hosts == ("edge.example.net", "_ldap._tcp.dc")
    assert parsed.complete


def test_invalid_ip_dropped_and_flagged() -> None:
    parsed = parse_query_results("1.2.3.4;999.1.1.1;type: x host;")
    assert parsed.ips == ("1.2.3.4",)
    assert not parsed.complete


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("www.example.co.uk", DomainParts("example.co.uk", "co.uk", "www")),
        ("a.b.example.com.au", DomainParts("example.com.au", "com.au", "a.b")),
        ("login.Microsoftonline.COM", DomainParts("microsoftonline.com", "com", "login")),
        ("example.com.", DomainParts("example.com", "com", None)),
        ("6.39.18.172.in-addr.arpa.", DomainParts("172.in-addr.arpa", "in-addr.arpa", "6.39.18")),
        ("wpad", None),
        ("co.uk", None),
        ("192.168.1.1", None),
        ("a..b", None),
    ],
)
def test_split_domain(name: str, expected: DomainParts | None) -> None:
    assert split_domain(name) == expected


def test_event_22_document() -> None:
    doc = to_ecs(
        RawEvent(
            provider=SYSMON_PROVIDER,
            event_id=22,
            event_data={
                "QueryName": "www.example.co.uk",
                "QueryStatus": "0",
                "QueryResults": "type:  5 cdn.example.net;::ffff:192.0.2.7;bogus;",
            },
        )
    )
    assert doc["dns"] == {
        "question": {
            "name": "www.example.co.uk",
            "registered_domain": "example.co.uk",
            "top_level_domain": "co.uk",
            "subdomain": "www",
        },
        "answers": [{"type": "CNAME", "data": "cdn.example.net"}, {"type": "A", "data": "192.0.2.7"}],
        "resolved_ip": ["192.0.2.7"],
    }
    assert doc["sysmon"]["dns"]["status"] == "SUCCESS"
    assert doc["network"]["protocol"] == "dns"
    # the question too, as Elastic's pipeline does
    assert doc["related"] == {"ip": ["192.0.2.7"], "hosts": ["www.example.co.uk", "cdn.example.net"]}
    # an entry was dropped, so the raw string is kept as well
    assert doc["winlog"]["event_data"]["QueryResults"].endswith("bogus;")
    assert doc["event"]["kind"] == "event"


@given(st.lists(st.one_of(st.ip_addresses().map(str), st.text(max_size=15)), max_size=6))
def test_query_results_total(entries: list[str]) -> None:
    parsed = parse_query_results(";".join(entries))
    for ip in parsed.ips:
        assert parse_ip(ip) == ip
    assert len(parsed.answers) == len(parsed.ips) + len(parsed.hosts)

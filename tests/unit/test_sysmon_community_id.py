"""Community ID v1 (known vectors from the spec and the reference implementation)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import communityid
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipper.raw import SYSMON_PROVIDER, RawEvent
from shipper.sysmon.community_id import community_id
from shipper.sysmon.ecs import to_ecs


@pytest.mark.parametrize(
    ("flow", "expected"),
    [
        (("tcp", "128.232.110.120", 34855, "66.35.250.204", 80), "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
        (("tcp", "66.35.250.204", 80, "128.232.110.120", 34855), "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
        (("tcp", "127.0.0.1", 1234, "10.0.0.1", 80), "1:mgRgpIZSu0KHDp/QrtcWZpkJpMU="),
        (("TCP", "10.0.0.1", 10, "10.0.0.2", 20), "1:9j2Dzwrw7T9E+IZi4b4IVT66HBI="),
        (("udp", "8.8.8.8", 53, "192.168.1.52", 54585), "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
    ],
)
def test_vectors(flow: tuple[str, str, int, str, int], expected: str) -> None:
    assert community_id(*flow) == expected


@pytest.mark.parametrize(
    "flow",
    [
        ("gre", "1.1.1.1", 1, "2.2.2.2", 2),
        ("tcp", "1.1.1", 1, "2.2.2.2", 2),
        ("tcp", "1.1.1.1", 70000, "2.2.2.2", 2),
    ],
)
def test_not_computable(flow: tuple[str, str, int, str, int]) -> None:
    assert community_id(*flow) is None


def test_event_3_document() -> None:
    doc = to_ecs(
        RawEvent(
            provider=SYSMON_PROVIDER,
            event_id=3,
            event_data={
                "Protocol": "tcp",
                "Initiated": "false",
                "SourceIsIpv6": "False",
                "SourceIp": "128.232.110.120",
                "SourcePort": "34855",
                "DestinationIp": "66.35.250.204",
                "DestinationPort": "80",
                "DestinationPortName": "HTTP",
            },
        )
    )
    assert doc["network"] == {
        "transport": "tcp",
        "protocol": "http",
        "direction": "ingress",
        "type": "ipv4",
        "community_id": "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
    }
    assert doc["source"] == {"ip": "128.232.110.120", "port": 34855}
    assert doc["destination"] == {"ip": "66.35.250.204", "port": 80}
    assert doc["related"]["ip"] == ["128.232.110.120", "66.35.250.204"]


_PORT = st.integers(min_value=0, max_value=65535)


@given(
    st.sampled_from(["tcp", "udp"]),
    st.one_of(
        st.tuples(st.ip_addresses(v=4), st.ip_addresses(v=4)),
        st.tuples(st.ip_addresses(v=6), st.ip_addresses(v=6)),
    ),
    _PORT,
    _PORT,
)
def test_agrees_with_reference_implementation(
    transport: str, addrs: tuple[IPv4Address | IPv6Address, IPv4Address | IPv6Address], sport: int, dport: int
) -> None:
    src, dst = str(addrs[0]), str(addrs[1])
    tpl = communityid.FlowTuple(communityid.get_proto(transport), src, dst, sport, dport)
    assert community_id(transport, src, sport, dst, dport) == communityid.CommunityID().calc(tpl)

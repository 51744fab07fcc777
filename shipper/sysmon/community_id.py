"""Community ID v1 of a Sysmon network connection.

The ``communityid`` package is the reference implementation and the tests check this module
against it on random flows. It is not called here: per flow it rebuilds its tuple object five
times and eagerly formats a log line (about 30 µs, more than mapping all the rest of the
event), while the v1 algorithm for port-carrying protocols is a single SHA-1 over a fixed layout:
seed (2 bytes), source and destination address, protocol, a zero byte, source and destination
port — with the endpoints ordered so that both directions of a flow get the same ID.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
from typing import Final

#: The transports Sysmon reports (and SCTP, the other port-carrying protocol of the spec).
_PROTOCOLS: Final[dict[str, int]] = {"tcp": 6, "udp": 17, "sctp": 132}
_SEED: Final = struct.pack("!H", 0)
_PORTS: Final = struct.Struct("!HH")


def community_id(
    transport: str, source_ip: str, source_port: int, dest_ip: str, dest_port: int
) -> str | None:
    """``1:<base64 sha1>`` for a TCP/UDP/SCTP flow, or None when it cannot be computed (other
    transports, bad or mixed-family addresses, ports outside 0–65535)."""
    proto = _PROTOCOLS.get(transport.lower())
    if proto is None or not (0 <= source_port <= 65535 and 0 <= dest_port <= 65535):
        return None
    family = socket.AF_INET6 if ":" in source_ip else socket.AF_INET
    try:
        src = socket.inet_pton(family, source_ip)
        dst = socket.inet_pton(family, dest_ip)
    except (OSError, ValueError):
        return None
    if (src, source_port) > (dst, dest_port):
        src, dst = dst, src
        source_port, dest_port = dest_port, source_port
    digest = hashlib.sha1(
        _SEED + src + dst + bytes((proto, 0)) + _PORTS.pack(source_port, dest_port), usedforsecurity=False
    ).digest()
    return "1:" + base64.b64encode(digest).decode("ascii")

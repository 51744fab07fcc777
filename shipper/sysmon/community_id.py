"""Community ID v1 of a Sysmon network connection (a thin wrapper over ``communityid``)."""

from __future__ import annotations

from functools import cache

import communityid


@cache
def _algo() -> communityid.CommunityID:
    return communityid.CommunityID(seed=0, use_base64=True)


def community_id(
    transport: str, source_ip: str, source_port: int, dest_ip: str, dest_port: int
) -> str | None:
    """``1:<base64 sha1>`` for a TCP/UDP/SCTP flow, or None when it cannot be computed (other
    transports, bad addresses or ports)."""
    proto = communityid.get_proto(transport)
    if proto not in communityid.PORT_PROTOS:
        return None
    try:
        tpl = communityid.FlowTuple(proto, source_ip, dest_ip, source_port, dest_port)
        result = _algo().calc(tpl)
    except (communityid.Error, ValueError, TypeError, OSError):
        return None
    return result if isinstance(result, str) else None

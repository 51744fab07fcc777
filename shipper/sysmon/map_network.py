"""Network connection fields and the community ID (the native core's ``map/network.rs``)."""

from __future__ import annotations

from shipper.sysmon.community_id import community_id
from shipper.sysmon.map_tree import Doc, State, add_unique, sub


def map_network(st: State, doc: Doc) -> None:
    data = st.data
    transport = data.pop("Protocol", None)
    if transport is not None:
        sub(doc, "network")["transport"] = transport.lower()
    for side, name in (("source", "SourceIp"), ("destination", "DestinationIp")):
        ip = st.take_ip(name)
        if ip is not None:
            sub(doc, side)["ip"] = ip
            add_unique(st.ips, ip)
    for name in ("DestinationPortName", "SourcePortName"):
        port_name = data.get(name)
        if port_name is not None:
            sub(doc, "network")["protocol"] = port_name.lower()
            del data[name]
            break
    initiated = st.take_bool("Initiated")
    if initiated is not None:
        sub(doc, "network")["direction"] = "egress" if initiated else "ingress"
    ipv6 = st.take_bool("SourceIsIpv6")
    if ipv6 is not None:
        sub(doc, "network")["type"] = "ipv6" if ipv6 else "ipv4"
    if transport is not None:
        src = doc.get("source")
        dst = doc.get("destination")
        if src and dst and "ip" in src and "ip" in dst and "port" in src and "port" in dst:
            cid = community_id(transport, src["ip"], src["port"], dst["ip"], dst["port"])
            if cid is not None:
                doc["network"]["community_id"] = cid

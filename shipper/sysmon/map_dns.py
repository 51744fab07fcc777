"""DNS query fields: the question split by the public suffix list, answers, status (the native
core's ``map/dns.rs``; the values themselves are parsed by :mod:`shipper.sysmon.dns`)."""

from __future__ import annotations

from shipper.sysmon.dns import parse_query_results, status_name
from shipper.sysmon.map_tree import Doc, State, add_unique, sub
from shipper.sysmon.psl import split_domain


def map_dns(st: State, doc: Doc, eid: int | None) -> None:
    data = st.data
    name = data.pop("QueryName", None)
    if name is not None:
        question: Doc = {"name": name}
        parts = split_domain(name)
        if parts is not None:
            question["registered_domain"] = parts.registered_domain
            question["top_level_domain"] = parts.top_level_domain
            if parts.subdomain:
                question["subdomain"] = parts.subdomain
        sub(doc, "dns")["question"] = question
        if name:
            add_unique(st.hosts, name)
    status = data.pop("QueryStatus", None)
    if status is not None:
        sub(sub(doc, "sysmon"), "dns")["status"] = status_name(status)
    results = data.get("QueryResults")
    if results is not None:
        parsed = parse_query_results(results)
        if parsed.answers:
            dns = sub(doc, "dns")
            dns["answers"] = [{"type": a.type, "data": a.data} for a in parsed.answers]
            if parsed.ips:
                resolved: list[str] = []
                for ip in parsed.ips:
                    add_unique(resolved, ip)
                    add_unique(st.ips, ip)
                dns["resolved_ip"] = resolved
            for host in parsed.hosts:
                add_unique(st.hosts, host)
        if parsed.complete:
            del data["QueryResults"]
    if eid == 22:
        sub(doc, "network")["protocol"] = "dns"

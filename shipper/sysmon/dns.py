"""DNS query events (22): Windows DNS status codes, record types and ``QueryResults``."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Final

#: Windows error codes Sysmon writes as ``QueryStatus`` (winerror.h, DNS_ERROR_* and the Win32
#: errors the resolver returns).
DNS_STATUS: Final[dict[int, str]] = {
    0: "SUCCESS",
    5: "ERROR_ACCESS_DENIED",
    8: "ERROR_NOT_ENOUGH_MEMORY",
    13: "ERROR_INVALID_DATA",
    14: "ERROR_OUTOFMEMORY",
    87: "ERROR_INVALID_PARAMETER",
    123: "ERROR_INVALID_NAME",
    1214: "ERROR_INVALID_NETNAME",
    1223: "ERROR_CANCELLED",
    1460: "ERROR_TIMEOUT",
    4312: "ERROR_OBJECT_NOT_FOUND",
    9001: "DNS_ERROR_RCODE_FORMAT_ERROR",
    9002: "DNS_ERROR_RCODE_SERVER_FAILURE",
    9003: "DNS_ERROR_RCODE_NAME_ERROR",
    9004: "DNS_ERROR_RCODE_NOT_IMPLEMENTED",
    9005: "DNS_ERROR_RCODE_REFUSED",
    9006: "DNS_ERROR_RCODE_YXDOMAIN",
    9007: "DNS_ERROR_RCODE_YXRRSET",
    9008: "DNS_ERROR_RCODE_NXRRSET",
    9009: "DNS_ERROR_RCODE_NOTAUTH",
    9010: "DNS_ERROR_RCODE_NOTZONE",
    9016: "DNS_ERROR_RCODE_BADSIG",
    9017: "DNS_ERROR_RCODE_BADKEY",
    9018: "DNS_ERROR_RCODE_BADTIME",
    9501: "DNS_INFO_NO_RECORDS",
    9502: "DNS_ERROR_BAD_PACKET",
    9503: "DNS_ERROR_NO_PACKET",
    9504: "DNS_ERROR_RCODE",
    9505: "DNS_ERROR_UNSECURE_PACKET",
    9506: "DNS_REQUEST_PENDING",
    9551: "DNS_ERROR_INVALID_TYPE",
    9552: "DNS_ERROR_INVALID_IP_ADDRESS",
    9553: "DNS_ERROR_INVALID_PROPERTY",
    9554: "DNS_ERROR_TRY_AGAIN_LATER",
    9555: "DNS_ERROR_NOT_UNIQUE",
    9556: "DNS_ERROR_NON_RFC_NAME",
    9557: "DNS_STATUS_FQDN",
    9558: "DNS_STATUS_DOTTED_NAME",
    9559: "DNS_STATUS_SINGLE_PART_NAME",
    9560: "DNS_ERROR_INVALID_NAME_CHAR",
    9561: "DNS_ERROR_NUMERIC_NAME",
    9562: "DNS_ERROR_NOT_ALLOWED_ON_ROOT_SERVER",
    9563: "DNS_ERROR_NOT_ALLOWED_UNDER_DELEGATION",
    9564: "DNS_ERROR_CANNOT_FIND_ROOT_HINTS",
    9565: "DNS_ERROR_INCONSISTENT_ROOT_HINTS",
    9566: "DNS_ERROR_DWORD_VALUE_TOO_SMALL",
    9567: "DNS_ERROR_DWORD_VALUE_TOO_LARGE",
    9568: "DNS_ERROR_BACKGROUND_LOADING",
    9569: "DNS_ERROR_NOT_ALLOWED_ON_RODC",
    9570: "DNS_ERROR_NOT_ALLOWED_UNDER_DNAME",
    9571: "DNS_ERROR_DELEGATION_REQUIRED",
    9572: "DNS_ERROR_INVALID_POLICY_TABLE",
    9701: "DNS_ERROR_RECORD_DOES_NOT_EXIST",
    9702: "DNS_ERROR_RECORD_FORMAT",
    9703: "DNS_ERROR_NODE_CREATION_FAILED",
    9704: "DNS_ERROR_UNKNOWN_RECORD_TYPE",
    9705: "DNS_ERROR_RECORD_TIMED_OUT",
    9706: "DNS_ERROR_NAME_NOT_IN_ZONE",
    9707: "DNS_ERROR_CNAME_LOOP",
    9708: "DNS_ERROR_NODE_IS_CNAME",
    9709: "DNS_ERROR_CNAME_COLLISION",
    9710: "DNS_ERROR_RECORD_ONLY_AT_ZONE_ROOT",
    9711: "DNS_ERROR_RECORD_ALREADY_EXISTS",
    9712: "DNS_ERROR_SECONDARY_DATA",
    9713: "DNS_ERROR_NO_CREATE_CACHE_DATA",
    9714: "DNS_ERROR_NAME_DOES_NOT_EXIST",
    9715: "DNS_WARNING_PTR_CREATE_FAILED",
    9716: "DNS_WARNING_DOMAIN_UNDELETED",
    9717: "DNS_ERROR_DS_UNAVAILABLE",
    9718: "DNS_ERROR_DS_ZONE_ALREADY_EXISTS",
    9719: "DNS_ERROR_NO_BOOTFILE_IF_DS_ZONE",
    9751: "DNS_INFO_AXFR_COMPLETE",
    9752: "DNS_ERROR_AXFR",
    9753: "DNS_INFO_ADDED_LOCAL_WINS",
    9801: "DNS_STATUS_CONTINUE_NEEDED",
    9851: "DNS_ERROR_NO_TCPIP",
    9852: "DNS_ERROR_NO_DNS_SERVERS",
}

#: DNS resource record type numbers (IANA) → mnemonic.
DNS_TYPES: Final[dict[int, str]] = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    12: "PTR",
    13: "HINFO",
    15: "MX",
    16: "TXT",
    17: "RP",
    18: "AFSDB",
    24: "SIG",
    25: "KEY",
    28: "AAAA",
    29: "LOC",
    33: "SRV",
    35: "NAPTR",
    36: "KX",
    37: "CERT",
    39: "DNAME",
    42: "APL",
    43: "DS",
    44: "SSHFP",
    45: "IPSECKEY",
    46: "RRSIG",
    47: "NSEC",
    48: "DNSKEY",
    49: "DHCID",
    50: "NSEC3",
    51: "NSEC3PARAM",
    52: "TLSA",
    53: "SMIMEA",
    55: "HIP",
    59: "CDS",
    60: "CDNSKEY",
    61: "OPENPGPKEY",
    62: "CSYNC",
    63: "ZONEMD",
    64: "SVCB",
    65: "HTTPS",
    99: "SPF",
    108: "EUI48",
    109: "EUI64",
    249: "TKEY",
    250: "TSIG",
    251: "IXFR",
    252: "AXFR",
    255: "ANY",
    256: "URI",
    257: "CAA",
}

_MAPPED_V4_PREFIX: Final = bytes(10) + b"\xff\xff"


def status_name(value: str) -> str:
    """``QueryStatus`` → its Windows name; an unknown code is returned unchanged."""
    s = value.strip()
    if s.isascii() and s.isdigit():
        return DNS_STATUS.get(int(s), s)
    return s


def type_name(number: int) -> str:
    """Record type mnemonic; ``TYPE<n>`` (RFC 3597) for types without one."""
    return DNS_TYPES.get(number, f"TYPE{number}")


def parse_ip(value: str) -> str | None:
    """A valid IP in canonical text form (IPv4-mapped IPv6 → IPv4, zone dropped), else None.

    ``inet_pton``/``inet_ntop`` rather than :mod:`ipaddress`: the same validation (dotted quads
    without leading zeros, RFC 4291 text forms) at a tenth of the cost, on a hot path.
    """
    s = value.strip()
    if "." in s and ":" not in s:
        try:
            return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, s))
        except (OSError, ValueError):
            return None
    zone = s.find("%")
    if zone > 0:
        s = s[:zone]
    try:
        packed = socket.inet_pton(socket.AF_INET6, s)
    except (OSError, ValueError):
        return None
    if packed[:12] == _MAPPED_V4_PREFIX:
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return socket.inet_ntop(socket.AF_INET6, packed)


@dataclass(frozen=True, slots=True)
class Answer:
    type: str
    data: str


@dataclass(frozen=True, slots=True)
class QueryResults:
    """Parsed ``QueryResults``. ``complete`` is False when an entry could not be understood (an
    invalid IP, a malformed ``type:`` entry): it was dropped here, so the caller keeps the raw
    string too."""

    answers: tuple[Answer, ...]
    ips: tuple[str, ...]
    hosts: tuple[str, ...]
    complete: bool


def parse_query_results(value: str) -> QueryResults:
    """Split ``QueryResults`` on ``;``: ``type:  5 host`` entries are records of that type with a
    host name; other entries are IP addresses (A or AAAA)."""
    answers: list[Answer] = []
    ips: list[str] = []
    hosts: list[str] = []
    complete = True
    for entry in value.split(";"):
        entry = entry.strip()
        if not entry:
            continue
        if entry.startswith("type:"):
            number, _, host = entry[5:].strip().partition(" ")
            host = host.strip()
            if not (number.isascii() and number.isdigit()) or not host:
                complete = False
                continue
            answers.append(Answer(type_name(int(number)), host))
            hosts.append(host)
            continue
        ip = parse_ip(entry)
        if ip is None:
            complete = False
            continue
        answers.append(Answer("AAAA" if ":" in ip else "A", ip))
        ips.append(ip)
    return QueryResults(tuple(answers), tuple(ips), tuple(hosts), complete)

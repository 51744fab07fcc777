"""abuse.ch CSV feeds: Feodo Tracker, URLhaus, MalwareBazaar and ThreatFox (also zipped dumps).

Each reads one row at a time (:mod:`.csvfeed`); a bad row, timestamp or port is an issue and the
parse goes on (a bad timestamp or port keeps the indicator without it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from ..model import IndicatorType, ParseItem, clean, normalise_ip, parse_confidence, parse_port
from .base import FormatSpec, Meta, ParseContext, has_header
from .csvfeed import csv_rows, extra_fields, tag_list, timestamps

# Feodo Tracker ------------------------------------------------------------------------------

FEODO_HEADER = ("first_seen_utc", "dst_ip", "dst_port", "c2_status", "last_online", "malware")


def _sniff_feodo_csv(head: str, filename: str | None) -> bool:
    return has_header(head, "first_seen_utc", "dst_ip")


def parse_feodo_csv(lines: Iterable[str], ctx: ParseContext) -> Iterator[ParseItem]:
    for rec in csv_rows(lines, ctx, first_column="first_seen_utc", default_header=FEODO_HEADER):
        if not isinstance(rec, tuple):
            yield rec
            continue
        n, raw, row = rec
        times, issues = timestamps(
            ctx, n, raw, first_seen=row.get("first_seen_utc"), last_seen=row.get("last_online")
        )
        yield from issues
        ports: tuple[int, ...] = ()
        try:
            port = parse_port(row.get("dst_port"))
            ports = (port,) if port is not None else ()
        except ValueError as exc:
            yield ctx.issue(n, f"dst_port: {exc} (indicator kept without it)", raw)
        meta: Meta = {
            "first_seen": times["first_seen"],
            "last_seen": times["last_seen"],
            "malware": clean(row.get("malware")),
            "ports": ports,
            "extra": extra_fields(row, c2_status="c2_status"),
        }
        yield from ctx.emit("ip", row.get("dst_ip", ""), n, raw, meta)


# URLhaus ------------------------------------------------------------------------------------

URLHAUS_HEADER = (
    "id",
    "dateadded",
    "url",
    "url_status",
    "last_online",
    "threat",
    "tags",
    "urlhaus_link",
    "reporter",
)


def _sniff_urlhaus_csv(head: str, filename: str | None) -> bool:
    return has_header(head, "id", "dateadded", "url")


def parse_urlhaus_csv(lines: Iterable[str], ctx: ParseContext) -> Iterator[ParseItem]:
    for rec in csv_rows(lines, ctx, first_column="id", default_header=URLHAUS_HEADER):
        if not isinstance(rec, tuple):
            yield rec
            continue
        n, raw, row = rec
        times, issues = timestamps(
            ctx, n, raw, first_seen=row.get("dateadded"), last_seen=row.get("last_online")
        )
        yield from issues
        meta: Meta = {
            "first_seen": times["first_seen"],
            "last_seen": times["last_seen"],
            "description": clean(row.get("threat")),
            "tags": tag_list(row.get("tags")),
            "reference": clean(row.get("urlhaus_link")),
            "extra": extra_fields(row, urlhaus_id="id", url_status="url_status", reporter="reporter"),
        }
        yield from ctx.emit("url", row.get("url", ""), n, raw, meta)


# MalwareBazaar ------------------------------------------------------------------------------

BAZAAR_HEADER = (
    "first_seen_utc",
    "sha256_hash",
    "md5_hash",
    "sha1_hash",
    "reporter",
    "file_name",
    "file_type_guess",
    "mime_type",
    "signature",
    "clamav",
    "vtpercent",
    "imphash",
    "ssdeep",
    "tlsh",
)


def _sniff_bazaar_csv(head: str, filename: str | None) -> bool:
    return has_header(head, "first_seen_utc", "sha256_hash")


def parse_malwarebazaar_csv(lines: Iterable[str], ctx: ParseContext) -> Iterator[ParseItem]:
    rows = csv_rows(
        lines, ctx, first_column="first_seen_utc", default_header=BAZAAR_HEADER, skipinitialspace=True
    )
    for rec in rows:
        if not isinstance(rec, tuple):
            yield rec
            continue
        n, raw, row = rec
        times, issues = timestamps(ctx, n, raw, first_seen=row.get("first_seen_utc"))
        yield from issues
        sha256 = clean(row.get("sha256_hash"))
        meta: Meta = {
            "first_seen": times["first_seen"],
            "malware": clean(row.get("signature")),
            "reference": f"https://bazaar.abuse.ch/sample/{sha256.lower()}/" if sha256 else None,
            "extra": extra_fields(
                row,
                file_name="file_name",
                file_type="file_type_guess",
                mime_type="mime_type",
                reporter="reporter",
                clamav="clamav",
                vtpercent="vtpercent",
                imphash="imphash",
                ssdeep="ssdeep",
                tlsh="tlsh",
            ),
        }
        found = False
        hash_columns: tuple[tuple[IndicatorType, str], ...] = (
            ("sha256", "sha256_hash"),
            ("md5", "md5_hash"),
            ("sha1", "sha1_hash"),
        )
        for kind, column in hash_columns:
            value = clean(row.get(column))
            if value is not None:
                found = True
                yield from ctx.emit(kind, value, n, raw, meta)
        if not found:
            yield ctx.issue(n, "row without any hash", raw)


# ThreatFox ----------------------------------------------------------------------------------

THREATFOX_HEADER = (
    "first_seen_utc",
    "ioc_id",
    "ioc_value",
    "ioc_type",
    "threat_type",
    "fk_malware",
    "malware_alias",
    "malware_printable",
    "last_seen_utc",
    "confidence_level",
    "is_compromised",
    "reference",
    "tags",
    "anonymous",
    "reporter",
)


def _sniff_threatfox_csv(head: str, filename: str | None) -> bool:
    return has_header(head, "first_seen_utc", "ioc_id")


def _threatfox_ip_port(ctx: ParseContext, value: str, n: int, raw: str, meta: Meta) -> Iterator[ParseItem]:
    host, sep, port_text = value.rpartition(":")
    try:
        port = parse_port(port_text) if sep else None
    except ValueError:
        port = None
    if port is None:
        yield ctx.issue(n, f"ip:port value without a valid port: {value!r}", raw)
        return
    try:
        ip = normalise_ip(host)
    except ValueError as exc:
        yield ctx.issue(n, str(exc), raw)
        return
    yield ctx.indicator("ip", ip, n, {**meta, "ports": (port,)})


def _threatfox_typed(kind: IndicatorType) -> ThreatFoxHandler:
    def handle(ctx: ParseContext, value: str, n: int, raw: str, meta: Meta) -> Iterator[ParseItem]:
        return ctx.emit(kind, value, n, raw, meta)

    return handle


ThreatFoxHandler = Callable[[ParseContext, str, int, str, Meta], Iterator[ParseItem]]
THREATFOX_TYPES: dict[str, ThreatFoxHandler] = {
    "ip:port": _threatfox_ip_port,
    "domain": _threatfox_typed("domain"),
    "url": _threatfox_typed("url"),
    "md5_hash": _threatfox_typed("md5"),
    "sha1_hash": _threatfox_typed("sha1"),
    "sha256_hash": _threatfox_typed("sha256"),
}


def parse_threatfox_csv(lines: Iterable[str], ctx: ParseContext) -> Iterator[ParseItem]:
    rows = csv_rows(
        lines,
        ctx,
        first_column="first_seen_utc",
        default_header=THREATFOX_HEADER,
        skipinitialspace=True,
    )
    for rec in rows:
        if not isinstance(rec, tuple):
            yield rec
            continue
        n, raw, row = rec
        ioc_type = row.get("ioc_type", "").lower()
        handler = THREATFOX_TYPES.get(ioc_type)
        if handler is None:
            yield ctx.issue(n, f"unsupported ioc_type {ioc_type!r}", raw, "unsupported")
            continue
        times, issues = timestamps(
            ctx, n, raw, first_seen=row.get("first_seen_utc"), last_seen=row.get("last_seen_utc")
        )
        yield from issues
        try:
            confidence = parse_confidence(row.get("confidence_level"))
        except ValueError as exc:
            confidence = None
            yield ctx.issue(n, f"{exc} (indicator kept without it)", raw)
        ioc_id = clean(row.get("ioc_id"))
        meta: Meta = {
            "first_seen": times["first_seen"],
            "last_seen": times["last_seen"],
            "confidence": confidence,
            "description": clean(row.get("threat_type")),
            "malware": clean(row.get("malware_printable")),
            "tags": tag_list(row.get("tags")),
            "reference": clean(row.get("reference"))
            or (f"https://threatfox.abuse.ch/ioc/{ioc_id}/" if ioc_id else None),
            "extra": extra_fields(
                row,
                ioc_id="ioc_id",
                threat_type="threat_type",
                malware="fk_malware",
                malware_alias="malware_alias",
                is_compromised="is_compromised",
                reporter="reporter",
            ),
        }
        yield from handler(ctx, row.get("ioc_value", ""), n, raw, meta)


FORMATS = (
    FormatSpec(
        "feodo_csv",
        parse_feodo_csv,
        sniff=_sniff_feodo_csv,
        priority=30,
        merge=True,
        description="Feodo Tracker IP blocklist CSV (one indicator per IP, ports merged)",
    ),
    FormatSpec(
        "urlhaus_csv",
        parse_urlhaus_csv,
        sniff=_sniff_urlhaus_csv,
        priority=30,
        description="URLhaus URL list CSV",
    ),
    FormatSpec(
        "malwarebazaar_csv",
        parse_malwarebazaar_csv,
        sniff=_sniff_bazaar_csv,
        priority=30,
        description="MalwareBazaar CSV (sha256, md5 and sha1 per row)",
    ),
    FormatSpec(
        "threatfox_csv",
        parse_threatfox_csv,
        sniff=_sniff_threatfox_csv,
        priority=30,
        description="ThreatFox IOC CSV (also a zipped full dump)",
    ),
)

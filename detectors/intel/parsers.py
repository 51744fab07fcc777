"""Parsers of the line-oriented feed formats (plain lists, hosts files, abuse.ch CSVs, Spamhaus).

All of them read one line at a time; a bad line yields a :class:`ParseIssue` and the parse goes
on. CSV formats go through the ``csv`` module (quoted commas) with the header taken from the
feed itself — commented (``# "first_seen_utc",...``) or not — so column order and optional
columns (ThreatFox ``is_compromised``) do not matter.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator

from .model import (
    IndicatorType,
    ParseItem,
    clean,
    iso_utc,
    looks_like_image_path,
    normalise_cidr,
    normalise_hash,
    normalise_ip,
    parse_confidence,
    parse_port,
)
from .registry import Meta, ParseContext, register

_TRAILING_COMMENT = re.compile(r"\s+[#;].*$")
SINK_ADDRESSES = frozenset({"0.0.0.0", "127.0.0.1", "::", "::1", "0", "255.255.255.255"})
LOCAL_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
        "0.0.0.0",
    }
)


def strip_comment(line: str) -> str:
    """A line without its line end, full-line ``#``/``;`` comment or trailing comment (a ``#`` or
    ``;`` after white space, so URL fragments and parameters survive)."""
    text = line.strip()
    if not text or text[0] in "#;":
        return ""
    return _TRAILING_COMMENT.sub("", text)


# ---------------------------------------------------------------------------------------------
# sniffing helpers


def _lines(head: str) -> list[str]:
    return [ln.strip() for ln in head.splitlines() if ln.strip()]


def _data_lines(head: str) -> list[str]:
    return [ln for ln in _lines(head) if ln[0] not in "#;"]


def _header_cells(line: str) -> list[str]:
    """Cells of a (possibly commented) CSV header line, lower-case and unquoted."""
    text = line.lstrip("#").strip()
    row = next(csv.reader([text], skipinitialspace=True), [])
    return [c.strip().strip('"').lower() for c in row]


def _has_header(head: str, *names: str) -> bool:
    for line in _lines(head)[:HEADER_SCAN]:
        cells = _header_cells(line)
        if cells[: len(names)] == list(names):
            return True
    return False


HEADER_SCAN = 40


# ---------------------------------------------------------------------------------------------
# plain lists and hosts files


def _is_hosts_line(tokens: list[str]) -> bool:
    return len(tokens) >= 2 and tokens[0] in SINK_ADDRESSES


def _sniff_hosts(head: str, filename: str | None) -> bool:
    data = _data_lines(head)[:20]
    return bool(data) and sum(_is_hosts_line(ln.split()) for ln in data) * 2 > len(data)


@register(
    "plain",
    priority=1000,
    description="one IP, CIDR, domain, URL, hash (or image path/name) per line; hosts-file lines",
    aliases=("text", "list"),
)
def parse_plain(lines: Iterable[str], ctx: ParseContext) -> Iterator[ParseItem]:
    for n, raw in enumerate(lines, 1):
        text = strip_comment(raw)
        if not text:
            continue
        if looks_like_image_path(text):
            yield from ctx.emit("image_path", text, n, raw)
            continue
        tokens = text.split()
        if _is_hosts_line(tokens):
            for name in tokens[1:]:
                if name.lower() in LOCAL_NAMES:
                    yield ctx.issue(n, f"hosts-file entry for {name!r} skipped", raw, "skipped")
                else:
                    yield from ctx.emit("domain", name, n, raw)
            continue
        if len(tokens) > 1:
            yield ctx.issue(n, "more than one value on the line", raw)
            continue
        yield from ctx.emit(None, text, n, raw)


register(
    "urlhaus_hosts",
    sniff=_sniff_hosts,
    priority=60,
    description="URLhaus hosts file (0.0.0.0 domain)",
    aliases=("hosts",),
)(parse_plain)


def _sniff_feodo_text(head: str, filename: str | None) -> bool:
    return "feodo tracker" in head.lower() and not _has_header(head, "first_seen_utc")


register("feodo_text", sniff=_sniff_feodo_text, priority=50, description="Feodo Tracker IP list")(parse_plain)


def _sniff_bazaar_text(head: str, filename: str | None) -> bool:
    return any(re.fullmatch(r"#\s*sha256_hash", ln) for ln in _lines(head)[:HEADER_SCAN])


register(
    "malwarebazaar_text",
    sniff=_sniff_bazaar_text,
    priority=50,
    description="MalwareBazaar hash list (# sha256_hash, one hash per line)",
)(parse_plain)


# ---------------------------------------------------------------------------------------------
# CSV


class _CsvLines:
    """Feeds the data lines of a CSV feed to ``csv.reader``: skips blank and comment lines,
    remembers the physical line number and text of the last line handed over, and picks up a
    commented header (``# "first_seen_utc",...``)."""

    def __init__(self, lines: Iterable[str], first_column: str) -> None:
        self._lines = lines
        self._first = first_column
        self.line = 0
        self.raw = ""
        self.header: list[str] | None = None

    def __iter__(self) -> Iterator[str]:
        for n, raw in enumerate(self._lines, 1):
            text = raw.strip()
            if not text:
                continue
            if text[0] == "#":
                if self.header is None:
                    cells = _header_cells(text)
                    if cells and cells[0] == self._first:
                        self.header = cells
                continue
            self.line, self.raw = n, raw
            yield raw


Row = dict[str, str]


def _csv_rows(
    lines: Iterable[str],
    ctx: ParseContext,
    *,
    first_column: str,
    default_header: tuple[str, ...],
    skipinitialspace: bool = False,
) -> Iterator[tuple[int, str, Row] | ParseItem]:
    """``(line, raw, {column: value})`` per data row, or an issue for a malformed row."""
    source = _CsvLines(lines, first_column)
    reader = csv.reader(source, skipinitialspace=skipinitialspace)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield ctx.issue(source.line, f"malformed CSV: {exc}", source.raw)
            continue
        if not row or all(not c.strip() for c in row):
            continue
        cells = [c.strip() for c in row]
        if cells[0].lower() == first_column:  # an uncommented header
            source.header = [c.lower() for c in cells]
            continue
        header = source.header or list(default_header)
        if len(cells) != len(header):
            yield ctx.issue(source.line, f"expected {len(header)} fields, found {len(cells)}", source.raw)
            continue
        yield source.line, source.raw, dict(zip(header, cells, strict=True))


def _timestamps(
    ctx: ParseContext, line: int, raw: str, **fields: str | None
) -> tuple[dict[str, str | None], list[ParseItem]]:
    """Timestamps normalised; a bad one becomes None plus an issue (the indicator is kept)."""
    out: dict[str, str | None] = {}
    issues: list[ParseItem] = []
    for key, value in fields.items():
        try:
            out[key] = iso_utc(value)
        except ValueError as exc:
            out[key] = None
            issues.append(ctx.issue(line, f"{key}: {exc} (indicator kept without it)", raw))
    return out, issues


def _extra(row: Row, **names: str) -> tuple[tuple[str, str], ...]:
    pairs = ((key, clean(row.get(col))) for key, col in names.items())
    return tuple(sorted((k, v) for k, v in pairs if v is not None))


def _tags(text: str | None) -> tuple[str, ...]:
    value = clean(text)
    if value is None:
        return ()
    return tuple(dict.fromkeys(t.strip() for t in value.split(",") if t.strip()))


# Feodo Tracker ------------------------------------------------------------------------------

FEODO_HEADER = ("first_seen_utc", "dst_ip", "dst_port", "c2_status", "last_online", "malware")


def _sniff_feodo_csv(head: str, filename: str | None) -> bool:
    return _has_header(head, "first_seen_utc", "dst_ip")


@register(
    "feodo_csv",
    sniff=_sniff_feodo_csv,
    priority=30,
    merge=True,
    description="Feodo Tracker IP blocklist CSV (one indicator per IP, ports merged)",
)
def parse_feodo_csv(lines: Iterable[str], ctx: ParseContext) -> Iterator[ParseItem]:
    for rec in _csv_rows(lines, ctx, first_column="first_seen_utc", default_header=FEODO_HEADER):
        if not isinstance(rec, tuple):
            yield rec
            continue
        n, raw, row = rec
        times, issues = _timestamps(
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
            "extra": _extra(row, c2_status="c2_status"),
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
    return _has_header(head, "id", "dateadded", "url")


@register("urlhaus_csv", sniff=_sniff_urlhaus_csv, priority=30, description="URLhaus URL list CSV")
def parse_urlhaus_csv(lines: Iterable[str], ctx: ParseContext) -> Iterator[ParseItem]:
    for rec in _csv_rows(lines, ctx, first_column="id", default_header=URLHAUS_HEADER):
        if not isinstance(rec, tuple):
            yield rec
            continue
        n, raw, row = rec
        times, issues = _timestamps(
            ctx, n, raw, first_seen=row.get("dateadded"), last_seen=row.get("last_online")
        )
        yield from issues
        meta: Meta = {
            "first_seen": times["first_seen"],
            "last_seen": times["last_seen"],
            "description": clean(row.get("threat")),
            "tags": _tags(row.get("tags")),
            "reference": clean(row.get("urlhaus_link")),
            "extra": _extra(row, urlhaus_id="id", url_status="url_status", reporter="reporter"),
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
    return _has_header(head, "first_seen_utc", "sha256_hash")


@register(
    "malwarebazaar_csv",
    sniff=_sniff_bazaar_csv,
    priority=30,
    description="MalwareBazaar CSV (sha256, md5 and sha1 per row)",
)
def parse_malwarebazaar_csv(lines: Iterable[str], ctx: ParseContext) -> Iterator[ParseItem]:
    rows = _csv_rows(
        lines, ctx, first_column="first_seen_utc", default_header=BAZAAR_HEADER, skipinitialspace=True
    )
    for rec in rows:
        if not isinstance(rec, tuple):
            yield rec
            continue
        n, raw, row = rec
        times, issues = _timestamps(ctx, n, raw, first_seen=row.get("first_seen_utc"))
        yield from issues
        sha256 = clean(row.get("sha256_hash"))
        meta: Meta = {
            "first_seen": times["first_seen"],
            "malware": clean(row.get("signature")),
            "reference": f"https://bazaar.abuse.ch/sample/{sha256.lower()}/" if sha256 else None,
            "extra": _extra(
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
    return _has_header(head, "first_seen_utc", "ioc_id")


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


@register(
    "threatfox_csv",
    sniff=_sniff_threatfox_csv,
    priority=30,
    description="ThreatFox IOC CSV (also a zipped full dump)",
)
def parse_threatfox_csv(lines: Iterable[str], ctx: ParseContext) -> Iterator[ParseItem]:
    rows = _csv_rows(
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
        times, issues = _timestamps(
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
            "tags": _tags(row.get("tags")),
            "reference": clean(row.get("reference"))
            or (f"https://threatfox.abuse.ch/ioc/{ioc_id}/" if ioc_id else None),
            "extra": _extra(
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


# Spamhaus DROP ------------------------------------------------------------------------------

_DROP_LINE = re.compile(r"^[0-9a-fA-F.:]+/\d+\s*;\s*SBL\d+", re.MULTILINE)


def _sniff_drop(head: str, filename: str | None) -> bool:
    return bool(_DROP_LINE.search(head))


@register(
    "spamhaus_drop",
    sniff=_sniff_drop,
    priority=40,
    description="Spamhaus DROP/EDROP text (CIDR ; SBLnnnnnn)",
)
def parse_spamhaus_drop(lines: Iterable[str], ctx: ParseContext) -> Iterator[ParseItem]:
    for n, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text or text[0] in "#;":
            continue
        network, _, sblid = (part.strip() for part in text.partition(";"))
        yield from _drop_indicator(ctx, network, sblid, None, n, raw)


def _drop_indicator(
    ctx: ParseContext, network: str, sblid: str | None, rir: str | None, n: int, raw: str
) -> Iterator[ParseItem]:
    try:
        kind, value = normalise_cidr(network)
    except ValueError as exc:
        yield ctx.issue(n, str(exc), raw)
        return
    extra = tuple(sorted((k, v) for k, v in (("sblid", sblid), ("rir", rir)) if v))
    yield ctx.indicator(kind, value, n, {"extra": extra})


def _sniff_drop_json(head: str, filename: str | None) -> bool:
    first = next(iter(_data_lines(head)), "")
    return first.startswith("{") and bool(re.search(r'"cidr"\s*:', first))


@register(
    "spamhaus_drop_json",
    sniff=_sniff_drop_json,
    priority=20,
    description="Spamhaus DROP JSON lines (IPv4 and IPv6)",
)
def parse_spamhaus_drop_json(lines: Iterable[str], ctx: ParseContext) -> Iterator[ParseItem]:
    for n, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except ValueError as exc:
            yield ctx.issue(n, f"not JSON: {exc}", raw)
            continue
        if not isinstance(obj, dict):
            yield ctx.issue(n, "not a JSON object", raw)
            continue
        if obj.get("type") == "metadata":
            continue
        cidr = obj.get("cidr")
        if not isinstance(cidr, str):
            yield ctx.issue(n, "object without a string 'cidr'", raw)
            continue
        sblid, rir = obj.get("sblid"), obj.get("rir")
        yield from _drop_indicator(
            ctx,
            cidr,
            sblid if isinstance(sblid, str) else None,
            rir if isinstance(rir, str) else None,
            n,
            raw,
        )


__all__ = [
    "LOCAL_NAMES",
    "THREATFOX_TYPES",
    "normalise_hash",
    "parse_feodo_csv",
    "parse_malwarebazaar_csv",
    "parse_plain",
    "parse_spamhaus_drop",
    "parse_spamhaus_drop_json",
    "parse_threatfox_csv",
    "parse_urlhaus_csv",
    "strip_comment",
]

"""Plain lists: one value per line, and hosts files (``0.0.0.0 domain``).

The same parser reads the named variants that detection recognises from their heads: URLhaus's
hosts file, Feodo Tracker's IP list and MalwareBazaar's hash list. A bad line yields a
:class:`ParseIssue` and the parse goes on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from ..model import ParseItem, looks_like_image_path
from .base import HEADER_SCAN, FormatSpec, ParseContext, data_lines, has_header, head_lines

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


def _is_hosts_line(tokens: list[str]) -> bool:
    return len(tokens) >= 2 and tokens[0] in SINK_ADDRESSES


def _sniff_hosts(head: str, filename: str | None) -> bool:
    data = data_lines(head)[:20]
    return bool(data) and sum(_is_hosts_line(ln.split()) for ln in data) * 2 > len(data)


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


def _sniff_feodo_text(head: str, filename: str | None) -> bool:
    return "feodo tracker" in head.lower() and not has_header(head, "first_seen_utc")


def _sniff_bazaar_text(head: str, filename: str | None) -> bool:
    return any(re.fullmatch(r"#\s*sha256_hash", ln) for ln in head_lines(head)[:HEADER_SCAN])


FORMATS = (
    FormatSpec(
        "plain",
        parse_plain,
        priority=1000,
        description="one IP, CIDR, domain, URL, hash (or image path/name) per line; hosts-file lines",
        aliases=("text", "list"),
    ),
    FormatSpec(
        "urlhaus_hosts",
        parse_plain,
        sniff=_sniff_hosts,
        priority=60,
        description="URLhaus hosts file (0.0.0.0 domain)",
        aliases=("hosts",),
    ),
    FormatSpec(
        "feodo_text", parse_plain, sniff=_sniff_feodo_text, priority=50, description="Feodo Tracker IP list"
    ),
    FormatSpec(
        "malwarebazaar_text",
        parse_plain,
        sniff=_sniff_bazaar_text,
        priority=50,
        description="MalwareBazaar hash list (# sha256_hash, one hash per line)",
    ),
)

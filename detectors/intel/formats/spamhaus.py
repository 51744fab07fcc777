"""Spamhaus DROP / EDROP: the text list (``CIDR ; SBLnnnnnn``) and the JSON lines (IPv4 and IPv6,
a ``metadata`` line ignored). One line at a time; a bad line is an issue.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator

from ..model import ParseItem, normalise_cidr
from .base import FormatSpec, ParseContext, data_lines

_DROP_LINE = re.compile(r"^[0-9a-fA-F.:]+/\d+\s*;\s*SBL\d+", re.MULTILINE)


def _sniff_drop(head: str, filename: str | None) -> bool:
    return bool(_DROP_LINE.search(head))


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
    first = next(iter(data_lines(head)), "")
    return first.startswith("{") and bool(re.search(r'"cidr"\s*:', first))


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


FORMATS = (
    FormatSpec(
        "spamhaus_drop",
        parse_spamhaus_drop,
        sniff=_sniff_drop,
        priority=40,
        description="Spamhaus DROP/EDROP text (CIDR ; SBLnnnnnn)",
    ),
    FormatSpec(
        "spamhaus_drop_json",
        parse_spamhaus_drop_json,
        sniff=_sniff_drop_json,
        priority=20,
        description="Spamhaus DROP JSON lines (IPv4 and IPv6)",
    ),
)

"""The feed formats, by name: one module per format family, and the registry built here.

Each module lists its formats as ``FORMATS`` (:class:`~.base.FormatSpec`: parser, sniffer,
priority, aliases); this package gathers them into the plain dict :data:`FORMATS`
(``{name: spec}``) and :data:`ALIASES`, and detects a feed's format from its head. Adding a
format is one module and one line here. The format modules import only :mod:`.base`, never this
package, so nothing here is circular.

* :mod:`.plain` — plain lists and hosts files (and the abuse.ch / URLhaus lists in that shape)
* :mod:`.abusech` — abuse.ch CSVs (Feodo Tracker, URLhaus, MalwareBazaar, ThreatFox)
* :mod:`.spamhaus` — Spamhaus DROP text and JSON lines
* :mod:`.stix` — STIX 2.1 bundles, TAXII 2.1 envelopes
* :mod:`.misp` — MISP feed events (and :func:`~.misp.parse_misp_feed` for feed folders)
"""

from __future__ import annotations

from collections.abc import Iterable

from shipper.errors import InputError

from . import abusech, misp, plain, spamhaus, stix
from .base import FormatSpec


def build_registry(specs: Iterable[FormatSpec]) -> tuple[dict[str, FormatSpec], dict[str, str]]:
    """``({name: spec}, {alias: name})``; a name or alias given twice is a ``ValueError``."""
    by_name: dict[str, FormatSpec] = {}
    aliases: dict[str, str] = {}
    for spec in specs:
        for name in (spec.name, *spec.aliases):
            if name in by_name or name in aliases:
                raise ValueError(f"feed format {name!r} registered twice")
            if name == spec.name:
                by_name[name] = spec
            else:
                aliases[name] = spec.name
    return by_name, aliases


FORMATS, ALIASES = build_registry(
    (*stix.FORMATS, *misp.FORMATS, *spamhaus.FORMATS, *abusech.FORMATS, *plain.FORMATS)
)
#: Detection order: lower priority first, then by name.
_DETECTION = tuple(sorted(FORMATS.values(), key=lambda s: (s.priority, s.name)))


def format_names() -> list[str]:
    """Format names, in detection order."""
    return [spec.name for spec in _DETECTION]


def get_format(name: str) -> FormatSpec:
    spec = FORMATS.get(ALIASES.get(name, name))
    if spec is None:
        known = ", ".join(sorted([*FORMATS, "auto"]))
        raise InputError(f"unknown feed format {name!r} (known: {known})")
    return spec


def detect_format(head: str, filename: str | None = None) -> str:
    """The format of a feed from its first lines (and its file name as a hint).

    Tries each format's sniffer in priority order; a plain list is the fallback.
    """
    head = head.lstrip("\ufeff")
    for spec in _DETECTION:
        if spec.sniff is not None and spec.sniff(head, filename):
            return spec.name
    return "plain"


__all__ = [
    "ALIASES",
    "FORMATS",
    "FormatSpec",
    "build_registry",
    "detect_format",
    "format_names",
    "get_format",
]

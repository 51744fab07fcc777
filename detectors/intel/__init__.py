"""Threat-intel feeds and allowlists.

* :mod:`.model` — :class:`Indicator` / :class:`ParseIssue`, value normalisation, ``ecs()``.
* :mod:`.registry` — formats by name, :func:`detect_format`, :func:`parse`, :func:`parse_path`.
* :mod:`.parsers`, :mod:`.stix`, :mod:`.misp` — the built-in formats (they register themselves).
* :mod:`.config` — the feeds YAML (:func:`load_feeds`); :mod:`.sources` — fetching with a cache.
"""

from .model import Indicator, IndicatorType, ParseIssue, ParseItem, ParseOptions
from .registry import detect_format, formats, parse, parse_path

__all__ = [
    "Indicator",
    "IndicatorType",
    "ParseIssue",
    "ParseItem",
    "ParseOptions",
    "detect_format",
    "formats",
    "parse",
    "parse_path",
]

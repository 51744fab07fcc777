"""Threat-intel feeds and allowlists.

* :mod:`.model` — :class:`Indicator` / :class:`ParseIssue`, value normalisation, ``ecs()``.
* :mod:`.formats` — the feed formats, one module per family, and the registry dict built in its
  ``__init__`` (:func:`detect_format`, :func:`~.formats.get_format`).
* :mod:`.parsing` — :func:`parse` (a text stream) and :func:`parse_path` (a file, archive or
  MISP feed folder) through the registry.
* :mod:`.config` — the feeds YAML (:func:`load_feeds`); :mod:`.sources` — fetching with a cache.
"""

from .formats import detect_format, format_names
from .model import Indicator, IndicatorType, ParseIssue, ParseItem, ParseOptions
from .parsing import parse, parse_path

__all__ = [
    "Indicator",
    "IndicatorType",
    "ParseIssue",
    "ParseItem",
    "ParseOptions",
    "detect_format",
    "format_names",
    "parse",
    "parse_path",
]

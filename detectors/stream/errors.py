"""Why a rule stays with the scheduled engine."""

from __future__ import annotations


class Unsupported(Exception):
    """The stream matcher cannot give exactly Elasticsearch's answer for this construct."""

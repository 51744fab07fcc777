"""The alert of one matching event, as every engine writes it: the scheduled rule run
(:mod:`detectors.builders.events`), the batched Sigma run (:mod:`detectors.builders.batched`) and
the stream stage (:mod:`detectors.stream.stage`). One function, so an alert found by two of them
is one document: same ``_id``, index and shape; only the timing fields say which run wrote it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from detectors.alerts import alert_id, alert_index_for, from_event
from detectors.model import Rule
from detectors.query import Window, iso

#: an alert's ``alert.run``: the window of the run that wrote it
RunTimes = dict[str, str | None]


def run_times(window: Window) -> RunTimes:
    """``alert.run`` of a scheduled run over ``window`` (open start: None)."""
    return {
        "window_start": iso(window.start) if window.start else None,
        "window_end": iso(window.end),
    }


def event_alert(
    rule: Rule, hit: dict[str, Any], prefix: str, now: datetime, run: RunTimes
) -> tuple[str, str, dict[str, Any]]:
    """(index, alert id, document) of ``rule``'s alert for the event ``hit`` (``_index``,
    ``_id``, ``_source`` as a search returns it): the id names the rule and the event, the index
    is the month of the event's own ``@timestamp``. Enrichment (ancestry, intel) is the caller's,
    done once for a whole page."""
    aid = alert_id(rule.id, hit["_index"], hit["_id"])
    doc = from_event(rule, hit, now, aid)
    doc["alert"]["run"] = dict(run)
    return alert_index_for(prefix, hit["_source"].get("@timestamp"), now), aid, doc

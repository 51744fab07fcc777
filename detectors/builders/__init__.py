"""Rule type → builder (a registry, not an if-chain).

A builder runs one rule over one window (``event.ingested``) and writes its alerts:

- ``query``: every matching event is an alert (id: rule + source event).
- ``intel_match``: the same, with the intel lookup clause in the query; each alert is enriched
  with the matched indicators (``threat.indicator.*``, ``threat.enrichments``).
- ``new_value``: a combination of field values, first seen in this window, never seen within the
  history before it: one alert per value, ever (id: rule + value).
- ``spread``: a value on at least N hosts within a window: one alert per value, updated with
  read-modify-write (``if_seq_no``) as hosts appear; patient zero by the events' ``@timestamp``.
- ``threshold``: at least N events per group in a fixed ``@timestamp`` window (id: rule + group +
  window start).
- ``sequence_gap``: missing or restarted ``winlog.record_id`` per (host, channel), judged once
  the records around a gap are ``grace`` old (id: rule + host + channel + id range).
- ``silence``: a host sending far fewer events than its own history predicts (id: rule + host +
  start of the quiet period; one alert per period, closed when the host recovers).
- ``correlation``: a Sigma v2 correlation (event_count, value_count, temporal, temporal_ordered)
  over sliding ``@timestamp`` windows per group (id: rule + group + first member event).

Every alert carries the process ancestry of its process (one query per level for a whole page of
alerts; for ``spread``, the ancestry on the patient-zero host). One module per rule type; what
they share is in ``context`` (the run), ``enrich`` (ancestry, intel) and ``groups``
(suppression).
"""

from __future__ import annotations

from collections.abc import Callable

from detectors.alerts import base_alert, copy_fields
from detectors.builders.context import Builder, RunContext, RunStats
from detectors.builders.correlation import build_correlation
from detectors.builders.events import build_intel_match, build_query
from detectors.builders.new_value import build_new_value
from detectors.builders.sequence_gap import build_sequence_gap
from detectors.builders.silence import build_silence
from detectors.builders.spread import build_spread
from detectors.builders.threshold import build_threshold
from detectors.model import Rule

BUILDERS: dict[str, Builder] = {
    "query": build_query,
    "intel_match": build_intel_match,
    "new_value": build_new_value,
    "spread": build_spread,
    "threshold": build_threshold,
    "correlation": build_correlation,
    "sequence_gap": build_sequence_gap,
    "silence": build_silence,
}


def register(rule_type: str) -> Callable[[Builder], Builder]:
    def deco(fn: Builder) -> Builder:
        BUILDERS[rule_type] = fn
        return fn

    return deco


def builder_for(rule: Rule) -> Builder:
    try:
        return BUILDERS[rule.type]
    except KeyError:
        raise KeyError(f"no builder registered for rule type {rule.type!r}") from None


__all__ = [
    "BUILDERS",
    "Builder",
    "RunContext",
    "RunStats",
    "base_alert",
    "builder_for",
    "copy_fields",
    "register",
]

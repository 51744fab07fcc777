"""What every hunt command filters on: hosts, a time range on ``@timestamp``, event codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from detectors.query import iso
from shipper.durations import EXAMPLES, parse_duration


def parse_time(value: str, now: datetime | None = None) -> datetime:
    """An ISO date or time (UTC when it names no zone), or a duration ago (``24h``, ``7d``)."""
    text = value.strip()
    try:
        return (now or datetime.now(UTC)) - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{value!r} is neither an ISO date/time (2026-01-31, 2026-01-31T08:00:00Z) "
            f"nor a duration ago ({EXAMPLES})"
        ) from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Scope:
    """Events on ``hosts`` (any when empty), with ``@timestamp`` in ``[since, until)``, of
    ``event_codes`` (any when empty)."""

    hosts: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    event_codes: tuple[str, ...] = ()

    def clauses(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.hosts:
            out.append({"terms": {"host.name": list(self.hosts)}})
        if self.event_codes:
            out.append({"terms": {"event.code": list(self.event_codes)}})
        if self.since is not None or self.until is not None:
            rng: dict[str, Any] = {"format": "strict_date_optional_time"}
            if self.since is not None:
                rng["gte"] = iso(self.since)
            if self.until is not None:
                rng["lt"] = iso(self.until)
            out.append({"range": {"@timestamp": rng}})
        return out

    def query(self, extra: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
        return {"bool": {"filter": [*self.clauses(), *extra]}}

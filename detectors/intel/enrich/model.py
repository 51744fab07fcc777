"""What enrichment deals in: a service's verdict on one hash, the errors that stop a service,
and each service's limits. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from detectors.intel.config import Secret

VerdictKind = Literal["malicious", "known_good", "unknown"]
VERDICTS: tuple[VerdictKind, ...] = ("malicious", "known_good", "unknown")


@dataclass(frozen=True, slots=True)
class Verdict:
    """One service's answer about one hash (``unknown``: the service does not know it, or does
    not judge it either way). ``score`` 0-100 becomes the indicator's confidence."""

    service: str
    hash: str
    verdict: VerdictKind
    checked_at: str
    score: int | None = None
    reference: str | None = None
    malware: str | None = None
    description: str | None = None
    first_seen: str | None = None
    last_seen: str | None = None
    detail: tuple[tuple[str, str], ...] = ()

    def doc(self) -> dict[str, Any]:
        """The cache document (``<prefix>-intel-enrich``)."""
        body: dict[str, Any] = {
            "kind": "verdict",
            "service": self.service,
            "hash": self.hash,
            "verdict": self.verdict,
            "checked_at": self.checked_at,
        }
        optional = {
            "score": self.score,
            "reference": self.reference,
            "malware": self.malware,
            "description": self.description,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        if self.detail:
            body["detail"] = dict(self.detail)
        return body

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Verdict:
        detail = doc.get("detail") or {}
        return cls(
            service=str(doc["service"]),
            hash=str(doc["hash"]),
            verdict=doc["verdict"],
            checked_at=str(doc["checked_at"]),
            score=doc.get("score"),
            reference=doc.get("reference"),
            malware=doc.get("malware"),
            description=doc.get("description"),
            first_seen=doc.get("first_seen"),
            last_seen=doc.get("last_seen"),
            detail=tuple(sorted((str(k), str(v)) for k, v in detail.items())),
        )


class ServiceStop(Exception):
    """The service cannot answer any more in this run: quota used up (``quota``), rejected key,
    unreachable. The message never carries the key."""

    def __init__(self, message: str, *, quota: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.quota = quota
        self.retry_after = retry_after


class LookupError_(Exception):
    """One hash could not be judged (a malformed answer, a transient server error): it is counted
    and looked up again next run; the service goes on."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Requests allowed per minute (a token bucket of that size, refilled evenly) and per UTC day
    (None: no daily quota)."""

    per_minute: float
    per_day: int | None = None

    def __post_init__(self) -> None:
        if self.per_minute <= 0:
            raise ValueError("per_minute must be above 0")
        if self.per_day is not None and self.per_day < 0:
            raise ValueError("per_day must not be negative")


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """How to reach one service: its base URL, key (None for keyless services), limits, the
    VirusTotal detections needed for a malicious verdict, the HTTP timeout."""

    name: str
    url: str
    limits: Limits
    key: Secret | None = field(default=None, repr=False)
    min_detections: int = 3
    timeout: float = 30.0

"""The counts of a run: records, documents, Sysmon events by ID, other providers, unknown IDs,
errors by kind with samples of where they happened, and why the native core left records to
Python."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_ERROR_SAMPLES = 50


@dataclass
class Stats:
    """Counts of one run; ``summary`` and ``as_dict`` are what people and scripts read."""

    sources: int = 0
    records: int = 0
    documents: int = 0
    sysmon_by_id: Counter[int] = field(default_factory=Counter)
    other_providers: Counter[str] = field(default_factory=Counter)
    unknown_ids: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    errors_skipped: int = 0
    error_samples: list[str] = field(default_factory=list)
    #: ``shipper.native.FallbackReason`` value → records the native core left to Python
    native_fallbacks: Counter[str] = field(default_factory=Counter)

    @property
    def sysmon(self) -> int:
        return sum(self.sysmon_by_id.values())

    def error(self, kind: str, where: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(where)

    def merge(self, part: Stats) -> None:
        """Add the counts of ``part`` (a later stretch of the same run), ``sources`` aside."""
        self.records += part.records
        self.documents += part.documents
        self.sysmon_by_id.update(part.sysmon_by_id)
        self.other_providers.update(part.other_providers)
        self.unknown_ids.update(part.unknown_ids)
        self.errors.update(part.errors)
        self.errors_skipped += part.errors_skipped
        self.native_fallbacks.update(part.native_fallbacks)
        room = MAX_ERROR_SAMPLES - len(self.error_samples)
        if room > 0:
            self.error_samples.extend(part.error_samples[:room])

    def take(self) -> Stats:
        """The counts gathered so far, as a new Stats; this one starts again from zero, in
        place (the generator that fills it keeps the same object)."""
        part = Stats(
            records=self.records,
            documents=self.documents,
            sysmon_by_id=self.sysmon_by_id,
            other_providers=self.other_providers,
            unknown_ids=self.unknown_ids,
            errors=self.errors,
            errors_skipped=self.errors_skipped,
            error_samples=self.error_samples,
            native_fallbacks=self.native_fallbacks,
        )
        self.records = self.documents = self.errors_skipped = 0
        self.sysmon_by_id, self.other_providers = Counter(), Counter()
        self.unknown_ids, self.errors = Counter(), Counter()
        self.error_samples = []
        self.native_fallbacks = Counter()
        return part

    def as_dict(self) -> dict[str, Any]:
        return {
            "sources": self.sources,
            "records": self.records,
            "documents": self.documents,
            "sysmon_events": self.sysmon,
            "sysmon_by_id": {str(k): v for k, v in sorted(self.sysmon_by_id.items())},
            "other_providers": dict(sorted(self.other_providers.items())),
            "unknown_event_ids": {str(k): v for k, v in sorted(self.unknown_ids.items())},
            "errors": dict(sorted(self.errors.items())),
            "errors_skipped": self.errors_skipped,
            "error_samples": list(self.error_samples),
            "native_fallbacks": dict(sorted(self.native_fallbacks.items())),
        }

    def summary(self) -> str:
        by_id = " ".join(f"{k}={v}" for k, v in sorted(self.sysmon_by_id.items())) or "none"
        parts = [
            f"sources={self.sources}",
            f"records={self.records}",
            f"sysmon={self.sysmon}",
            f"documents={self.documents}",
            f"other_providers={sum(self.other_providers.values())}",
            f"unknown_ids={sum(self.unknown_ids.values())}",
            f"errors={sum(self.errors.values())}",
            f"errors_skipped={self.errors_skipped}",
        ]
        return " ".join(parts) + f" by_id: {by_id}"

"""What a shipping run reports: its summary, and the progress display's interface."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunSummary:
    shipped: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    skipped_sources: int = 0
    resumed_sources: int = 0
    sources: int = 0
    documents: int = 0
    errors: int = 0
    retries: int = 0
    elapsed: float = 0.0
    interrupted: bool = False
    dead_letter_file: str | None = None
    pipeline: dict[str, Any] = field(default_factory=dict)
    #: stream detection (``--detect``): alerts written, and why it was degraded if it was
    detection: dict[str, Any] | None = None

    @property
    def events_per_s(self) -> float:
        return (
            (self.shipped + self.duplicates + self.dead_lettered) / self.elapsed if self.elapsed > 0 else 0.0
        )

    def line(self) -> str:
        return (
            f"shipped={self.shipped} duplicates={self.duplicates} dead_lettered={self.dead_lettered} "
            f"skipped_sources={self.skipped_sources} resumed_sources={self.resumed_sources} "
            f"errors={self.errors} retries={self.retries} elapsed={self.elapsed:.1f}s "
            f"events/s={self.events_per_s:.0f}" + (" interrupted" if self.interrupted else "")
        ) + self._detection_text()

    def _detection_text(self) -> str:
        d = self.detection
        if d is None:
            return ""
        text = f" alerts={d.get('alerts', 0)} alert_duplicates={d.get('duplicates', 0)}"
        if d.get("degraded"):
            text += f" detection degraded ({d['degraded']}; the scheduled engine covers it)"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "shipped": self.shipped,
            "duplicates": self.duplicates,
            "dead_lettered": self.dead_lettered,
            "skipped_sources": self.skipped_sources,
            "resumed_sources": self.resumed_sources,
            "sources": self.sources,
            "documents": self.documents,
            "errors": self.errors,
            "retries": self.retries,
            "elapsed": round(self.elapsed, 3),
            "events_per_s": round(self.events_per_s, 1),
            "interrupted": self.interrupted,
            "dead_letter_file": self.dead_letter_file,
            "pipeline": self.pipeline,
        } | ({"detection": self.detection} if self.detection is not None else {})


class Progress:
    """What the shipper tells a progress display (no-op by default)."""

    def source_started(self, path: str, index: int, total: int) -> None:
        pass

    def advance(self, documents: int) -> None:
        pass

    def close(self) -> None:
        pass

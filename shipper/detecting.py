"""What the shipper asks of a detection stage (``detectors.stream.stage.StreamStage``), so that
the shipper itself never imports ``detectors``: the stage is built by the CLI only with
``--detect``, and without one nothing here costs anything."""

from __future__ import annotations

from typing import Any, Protocol

from shipper.sending import BatchResult


class DetectStage(Protocol):
    def observe(self, items: list[bytes], source: str, first_seq: int) -> None:
        """Bulk items as queued (see ``BulkSink.observer``): records ``first_seq`` on."""

    def acknowledged(self, result: BatchResult) -> None:
        """The sink's result, in order: the alerts of the documents it acknowledges may go."""

    def close(self) -> None:
        """Every result is in: write what is left."""

    def report(self) -> dict[str, Any]:
        """Counts and degradation for the run's summary."""

"""What a source read natively yields besides RawEvent and ReadError: runs of records
already mapped."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class MappedBatch:
    """Consecutive records the native core has already read: Sysmon
    records mapped — per document, ``docs`` are the ECS documents as JSON bytes, ``doc_ids``
    their ``_id``s (exactly what ``to_ecs_and_id`` gives for the RawEvents of the same records),
    ``event_ids`` and ``record_ids`` their EventIDs and EventRecordIDs — and, in JSON lines, the
    records of other providers (``others``: their index among the batch's records, and the
    ``RawEvent.provider`` they would have), which the pipeline counts and skips. Only sources
    read natively (``NativeSession.read``: EVTX files, winlogbeat / NXLog JSON lines) yield
    these; the pipeline counts each record as one.

    EVTX records (all documents) are at positions ``record N``. Lines carry, per record,
    ``start_lines`` (positions ``line N``) and, when the source is a file, the resume point
    ``end_offsets`` (as ``RawEvent.end_offset``; its ``end_line`` is the next line,
    ``start_line + 1``)."""

    event_ids: list[int]
    docs: list[bytes]
    doc_ids: list[str]
    record_ids: list[int | None]  # None: a JSON line without a record number
    source: str = ""
    start_lines: list[int] | None = None
    end_offsets: list[int] | None = None
    others: list[tuple[int, str]] = field(default_factory=list)

    def positions(self) -> list[str]:
        """Per record, where it is: ``record N`` (EVTX) or ``line N``."""
        if self.start_lines is None:
            return [f"record {r}" for r in self.record_ids]
        return [f"line {k}" for k in self.start_lines]

    def end_lines(self) -> list[int] | None:
        """Per record, the line its resume point is on (None with no ``end_offsets``)."""
        if self.end_offsets is None or self.start_lines is None:
            return None
        return [k + 1 for k in self.start_lines]

    def __len__(self) -> int:
        """The records (documents and others)."""
        return len(self.docs) + len(self.others)

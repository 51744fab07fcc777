"""The one record type every reader yields: a Windows event before any mapping.

Readers fill what their input form carries and leave the rest ``None``; they never invent a
value. Values are the raw strings of the source (normalisation happens in ``shipper.sysmon``),
except the System fields, which readers convert to the types below.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SYSMON_PROVIDER = "Microsoft-Windows-Sysmon"
SYSMON_CHANNEL = "Microsoft-Windows-Sysmon/Operational"


@dataclass(frozen=True, slots=True)
class RawEvent:
    """A Windows event as read, before normalisation.

    - ``provider``: the System/Provider Name (``Microsoft-Windows-Sysmon`` for Sysmon).
    - ``event_id``: System/EventID.
    - ``event_data``: EventData ``Name`` → raw value string, in document order. Values are as
      the source wrote them (``-``, empty, mixed-case GUIDs, ``True``… all kept here).
    - ``time_created``: System/TimeCreated SystemTime as an ISO-8601 string in UTC ending in
      ``Z`` (any sub-second precision the source has), or None when the form lacks it.
    - ``source``/``position``: where it was read (file path or ``<stdin>``; ``record 42`` or
      ``line 17``) — used in error messages and checkpoints.
    - ``original``: the record's own text when the reader has it cheaply (XML, JSON line, text
      block); used for ``event.original`` on pipeline errors. EVTX readers leave it None.
    - ``end_offset``/``end_line``: for line-based inputs (JSON lines, event XML, rendered text),
      the byte offset in the source file just past this record and the line number there: a
      read started at that offset and line (``open_source(start=ResumePoint(…))``) goes
      on with the next record exactly as a full read would. None where the reader cannot know
      it (EVTX, JSON arrays, a record cut by the end of input, undecodable bytes before it).
    """

    provider: str
    event_id: int
    event_data: dict[str, str] = field(default_factory=dict)
    record_id: int | None = None
    computer: str | None = None
    channel: str | None = None
    time_created: str | None = None
    provider_guid: str | None = None
    version: int | None = None
    level: int | None = None
    task: int | None = None
    opcode: int | None = None
    keywords: str | None = None
    process_id: int | None = None
    thread_id: int | None = None
    user_sid: str | None = None
    source: str = ""
    position: str = ""
    original: str | None = None
    end_offset: int | None = None
    end_line: int | None = None

    @property
    def is_sysmon(self) -> bool:
        return self.provider == SYSMON_PROVIDER


@dataclass(frozen=True, slots=True)
class ReadError:
    """A record a reader could not turn into a RawEvent. Yielded in the stream (never raised),
    so one bad record never aborts a file. ``kind`` is a short machine word
    (``evtx_record``, ``evtx_chunk``, ``xml``, ``json``, ``text``, ``field``). ``end_offset`` and
    ``end_line`` as in RawEvent (None when resuming after this error could differ from reading
    on)."""

    kind: str
    message: str
    source: str
    position: str
    original: str | None = None
    end_offset: int | None = None
    end_line: int | None = None

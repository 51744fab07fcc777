"""The one event model every sample writer renders from.

A :class:`SysmonEvent` carries what a Windows event log record holds for a Sysmon event: the
System fields (computer, record id, event id, TimeCreated, Execution pid/tid, the Security user
SID and the constant provider/version/level/task/opcode/keywords) and the EventData dict in
Sysmon's own field order and spelling (schema 4.x, Sysmon 13–15). Writers never invent content:
every form is a rendering of these fields only.

Times are integers in 100-nanosecond ticks since the Unix epoch (the resolution of a Windows
FILETIME), so ``TimeCreated`` can be written with the 7 fractional digits ``wevtutil`` prints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

PROVIDER = "Microsoft-Windows-Sysmon"
PROVIDER_GUID = "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"
CHANNEL = "Microsoft-Windows-Sysmon/Operational"
KEYWORDS = "0x8000000000000000"
SYSTEM_SID = "S-1-5-18"
LEVEL_INFORMATION = 4
OPCODE_INFO = 0

TICKS_PER_SECOND = 10_000_000
TICKS_PER_MS = 10_000

# EventData field order per event ID, exactly as Sysmon (schema 4.x) writes it.
FIELDS: dict[int, tuple[str, ...]] = {
    1: (
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "FileVersion", "Description",
        "Product", "Company", "OriginalFileName", "CommandLine", "CurrentDirectory", "User",
        "LogonGuid", "LogonId", "TerminalSessionId", "IntegrityLevel", "Hashes",
        "ParentProcessGuid", "ParentProcessId", "ParentImage", "ParentCommandLine", "ParentUser",
    ),
    2: (
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "TargetFilename",
        "CreationUtcTime", "PreviousCreationUtcTime", "User",
    ),
    3: (
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "User", "Protocol", "Initiated",
        "SourceIsIpv6", "SourceIp", "SourceHostname", "SourcePort", "SourcePortName",
        "DestinationIsIpv6", "DestinationIp", "DestinationHostname", "DestinationPort",
        "DestinationPortName",
    ),
    5: ("RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "User"),
    6: ("RuleName", "UtcTime", "ImageLoaded", "Hashes", "Signed", "Signature", "SignatureStatus"),
    7: (
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "ImageLoaded", "FileVersion",
        "Description", "Product", "Company", "OriginalFileName", "Hashes", "Signed", "Signature",
        "SignatureStatus", "User",
    ),
    8: (
        "RuleName", "UtcTime", "SourceProcessGuid", "SourceProcessId", "SourceImage",
        "TargetProcessGuid", "TargetProcessId", "TargetImage", "NewThreadId", "StartAddress",
        "StartModule", "StartFunction", "SourceUser", "TargetUser",
    ),
    9: ("RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "Device", "User"),
    10: (
        "RuleName", "UtcTime", "SourceProcessGUID", "SourceProcessId", "SourceThreadId",
        "SourceImage", "TargetProcessGUID", "TargetProcessId", "TargetImage", "GrantedAccess",
        "CallTrace", "SourceUser", "TargetUser",
    ),
    11: (
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "TargetFilename",
        "CreationUtcTime", "User",
    ),
    12: ("RuleName", "EventType", "UtcTime", "ProcessGuid", "ProcessId", "Image", "TargetObject", "User"),
    13: (
        "RuleName", "EventType", "UtcTime", "ProcessGuid", "ProcessId", "Image", "TargetObject",
        "Details", "User",
    ),
    17: ("RuleName", "EventType", "UtcTime", "ProcessGuid", "ProcessId", "PipeName", "Image", "User"),
    18: ("RuleName", "EventType", "UtcTime", "ProcessGuid", "ProcessId", "PipeName", "Image", "User"),
    22: (
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "QueryName", "QueryStatus", "QueryResults",
        "Image", "User",
    ),
    25: ("RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "Type", "User"),
}  # fmt: skip

# System/Version per event ID (the manifest version Sysmon 15 writes).
VERSIONS: dict[int, int] = {
    1: 5, 2: 5, 3: 5, 5: 3, 6: 4, 7: 3, 8: 2, 9: 2, 10: 3, 11: 2, 12: 2, 13: 2, 17: 1, 18: 1,
    22: 5, 25: 5,
}  # fmt: skip

# The first line of the rendered message (Event Viewer's "General" text), without the colon.
# Deliberately written out again rather than imported from shipper.sysmon.events: the generator
# stands for the outside world, so a wrong title in the reader's table must not be hidden by
# sharing it (tests/unit/test_samples_forms.py checks the two agree).
TITLES: dict[int, str] = {
    1: "Process Create",
    2: "File creation time changed",
    3: "Network connection detected",
    4: "Sysmon service state changed",
    5: "Process terminated",
    6: "Driver loaded",
    7: "Image loaded",
    8: "CreateRemoteThread detected",
    9: "RawAccessRead detected",
    10: "Process accessed",
    11: "File created",
    12: "Registry object added or deleted",
    13: "Registry value set",
    14: "Registry object renamed",
    15: "File stream created",
    16: "Sysmon config state changed",
    17: "Pipe Created",
    18: "Pipe Connected",
    19: "WmiEventFilter activity detected",
    20: "WmiEventConsumer activity detected",
    21: "WmiEventConsumerToFilter activity detected",
    22: "Dns query",
    23: "File Delete archived",
    24: "Clipboard changed",
    25: "Process Tampering",
    26: "File Delete logged",
    27: "File Block Executable",
    28: "File Block Shredding",
    29: "File Executable Detected",
    255: "Error report",
}

# The rendered Task name (winlogbeat ``winlog.task``, NXLog ``Category``).
TASK_NAMES: dict[int, str] = {
    1: "Process Create (rule: ProcessCreate)",
    2: "File creation time changed (rule: FileCreateTime)",
    3: "Network connection detected (rule: NetworkConnect)",
    5: "Process terminated (rule: ProcessTerminate)",
    6: "Driver loaded (rule: DriverLoad)",
    7: "Image loaded (rule: ImageLoad)",
    8: "CreateRemoteThread detected (rule: CreateRemoteThread)",
    9: "RawAccessRead detected (rule: RawAccessRead)",
    10: "Process accessed (rule: ProcessAccess)",
    11: "File created (rule: FileCreate)",
    12: "Registry object added or deleted (rule: RegistryEvent)",
    13: "Registry value set (rule: RegistryEvent)",
    17: "Pipe Created (rule: PipeEvent)",
    18: "Pipe Connected (rule: PipeEvent)",
    22: "Dns query (rule: DnsQuery)",
    25: "Process Tampering (rule: ProcessTampering)",
}

# Fields the Event Viewer message renders differently from the raw EventData value: the message
# template formats LogonId as upper-case hex (``0x3E7``) while the XML carries ``0x3e7``.
_UPPER_HEX_IN_MESSAGE = frozenset({"LogonId"})


@dataclass(slots=True)
class SysmonEvent:
    """One Sysmon record. ``record_id`` is assigned when the record is emitted (per host,
    monotonically increasing); ``tags`` names the ground-truth categories of a malicious event
    (empty for background) and is never written to any output form."""

    host: str
    event_id: int
    time_created: int
    data: dict[str, str]
    process_id: int
    thread_id: int
    record_id: int = 0
    user_sid: str = SYSTEM_SID
    tags: tuple[str, ...] = ()
    _lines: list[str] | None = field(default=None, repr=False, compare=False)

    @property
    def version(self) -> int:
        return VERSIONS[self.event_id]

    @property
    def level(self) -> int:
        return LEVEL_INFORMATION

    @property
    def task(self) -> int:
        return self.event_id

    @property
    def opcode(self) -> int:
        return OPCODE_INFO

    @property
    def keywords(self) -> str:
        return KEYWORDS

    @property
    def process_guid(self) -> str | None:
        d = self.data
        return d.get("ProcessGuid") or d.get("SourceProcessGuid") or d.get("SourceProcessGUID")

    def message_lines(self) -> list[str]:
        """The rendered message as Event Viewer shows it, one entry per line (computed once)."""
        if self._lines is not None:
            return self._lines
        lines = [TITLES[self.event_id] + ":"]
        for name, value in self.data.items():
            if name in _UPPER_HEX_IN_MESSAGE and value.startswith("0x"):
                value = "0x" + value[2:].upper()
            lines.append(f"{name}: {value}")
        self._lines = lines
        return lines


def build_data(event_id: int, values: dict[str, str]) -> dict[str, str]:
    """EventData in Sysmon's field order; every field of the event ID must be given."""
    return {name: values[name] for name in FIELDS[event_id]}


class TimeFormatter:
    """Fast, cached renderings of tick timestamps: events arrive nearly in time order, so a small
    per-second cache makes formatting a string concatenation."""

    __slots__ = ("_cache",)

    _LIMIT = 4096

    def __init__(self) -> None:
        self._cache: dict[int, tuple[str, str]] = {}

    def _prefix(self, sec: int) -> tuple[str, str]:
        hit = self._cache.get(sec)
        if hit is None:
            if len(self._cache) >= self._LIMIT:
                self._cache.clear()
            tm = time.gmtime(sec)
            hit = (time.strftime("%Y-%m-%dT%H:%M:%S", tm), time.strftime("%Y-%m-%d %H:%M:%S", tm))
            self._cache[sec] = hit
        return hit

    def system_time(self, ticks: int) -> str:
        """``2026-11-02T08:00:01.1234567Z`` (wevtutil's SystemTime)."""
        sec, frac = divmod(ticks, TICKS_PER_SECOND)
        return f"{self._prefix(sec)[0]}.{frac:07d}Z"

    def iso_ms(self, ticks: int) -> str:
        """``2026-11-02T08:00:01.123Z`` (Beats' @timestamp)."""
        sec, frac = divmod(ticks, TICKS_PER_SECOND)
        return f"{self._prefix(sec)[0]}.{frac // TICKS_PER_MS:03d}Z"

    def utc_time(self, ticks: int) -> str:
        """``2026-11-02 08:00:01.123`` (Sysmon's UtcTime)."""
        sec, frac = divmod(ticks, TICKS_PER_SECOND)
        return f"{self._prefix(sec)[1]}.{frac // TICKS_PER_MS:03d}"

    def seconds(self, ticks: int) -> str:
        """``2026-11-02 08:00:01`` (NXLog's EventTime, the collector's local time: UTC here)."""
        return self._prefix(ticks // TICKS_PER_SECOND)[1]

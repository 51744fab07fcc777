"""What our documents hold for Sigma: the Sysmon logsource categories as event codes, and each
Sysmon field name as the field our mapping writes it to (``docs/ecs-mapping.md``).

A field missing from an event's table is one our documents never carry for that event: a rule
that needs it cannot fire here and is reported, never run. ``tests/unit/test_sigma_schema.py``
checks every plain entry against the mapper itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

#: Sigma logsource category (product windows) → the Sysmon event codes that carry it, as
#: pysigma-pipeline-sysmon assigns them.
CATEGORIES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "process_creation": ("1",),
        "file_change": ("2",),
        "network_connection": ("3",),
        "sysmon_status": ("4", "16"),
        "process_termination": ("5",),
        "driver_load": ("6",),
        "image_load": ("7",),
        "create_remote_thread": ("8",),
        "raw_access_thread": ("9",),
        "process_access": ("10",),
        "file_event": ("11",),
        "registry_add": ("12",),
        "registry_delete": ("12",),
        "registry_set": ("13",),
        "registry_rename": ("14",),
        "registry_event": ("12", "13", "14"),
        "create_stream_hash": ("15",),
        "pipe_created": ("17", "18"),
        "wmi_event": ("19", "20", "21"),
        "dns_query": ("22",),
        "file_delete": ("23", "26"),
        "clipboard_capture": ("24",),
        "process_tampering": ("25",),
        "file_block_executable": ("27",),
        "file_block_shredding": ("28",),
        "file_executable_detected": ("29",),
        "sysmon_error": ("255",),
    }
)
#: ``service: sysmon`` names the channel: every event code, the rule says which by EventID.
SYSMON_SERVICE: Final = "sysmon"

ED = "winlog.event_data."

# Fields every Sysmon event may carry, whatever its code.
_COMMON: Final[dict[str, str]] = {
    "EventID": "event.code",
    "Provider_Name": "winlog.provider_name",
    "Computer": "host.name",
    "Channel": "winlog.channel",
    "RuleName": "rule.name",
    "UtcTime": "@timestamp",
}
_PROCESS: Final[dict[str, str]] = {
    "ProcessGuid": "process.entity_id",
    "ProcessId": "process.pid",
    "Image": "process.executable",
}
_PE: Final[tuple[tuple[str, str], ...]] = (
    ("OriginalFileName", "original_file_name"),
    ("Company", "company"),
    ("Description", "description"),
    ("FileVersion", "file_version"),
    ("Product", "product"),
)
_SIGNATURE: Final[dict[str, str]] = {
    "Signed": "file.code_signature.signed",
    "Signature": "file.code_signature.subject_name",
    "SignatureStatus": "file.code_signature.status",
}


def _pe(root: str) -> dict[str, str]:
    return {name: f"{root}.pe.{ecs}" for name, ecs in _PE}


def _raw(*names: str) -> dict[str, str]:
    """Fields kept under their Sysmon name in ``winlog.event_data``."""
    return {name: ED + name for name in names}


#: Special fields: their values change on the way (split, translated, parsed) and the pipeline
#: rewrites the detection item, not only its name (:mod:`detectors.sigma.values`).
HASHES: Final = "Hashes"
USER: Final = "User"
SPECIAL: Final = frozenset(
    {"Hashes", "Hash", "User", "ParentUser", "Initiated", "SourceIsIpv6", "DestinationIsIpv6", "Details"}
    | {"QueryStatus"}
)

_REGISTRY: Final[dict[str, str]] = {
    **_PROCESS,
    **_raw("EventType", "NewName"),
    "TargetObject": "registry.path",
    "User": "user",
}

#: event code → Sysmon field → where our documents hold it (special fields name their target
#: root: ``process``/``file`` for hashes, ``user``/``process.parent.user`` for users).
FIELDS: Final[Mapping[str, Mapping[str, str]]] = MappingProxyType(
    {
        "1": {
            **_PROCESS,
            **_pe("process"),
            **_raw("LogonGuid", "LogonId", "TerminalSessionId", "IntegrityLevel"),
            "CommandLine": "process.command_line",
            "CurrentDirectory": "process.working_directory",
            "User": "user",
            "Hashes": "process",
            "ParentProcessGuid": "process.parent.entity_id",
            "ParentProcessId": "process.parent.pid",
            "ParentImage": "process.parent.executable",
            "ParentCommandLine": "process.parent.command_line",
            "ParentUser": "process.parent.user",
        },
        "2": {
            **_PROCESS,
            **_raw("CreationUtcTime", "PreviousCreationUtcTime"),
            "TargetFilename": "file.path",
            "User": "user",
        },
        "3": {
            **_PROCESS,
            "User": "user",
            "Protocol": "network.transport",
            "Initiated": "network.direction",
            "SourceIsIpv6": "network.type",
            "DestinationIsIpv6": "network.type",
            "SourceIp": "source.ip",
            "SourceHostname": "source.domain",
            "SourcePort": "source.port",
            "SourcePortName": "network.protocol",
            "DestinationIp": "destination.ip",
            "DestinationHostname": "destination.domain",
            "DestinationPort": "destination.port",
            "DestinationPortName": "network.protocol",
        },
        "4": _raw("State", "Version", "SchemaVersion"),
        "5": {**_PROCESS, "User": "user"},
        "6": {**_SIGNATURE, "ImageLoaded": "file.path", "Hashes": "file"},
        "7": {
            **_PROCESS,
            **_SIGNATURE,
            **_pe("file"),
            "ImageLoaded": "file.path",
            "Hashes": "file",
            "User": "user",
        },
        "8": {
            **_raw(
                "TargetProcessGuid",
                "TargetProcessId",
                "TargetImage",
                "NewThreadId",
                "StartAddress",
                "StartModule",
                "StartFunction",
                "SourceUser",
                "TargetUser",
            ),
            "SourceProcessGuid": "process.entity_id",
            "SourceProcessId": "process.pid",
            "SourceImage": "process.executable",
        },
        "9": {**_PROCESS, "Device": "file.path", "User": "user"},
        "10": {
            **_raw("TargetProcessGUID", "TargetProcessId", "TargetImage", "GrantedAccess", "CallTrace")
            | _raw("SourceUser", "TargetUser"),
            "SourceProcessGUID": "process.entity_id",
            "SourceProcessId": "process.pid",
            "SourceThreadId": "process.thread.id",
            "SourceImage": "process.executable",
        },
        "11": {**_PROCESS, **_raw("CreationUtcTime"), "TargetFilename": "file.path", "User": "user"},
        "12": _REGISTRY,
        "13": {**_REGISTRY, "Details": "registry.data.strings"},
        "14": _REGISTRY,
        "15": {
            **_PROCESS,
            **_raw("CreationUtcTime", "Contents"),
            "TargetFilename": "file.path",
            "Hash": "file",
            "User": "user",
        },
        "16": _raw("Configuration", "ConfigurationFileHash"),
        "17": {**_PROCESS, **_raw("EventType"), "PipeName": "file.name", "User": "user"},
        "18": {**_PROCESS, **_raw("EventType"), "PipeName": "file.name", "User": "user"},
        "19": {**_raw("EventType", "Operation", "EventNamespace", "Name", "Query"), "User": "user"},
        "20": {**_raw("EventType", "Operation", "Name", "Type", "Destination"), "User": "user"},
        "21": {**_raw("EventType", "Operation", "Consumer", "Filter"), "User": "user"},
        "22": {
            **_PROCESS,
            **_raw("QueryResults"),
            "QueryName": "dns.question.name",
            "QueryStatus": "sysmon.dns.status",
            "User": "user",
        },
        "23": {
            **_PROCESS,
            "TargetFilename": "file.path",
            "Hashes": "process",
            "IsExecutable": "sysmon.file.is_executable",
            "Archived": "sysmon.file.archived",
            "User": "user",
        },
        "24": {**_PROCESS, **_raw("Session", "ClientInfo"), "Hashes": "process", "User": "user"},
        "25": {**_PROCESS, "Type": "message", "User": "user"},
        "26": {
            **_PROCESS,
            "TargetFilename": "file.path",
            "Hashes": "file",
            "IsExecutable": "sysmon.file.is_executable",
            "User": "user",
        },
        "27": {**_PROCESS, "TargetFilename": "file.path", "Hashes": "file", "User": "user"},
        "28": {**_PROCESS, "TargetFilename": "file.path", "Hashes": "file", "User": "user"},
        "29": {**_PROCESS, "TargetFilename": "file.path", "Hashes": "file", "User": "user"},
        "255": {"ID": "error.code", "Description": "error.message", "UtcTime": "@timestamp"},
    }
)


def field_for(code: str, name: str) -> str | None:
    """Where events of ``code`` hold the Sysmon field ``name``; None when they never do."""
    table = FIELDS.get(code, {})
    if name in table:
        return table[name]
    return _COMMON.get(name)


def fields_for(codes: tuple[str, ...], name: str) -> dict[str, str | None]:
    """``field_for`` over several event codes (a category with more than one)."""
    return {code: field_for(code, name) for code in codes}

"""Registry paths (``TargetObject``) and value data (``Details``) of Sysmon events 12–14."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

#: First path segment (upper-cased) → ECS hive abbreviation.
HIVES: Final[dict[str, str]] = {
    "HKLM": "HKLM",
    "HKEY_LOCAL_MACHINE": "HKLM",
    "HKU": "HKU",
    "HKEY_USERS": "HKU",
    "HKCU": "HKCU",
    "HKEY_CURRENT_USER": "HKCU",
    "HKCR": "HKCR",
    "HKEY_CLASSES_ROOT": "HKCR",
    "HKCC": "HKCC",
    "HKEY_CURRENT_CONFIG": "HKCC",
    "HKDD": "HKDD",
    "HKEY_DYN_DATA": "HKDD",
    "HKPD": "HKPD",
    "HKEY_PERFORMANCE_DATA": "HKPD",
}
#: Native (kernel) root keys, as ``\REGISTRY\MACHINE\…``.
_NATIVE_ROOTS: Final[dict[str, str]] = {"MACHINE": "HKLM", "USER": "HKU"}

_DWORD_RE: Final = re.compile(r"DWORD \(0x([0-9A-Fa-f]{1,8})\)")
_QWORD_RE: Final = re.compile(r"QWORD \(0x([0-9A-Fa-f]{1,8})-0x([0-9A-Fa-f]{1,8})\)")
BINARY_DATA: Final = "Binary Data"


@dataclass(frozen=True, slots=True)
class RegistryPath:
    """``path`` is the full path with the hive abbreviated; ``hive``/``key``/``value`` may be
    None when the path has no recognised hive (then only ``path`` is set, as written)."""

    path: str
    hive: str | None
    key: str | None
    value: str | None


@dataclass(frozen=True, slots=True)
class RegistryData:
    type: str
    strings: tuple[str, ...]


def _split_hive(target: str) -> tuple[str, str] | None:
    """(hive abbreviation, hive-relative rest) or None."""
    if target[:10].upper() == "\\REGISTRY\\":
        root, _, rest = target[10:].partition("\\")
        hive = _NATIVE_ROOTS.get(root.upper())
        return (hive, rest) if hive else None
    first, _, rest = target.partition("\\")
    hive = HIVES.get(first.upper())
    return (hive, rest) if hive else None


def parse_registry_path(target: str, names_value: bool) -> RegistryPath:
    """Split a ``TargetObject``.

    ``registry.value`` is the last segment. ``names_value`` says whether the last segment names
    a value (SetValue/CreateValue/DeleteValue): then ``registry.key`` is the key holding it, as
    ECS defines ``registry.key`` ("hive-relative path of keys"); for key events it is the whole
    hive-relative path.
    """
    split = _split_hive(target)
    if split is None:
        return RegistryPath(target, None, None, None)
    hive, rest = split
    path = f"{hive}\\{rest}" if rest else hive
    if not rest:
        return RegistryPath(path, hive, None, None)
    parent, sep, last = rest.rpartition("\\")
    key = (parent if sep else None) if names_value else rest
    return RegistryPath(path, hive, key or None, last or None)


def parse_details(details: str) -> RegistryData:
    """``Details`` → ECS ``registry.data`` (type names as Elastic's Sysmon integration uses).

    ``QWORD (0xHIGH-0xLOW)`` is ``(HIGH << 32) | LOW`` (Elastic shifts by 8, a known bug).
    """
    if details.startswith("DWORD ("):
        m = _DWORD_RE.fullmatch(details)
        if m is not None:
            return RegistryData("SZ_DWORD", (str(int(m.group(1), 16)),))
    elif details.startswith("QWORD ("):
        m = _QWORD_RE.fullmatch(details)
        if m is not None:
            value = (int(m.group(1), 16) << 32) | int(m.group(2), 16)
            return RegistryData("SZ_QWORD", (str(value),))
    elif details == BINARY_DATA:
        return RegistryData("REG_BINARY", (details,))
    return RegistryData("REG_SZ", (details,))

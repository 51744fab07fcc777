"""Registry paths and value data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipper.raw import SYSMON_PROVIDER, RawEvent
from shipper.sysmon.ecs import to_ecs
from shipper.sysmon.registry import RegistryData, RegistryPath, parse_details, parse_registry_path

RUN = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run"


@pytest.mark.parametrize(
    ("target", "hive"),
    [
        (f"HKLM\\{RUN}\\x", "HKLM"),
        (f"hklm\\{RUN}\\x", "HKLM"),
        (f"HKEY_LOCAL_MACHINE\\{RUN}\\x", "HKLM"),
        (f"\\REGISTRY\\MACHINE\\{RUN}\\x", "HKLM"),
        (f"HKU\\{RUN}\\x", "HKU"),
        (f"HKEY_USERS\\{RUN}\\x", "HKU"),
        (f"\\Registry\\User\\{RUN}\\x", "HKU"),
        (f"HKCU\\{RUN}\\x", "HKCU"),
        (f"HKEY_CURRENT_USER\\{RUN}\\x", "HKCU"),
        (f"HKCR\\{RUN}\\x", "HKCR"),
        (f"HKEY_CLASSES_ROOT\\{RUN}\\x", "HKCR"),
        (f"HKEY_CURRENT_CONFIG\\{RUN}\\x", "HKCC"),
        (f"HKEY_DYN_DATA\\{RUN}\\x", "HKDD"),
        (f"HKEY_PERFORMANCE_DATA\\{RUN}\\x", "HKPD"),
    ],
)
def test_hive_normalised(target: str, hive: str) -> None:
    assert parse_registry_path(target, names_value=True) == RegistryPath(f"{hive}\\{RUN}\\x", hive, RUN, "x")


def test_key_event_keeps_whole_key() -> None:
    assert parse_registry_path(f"HKLM\\{RUN}", names_value=False) == RegistryPath(
        f"HKLM\\{RUN}", "HKLM", RUN, "Run"
    )


def test_unknown_hive_keeps_path_only() -> None:
    assert parse_registry_path("\\REGISTRY\\A\\{guid}\\x", True) == RegistryPath(
        "\\REGISTRY\\A\\{guid}\\x", None, None, None
    )
    assert parse_registry_path("HKLM", True) == RegistryPath("HKLM", "HKLM", None, None)


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        ("DWORD (0x0000002c)", RegistryData("SZ_DWORD", ("44",))),
        ("DWORD (0xffffffff)", RegistryData("SZ_DWORD", ("4294967295",))),
        # (high << 32) | low, not Elastic's << 8
        ("QWORD (0x01d9b921-0x8ab93170)", RegistryData("SZ_QWORD", (str((0x01D9B921 << 32) | 0x8AB93170),))),
        ("QWORD (0x00000001-0x00000000)", RegistryData("SZ_QWORD", ("4294967296",))),
        ("QWORD (0xffffffff-0xffffffff)", RegistryData("SZ_QWORD", (str(2**64 - 1),))),
        ("Binary Data", RegistryData("REG_BINARY", ("Binary Data",))),
        ("C:\\x.exe", RegistryData("REG_SZ", ("C:\\x.exe",))),
        ("DWORD (0xZZ)", RegistryData("REG_SZ", ("DWORD (0xZZ)",))),
        ("(Empty)", RegistryData("REG_SZ", ("(Empty)",))),
    ],
)
def test_details(details: str, expected: RegistryData) -> None:
    assert parse_details(details) == expected


def test_qword_value_is_exact() -> None:
    # A FILETIME Windows wrote on 2023-07-18: the two halves concatenated, as one 64-bit value.
    (value,) = parse_details("QWORD (0x01d9b921-0x8ab93170)").strings
    assert value == str(0x01D9B9218AB93170) == "133341217696592240"
    unix = int(value) // 10_000_000 - 11_644_473_600
    assert datetime.fromtimestamp(unix, UTC).date().isoformat() == "2023-07-18"


def test_event_13_document() -> None:
    doc = to_ecs(
        RawEvent(
            provider=SYSMON_PROVIDER,
            event_id=13,
            event_data={
                "EventType": "SetValue",
                "TargetObject": f"HKLM\\{RUN}\\evil",
                "Details": "DWORD (0x00000010)",
            },
        )
    )
    assert doc["registry"] == {
        "path": f"HKLM\\{RUN}\\evil",
        "hive": "HKLM",
        "key": RUN,
        "value": "evil",
        "data": {"type": "SZ_DWORD", "strings": ["16"]},
    }


def test_event_14_new_name_stays_raw() -> None:
    doc = to_ecs(
        RawEvent(
            provider=SYSMON_PROVIDER,
            event_id=14,
            event_data={"EventType": "RenameKey", "TargetObject": "HKLM\\A\\B", "NewName": "HKLM\\A\\C"},
        )
    )
    assert doc["registry"]["key"] == "A\\B"
    assert doc["winlog"]["event_data"]["NewName"] == "HKLM\\A\\C"


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.booleans(), st.booleans())
def test_qword_property(high: int, low: int, pad: bool, upper: bool) -> None:
    h, lo = (f"{high:08x}", f"{low:08x}") if pad else (f"{high:x}", f"{low:x}")
    if upper:
        h, lo = h.upper(), lo.upper()
    data = parse_details(f"QWORD (0x{h}-0x{lo})")
    assert data == RegistryData("SZ_QWORD", (str(high * 2**32 + low),))


@given(st.integers(0, 2**32 - 1))
def test_dword_property(value: int) -> None:
    assert parse_details(f"DWORD (0x{value:08x})") == RegistryData("SZ_DWORD", (str(value),))


@given(st.text(max_size=60))
def test_details_total(text: str) -> None:
    data = parse_details(text)
    assert data.type in {"SZ_DWORD", "SZ_QWORD", "REG_BINARY", "REG_SZ"}
    assert len(data.strings) == 1
    if data.type == "REG_SZ":
        assert data.strings == (text,)


@given(st.text(max_size=60), st.booleans())
def test_path_total(text: str, names_value: bool) -> None:
    reg = parse_registry_path(text, names_value)
    if reg.hive is None:
        assert reg.path == text
    else:
        assert reg.path.startswith(reg.hive)

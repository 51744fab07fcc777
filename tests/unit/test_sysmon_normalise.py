"""Normalisation of raw values: every source converges on one rendering."""

from __future__ import annotations

import pytest

from shipper.sysmon.normalise import (
    normalise_bool,
    normalise_event_data,
    normalise_guid,
    normalise_hex,
    parse_int,
    parse_iso_time,
    parse_utc_time,
)

GUID = "{365ABB72-7C01-5CC4-0000-00102B3E0C00}"


@pytest.mark.parametrize(
    "value",
    [
        GUID,
        GUID.lower(),
        GUID[1:-1],
        GUID[1:-1].lower(),
        " " + GUID + " ",
        "{365abb72-7C01-5cc4-0000-00102B3E0C00}",
    ],
)
def test_guid_forms_converge(value: str) -> None:
    assert normalise_guid(value) == GUID


@pytest.mark.parametrize(
    "value", ["", "abc", "{365ABB72-7C01-5CC4-0000-00102B3E0C0}", "365ABB72-7C01-5CC4-0000-00102B3E0C00}"]
)
def test_not_a_guid(value: str) -> None:
    assert normalise_guid(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", "true"),
        ("True", "true"),
        ("TRUE", "true"),
        (" false", "false"),
        ("FaLsE", "false"),
        ("yes", None),
    ],
)
def test_bool(value: str, expected: str | None) -> None:
    assert normalise_bool(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0x000000000002c9e7", "0x2c9e7"),
        ("0x2C9E7", "0x2c9e7"),
        ("0X3E7", "0x3e7"),
        ("0x0000000000000000", "0x0"),
        ("2c9e7", None),
        ("0x", None),
    ],
)
def test_hex(value: str, expected: str | None) -> None:
    assert normalise_hex(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("42", 42),
        (" 42 ", 42),
        (42, 42),
        ("0", 0),
        ("-1", None),
        ("abc", None),
        ("4.2", None),
        ("٤٢", None),
        (True, None),
    ],
)
def test_parse_int(value: object, expected: int | None) -> None:
    assert parse_int(value) == expected


def test_event_data_drops_and_normalises() -> None:
    raw: dict[str, object] = {
        "RuleName": "-",
        "Empty": "",
        "Blank": "   ",
        "ParentProcessGuid": "{00000000-0000-0000-0000-000000000000}",
        "LogonGuid": "00000000-0000-0000-0000-000000000000",
        "ProcessGuid": GUID[1:-1].lower(),
        "SourceProcessGUID": GUID.lower(),
        "Initiated": True,
        "Archived": "TRUE",
        "IsExecutable": "False",
        "LogonId": "0x00000000000003E7",
        "ProcessId": 1234,
        "Image": "C:\\a.exe",
        "NotAGuid": "x",
        "WeirdGuid": "not-a-guid",
    }
    assert normalise_event_data(raw) == {
        "ProcessGuid": GUID,
        "SourceProcessGUID": GUID,
        "Initiated": "true",
        "Archived": "true",
        "IsExecutable": "false",
        "LogonId": "0x3e7",
        "ProcessId": "1234",
        "Image": "C:\\a.exe",
        "NotAGuid": "x",
        "WeirdGuid": "not-a-guid",
    }


def test_lone_surrogates_are_replaced() -> None:
    assert normalise_event_data({"Image": "a\ud800b"}) == {"Image": "a?b"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2019-04-27 15:57:53.368", "2019-04-27T15:57:53.368Z"),
        ("2019-04-27 15:57:53.3", "2019-04-27T15:57:53.300Z"),
        ("2019-04-27 15:57:53", "2019-04-27T15:57:53.000Z"),
        ("2019-04-27T15:57:53.36899Z", "2019-04-27T15:57:53.368Z"),
        ("2019-02-30 00:00:00.000", None),
        ("2019-04-27 25:00:00.000", None),
        ("yesterday", None),
    ],
)
def test_utc_time(value: str, expected: str | None) -> None:
    assert parse_utc_time(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2019-03-19T23:34:29.446823Z", "2019-03-19T23:34:29.446823Z"),
        ("2019-03-19T23:34:29.4468235Z", "2019-03-19T23:34:29.446823Z"),
        ("2019-03-19T23:34:29.4Z", "2019-03-19T23:34:29.400000Z"),
        ("2019-03-19T23:34:29Z", "2019-03-19T23:34:29.000000Z"),
        ("2019-03-19T23:34:29.446823", "2019-03-19T23:34:29.446823Z"),
        ("2019-03-20T01:34:29.446823+02:00", "2019-03-19T23:34:29.446823Z"),
        ("2019-03-19T23:34:29.446823+00:00", "2019-03-19T23:34:29.446823Z"),
        ("2019-13-19T23:34:29Z", None),
        ("", None),
    ],
)
def test_iso_time(value: str, expected: str | None) -> None:
    assert parse_iso_time(value) == expected

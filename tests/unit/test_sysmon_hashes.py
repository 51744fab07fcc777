"""Hashes strings, and where their values land in the document."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from shipper.raw import SYSMON_PROVIDER, RawEvent
from shipper.sysmon.ecs import to_ecs
from shipper.sysmon.hashes import parse_hashes

SHA1 = "B4E581F173F782A2F1DA5D29C95946EE500EB2D0"
MD5 = "42893ADBC36605EC79B5BD610759947E"
IMP = "40BEC1A4A3BCB7D3089B5E1532386613"
ZERO = "0" * 32
HASHES = f"SHA1={SHA1},MD5={MD5},IMPHASH={IMP}"


def test_parse_lower_cases_and_skips_zero_and_empty() -> None:
    assert parse_hashes(f"SHA1={SHA1},MD5=,IMPHASH={ZERO},junk,SHA256=AbC") == [
        ("sha1", SHA1.lower()),
        ("sha256", "abc"),
    ]


def test_parse_unknown() -> None:
    assert parse_hashes("Unknown") == []


def _doc(eid: int, **data: str) -> dict[str, Any]:
    return to_ecs(RawEvent(provider=SYSMON_PROVIDER, event_id=eid, event_data=dict(data)))


def test_process_target_for_event_1() -> None:
    doc = _doc(1, Hashes=HASHES)
    assert doc["process"]["hash"] == {"sha1": SHA1.lower(), "md5": MD5.lower()}
    assert doc["process"]["pe"]["imphash"] == IMP.lower()
    assert "file" not in doc
    assert set(doc["related"]["hash"]) == {SHA1.lower(), MD5.lower(), IMP.lower()}
    assert "event_data" not in doc["winlog"]


def test_process_targets() -> None:
    for eid in (1, 23, 24, 25):
        assert _doc(eid, Hashes=HASHES)["process"]["hash"]["sha1"] == SHA1.lower()


def test_file_targets() -> None:
    for eid in (6, 7, 15, 26, 27, 28, 29):
        doc = _doc(eid, Hashes=HASHES)
        assert doc["file"]["hash"]["md5"] == MD5.lower(), eid
        assert doc["file"]["pe"]["imphash"] == IMP.lower(), eid
        assert "process" not in doc


def test_singular_hash_of_event_15() -> None:
    doc = _doc(15, Hash=f"SHA256={'AB' * 32}")
    assert doc["file"]["hash"] == {"sha256": "ab" * 32}


def test_unparseable_hash_stays_raw() -> None:
    doc = _doc(15, Hash="Unknown")
    assert doc["winlog"]["event_data"] == {"Hash": "Unknown"}
    assert "related" not in doc


def test_algorithm_without_ecs_field_keeps_raw_too() -> None:
    doc = _doc(1, Hashes=f"MD5={MD5},SHA3={'1' * 64}")
    assert doc["process"]["hash"] == {"md5": MD5.lower()}
    assert doc["winlog"]["event_data"]["Hashes"] == f"MD5={MD5},SHA3={'1' * 64}"
    assert "1" * 64 in doc["related"]["hash"]


def test_event_without_hash_target_keeps_raw() -> None:
    doc = _doc(16, Hashes=HASHES)
    assert doc["winlog"]["event_data"]["Hashes"] == HASHES


_HEX = st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=64)
_ALGO = st.sampled_from(["SHA1", "MD5", "SHA256", "IMPHASH", "sha1", "Md5"])


@given(st.lists(st.tuples(_ALGO, _HEX), max_size=6))
def test_parse_property(pairs: list[tuple[str, str]]) -> None:
    text = ",".join(f"{a}={v}" for a, v in pairs)
    parsed = parse_hashes(text)
    expected = [(a.lower(), v.lower()) for a, v in pairs if v and v.strip("0")]
    assert parsed == expected
    for algo, value in parsed:
        assert algo == algo.lower() and value == value.lower()


@given(st.text(max_size=100))
def test_parse_total(text: str) -> None:
    for algo, value in parse_hashes(text):
        assert algo and value and value.strip("0")

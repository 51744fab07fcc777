"""Why the native core leaves records to Python: one reason per record, counted in the run's
stats (``Stats.native_fallbacks``), merged across worker processes, the same on both sides."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import shipper.native as native_mod
from shipper.native import FallbackReason
from shipper.pipeline import Stats, iter_documents
from tests.unit.test_native import _plain_record
from tests.unit.test_native_jsonl import _line, _wlb

sysmon_native = pytest.importorskip("sysmon_native")


@pytest.fixture(autouse=True)
def _native_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SYSMON_NATIVE", raising=False)
    native_mod.native.cache_clear()
    assert native_mod.available()
    yield
    native_mod.native.cache_clear()


def test_the_core_names_the_reasons_python_knows() -> None:
    assert sysmon_native.fallback_reasons() == [r.value for r in FallbackReason]


# ------------------------------------------------------------------ EVTX records


def _record(change: Any) -> bytes:
    data = orjson.loads(_plain_record(7)[0])
    change(data["Event"])
    return orjson.dumps(data)


def _set(path: str, value: Any) -> Any:
    def change(event: dict[str, Any]) -> None:
        *steps, last = path.split(".")
        node = event
        for step in steps:
            node = node[step]
        node[last] = value

    return change


EVTX_CASES = {
    FallbackReason.SHAPE: _set("System.TimeCreated.#attributes.SystemTime", "2024-05-01T10:00:00.1+01:00"),
    FallbackReason.NON_ASCII: _set("System.Computer", "WS-Ö1"),
    FallbackReason.UNUSUAL_VALUE: _set("EventData.UtcTime", "2024-05-01 10:00:00"),
    FallbackReason.PIPELINE_ERROR: _set("EventData.ProcessId", "four"),
    FallbackReason.OTHER_PROVIDER: _set("System.Provider.#attributes.Name", "Service Control Manager"),
}


@pytest.mark.parametrize("reason", list(EVTX_CASES))
def test_evtx_records_fall_back_for_their_reason(reason: FallbackReason) -> None:
    native_mod.native()
    assert sysmon_native.record_fallback(_plain_record(7)[0]) is None
    raw = _record(EVTX_CASES[reason])
    assert sysmon_native.record_fallback(raw) == reason.value
    assert sysmon_native.map_record_json(raw) is None


def test_evtx_fallbacks_are_counted_per_record() -> None:
    """On the shared EVTX files every record the core left to Python is counted once (other
    providers' records as such): the records it mapped and those add up to all records."""
    from tests.unit.test_native import _evtx_files

    files = _evtx_files()
    st = Stats()
    fast = sum(i.doc_json is not None and i._doc is None for i in iter_documents(files, stats=st))
    counts = st.native_fallbacks
    assert counts[FallbackReason.OTHER_PROVIDER] == sum(st.other_providers.values())
    assert fast + counts.total() == st.records - sum(st.errors.values())
    assert counts == {FallbackReason.NON_ASCII: 3}  # (3,157 of the 3,160 records are mapped natively)
    assert set(counts) <= {r.value for r in FallbackReason}


# ------------------------------------------------------------------ JSON lines


def _doc(**event_data: Any) -> dict[str, Any]:
    doc = _wlb(5)
    doc["winlog"]["event_data"].update(event_data)
    return doc


def _without_event_id() -> dict[str, Any]:
    doc = _wlb(5)
    del doc["winlog"]["event_id"]
    del doc["event"]["code"]
    return doc


def _host(name: str) -> dict[str, Any]:
    doc = _wlb(5)
    doc["winlog"]["computer_name"] = name
    return doc


JSON_CASES: dict[FallbackReason, bytes] = {
    FallbackReason.SHAPE: _line(_doc(ProcessId=12.5)).encode(),
    FallbackReason.NON_ASCII: _line(_host("WS-Ö1")).encode(),
    FallbackReason.UNUSUAL_VALUE: _line(_wlb(5, record_id="10_01")).encode(),
    FallbackReason.PIPELINE_ERROR: _line(_doc(ProcessId="four")).encode(),
    FallbackReason.READ_ERROR: _line(_without_event_id()).encode(),
    FallbackReason.BROKEN_LINE: b'{"winlog": {"event_id": 1,}}',
    FallbackReason.UNDECODABLE: _line(_doc(CommandLine="cmd XFFX")).encode().replace(b"XFFX", b"\xff"),
}


@pytest.mark.parametrize("reason", list(JSON_CASES))
def test_json_lines_fall_back_for_their_reason(reason: FallbackReason, tmp_path: Path) -> None:
    """A line between ordinary ones that the core declines is counted once, under its reason,
    and read by Python as before."""
    good = [_line(_wlb(i)).encode() for i in range(3)]
    path = tmp_path / "f.ndjson"
    path.write_bytes(b"\n".join([good[0], JSON_CASES[reason], good[1], good[2]]) + b"\n")
    st = Stats()
    items = list(iter_documents([str(path)], stats=st))
    assert st.native_fallbacks == Counter({reason.value: 1})
    assert len(items) == 4 and st.records == 4
    if reason != FallbackReason.UNDECODABLE:  # (text with U+FFFD is not a line the core reads)
        assert sysmon_native.line_fallback(JSON_CASES[reason].decode()) == reason.value
    assert all(i.doc_json is not None for k, i in enumerate(items) if k != 1)


def test_the_python_path_counts_no_fallbacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.ndjson"
    path.write_bytes(b"\n".join(JSON_CASES.values()) + b"\n")
    monkeypatch.setenv("SYSMON_NATIVE", "0")
    native_mod.native.cache_clear()
    st = Stats()
    list(iter_documents([str(path)], stats=st))
    assert not st.native_fallbacks and st.records == len(JSON_CASES)


# ------------------------------------------------------------------ stats


def test_fallback_counts_merge_take_and_print() -> None:
    one, two = Stats(), Stats()
    one.native_fallbacks["shape"] += 2
    two.native_fallbacks.update({"shape": 1, "non_ascii": 4})
    part = copy.deepcopy(two).take()
    one.merge(part)
    assert one.native_fallbacks == Counter({"shape": 3, "non_ascii": 4})
    assert one.as_dict()["native_fallbacks"] == {"non_ascii": 4, "shape": 3}
    taken = two.take()
    assert taken.native_fallbacks == Counter({"shape": 1, "non_ascii": 4}) and not two.native_fallbacks


def test_workers_count_the_fallbacks_one_process_counts(tmp_path: Path) -> None:
    paths = []
    for k, line in enumerate(JSON_CASES.values()):
        path = tmp_path / f"{k}.ndjson"
        path.write_bytes(b"\n".join([_line(_wlb(1)).encode(), line]) + b"\n")
        paths.append(str(path))
    one, many = Stats(), Stats()
    list(iter_documents(paths, stats=one, workers=1))
    list(iter_documents(paths, stats=many, workers=2))
    assert many.native_fallbacks == one.native_fallbacks
    assert one.native_fallbacks.total() == len(JSON_CASES)

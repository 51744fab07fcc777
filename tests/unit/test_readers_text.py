"""Rendered-text reader: CRLF/LF, values containing ``: ``, unknown titles, round trip."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from shipper.raw import SYSMON_CHANNEL, RawEvent, ReadError
from shipper.readers.text import read_text, render_text
from shipper.sysmon.events import TITLES

BLOCK = [
    "Process Create:",
    "RuleName: -",
    "UtcTime: 2021-03-04 05:06:07.120",
    "ProcessGuid: {5770385f-0000-0000-0000-000000000001}",
    "Image: C:\\Windows\\System32\\cmd.exe",
    'CommandLine: cmd /c "echo a: b: c"',
    "User: NT AUTHORITY\\SYSTEM",
]
DATA = {
    "RuleName": "-",
    "UtcTime": "2021-03-04 05:06:07.120",
    "ProcessGuid": "{5770385f-0000-0000-0000-000000000001}",
    "Image": "C:\\Windows\\System32\\cmd.exe",
    "CommandLine": 'cmd /c "echo a: b: c"',
    "User": "NT AUTHORITY\\SYSTEM",
}


def read(text: str, host: str | None = None) -> list[RawEvent | ReadError]:
    return list(read_text(io.BytesIO(text.encode("utf-8")), "test.txt", host))


def test_crlf_and_lf_read_the_same() -> None:
    for newline in ("\r\n", "\n"):
        [ev] = read(newline.join(BLOCK) + newline)
        assert isinstance(ev, RawEvent)
        assert ev.event_id == 1 and ev.event_data == DATA
        assert ev.is_sysmon and ev.channel == SYSMON_CHANNEL
        assert ev.computer is None and ev.record_id is None and ev.time_created is None
        assert ev.position == "line 1"


def test_host_option_sets_the_computer() -> None:
    [ev] = read("\n".join(BLOCK), host="ws1")
    assert isinstance(ev, RawEvent) and ev.computer == "ws1"


def test_blocks_split_by_blank_lines_and_by_titles() -> None:
    text = "\n".join(BLOCK) + "\n\n\nDns query:\nQueryName: example.org\nFile created:\nTargetFilename: C:\\x"
    got = read(text)
    assert [(ev.event_id, ev.position) for ev in got if isinstance(ev, RawEvent)] == [
        (1, "line 1"),
        (22, "line 10"),
        (11, "line 12"),
    ]


def test_value_with_colon_space_and_empty_value() -> None:
    [ev] = read("Registry value set:\nDetails: DWORD (0x00000001): on\nRuleName:\nTargetObject: \n")
    assert isinstance(ev, RawEvent) and ev.event_id == 13
    assert ev.event_data == {"Details": "DWORD (0x00000001): on", "RuleName": "", "TargetObject": ""}


def test_multi_line_value_continues() -> None:
    [ev] = read('Process Create:\nCommandLine: powershell -c "a\n  b"\nUser: X')
    assert isinstance(ev, RawEvent) and ev.event_data["CommandLine"] == 'powershell -c "a\n  b"'


def test_unknown_title_is_an_error_and_its_block_skipped() -> None:
    got = read("Something odd happened:\nFoo: bar\n\n" + "\n".join(BLOCK))
    assert isinstance(got[0], ReadError) and got[0].position == "line 1" and got[0].kind == "text"
    assert isinstance(got[1], RawEvent) and got[1].position == "line 4" and len(got) == 2


def test_sysmon_event_id_variant_and_old_title() -> None:
    got = read("Sysmon Event ID 3\nProtocol: tcp\n\nFile Delete:\nTargetFilename: C:\\x\n")
    assert [(ev.event_id, ev.event_data) for ev in got if isinstance(ev, RawEvent)] == [
        (3, {"Protocol": "tcp"}),
        (23, {"TargetFilename": "C:\\x"}),
    ]


def test_fields_before_any_title_are_an_error() -> None:
    got = read("Image: x\nUser: y\n\n" + "\n".join(BLOCK))
    assert [type(ev).__name__ for ev in got] == ["ReadError", "RawEvent"]


names = st.from_regex(r"[A-Z][A-Za-z0-9]{0,20}", fullmatch=True)
values = st.text(st.characters(blacklist_categories=("Cs", "Zl", "Zp", "Cc")), max_size=40).map(str.strip)
events = st.tuples(st.sampled_from(sorted(TITLES)), st.dictionaries(names, values, max_size=8))


@given(st.lists(events, min_size=1, max_size=5), st.sampled_from(["\r\n", "\n"]))
def test_round_trip(blocks: list[tuple[int, dict[str, str]]], newline: str) -> None:
    text = (newline + newline).join(render_text(eid, data, newline) for eid, data in blocks)
    got = read(text)
    assert all(isinstance(ev, RawEvent) for ev in got)
    assert [(ev.event_id, ev.event_data) for ev in got if isinstance(ev, RawEvent)] == blocks

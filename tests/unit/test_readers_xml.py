"""Event XML reader: wrapper, concatenation, forwarded events, malformed events, hostile XML."""

from __future__ import annotations

import io

from shipper.raw import RawEvent, ReadError
from shipper.readers.xml import read_xml

NS = "http://schemas.microsoft.com/win/2004/08/events/event"


def event(record: int, image: str = "C:\\Windows\\System32\\cmd.exe", extra: str = "") -> str:
    return (
        f"<Event xmlns='{NS}'><System><Provider Name='Microsoft-Windows-Sysmon' "
        "Guid='{5770385f-c22a-43e0-bf4c-06f5698ffbd9}'/><EventID>1</EventID><Version>5</Version>"
        "<Level>4</Level><Task>1</Task><Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords>"
        "<TimeCreated SystemTime='2021-03-04T05:06:07.1234567Z'/>"
        f"<EventRecordID>{record}</EventRecordID><Correlation/>"
        "<Execution ProcessID='2920' ThreadID='3936'/><Channel>Microsoft-Windows-Sysmon/Operational</Channel>"
        "<Computer>ws1.example.org</Computer><Security UserID='S-1-5-18'/></System>"
        "<EventData><Data Name='RuleName'>-</Data><Data Name='UtcTime'>2021-03-04 05:06:07.120</Data>"
        f"<Data Name='Image'>{image}</Data><Data Name='CommandLine'>cmd /c \"echo a: b &amp; c\"</Data>"
        f"<Data Name='Empty'></Data></EventData>{extra}</Event>"
    )


def read(text: str) -> list[RawEvent | ReadError]:
    return list(read_xml(io.BytesIO(text.encode("utf-8")), "test.xml"))


def test_single_event_maps_every_system_field() -> None:
    [ev] = read(event(42))
    assert isinstance(ev, RawEvent)
    assert ev.is_sysmon and ev.event_id == 1 and ev.record_id == 42
    assert ev.provider_guid == "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"
    assert ev.time_created == "2021-03-04T05:06:07.1234567Z"
    assert (ev.version, ev.level, ev.task, ev.opcode, ev.keywords) == (5, 4, 1, 0, "0x8000000000000000")
    assert (ev.process_id, ev.thread_id, ev.user_sid) == (2920, 3936, "S-1-5-18")
    assert ev.computer == "ws1.example.org" and ev.channel == "Microsoft-Windows-Sysmon/Operational"
    assert ev.event_data == {
        "RuleName": "-",
        "UtcTime": "2021-03-04 05:06:07.120",
        "Image": "C:\\Windows\\System32\\cmd.exe",
        "CommandLine": 'cmd /c "echo a: b & c"',
        "Empty": "",
    }
    assert ev.original is not None and ev.original.startswith("<Event") and ev.original.endswith("</Event>")
    assert ev.position == "line 1" and ev.source == "test.xml"


def test_wevtutil_wrapper() -> None:
    text = "<?xml version='1.0' encoding='utf-8'?>\r\n<Events>\r\n" + "\r\n".join(map(event, (1, 2, 3)))
    got = read(text + "\r\n</Events>\r\n")
    assert [ev.record_id for ev in got if isinstance(ev, RawEvent)] == [1, 2, 3]
    assert [ev.position for ev in got] == ["line 3", "line 4", "line 5"]


def test_concatenated_events_without_root_and_utf16() -> None:
    text = "".join(event(n) for n in range(1, 6))
    assert [ev.record_id for ev in read(text) if isinstance(ev, RawEvent)] == [1, 2, 3, 4, 5]
    utf16 = list(read_xml(io.BytesIO(text.encode("utf-16")), "u16.xml"))
    assert [ev.record_id for ev in utf16 if isinstance(ev, RawEvent)] == [1, 2, 3, 4, 5]


def test_forwarded_event_with_rendering_info() -> None:
    rendering = (
        "<RenderingInfo Culture='en-US'><Message>Process Create:&#13;\nRuleName: -</Message>"
        "<Level>Information</Level><Task>Process Create (rule: ProcessCreate)</Task>"
        "<Opcode>Info</Opcode><Channel></Channel><Provider></Provider><Keywords></Keywords></RenderingInfo>"
    )
    [ev] = read(event(7, extra=rendering))
    assert isinstance(ev, RawEvent) and ev.record_id == 7
    assert "Message" not in ev.event_data and ev.task == 1 and ev.level == 4


def test_malformed_middle_event_is_reported_and_others_read() -> None:
    broken = event(2).replace("</EventData>", "")  # mismatched tag
    unterminated = event(4).replace("</Event>", "")  # never closed
    text = "\n".join([event(1), broken, event(3), unterminated, event(5)])
    got = read(text)
    assert [ev.record_id for ev in got if isinstance(ev, RawEvent)] == [1, 3, 5]
    errors = [ev for ev in got if isinstance(ev, ReadError)]
    assert [(err.kind, err.position) for err in errors] == [("xml", "line 2"), ("xml", "line 4")]
    assert all(err.source == "test.xml" for err in errors)


def test_event_without_provider_is_an_error() -> None:
    [err] = read(f"<Event xmlns='{NS}'><System><EventID>1</EventID></System></Event>")
    assert isinstance(err, ReadError) and "Provider" in err.message


def test_entity_bomb_is_refused() -> None:
    bomb = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
        ' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n]>\n'
    )
    got = read(bomb + event(1, image="&lol3;"))
    assert len(got) == 2 and all(isinstance(g, ReadError) for g in got)
    assert "DOCTYPE" in got[0].message and got[0].position == "line 2"
    # the event is parsed standalone: its entity is undefined there, never expanded
    assert "malformed event XML: undefined entity" in got[1].message


def test_external_entity_is_refused() -> None:
    xxe = '<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + event(
        1, image="&x;"
    )
    decl, ev = read(xxe)
    assert isinstance(decl, ReadError) and "ENTITY" in decl.message
    assert isinstance(ev, ReadError) and "undefined entity" in ev.message


def test_undeclared_entity_in_an_event_is_just_malformed() -> None:
    got = read(event(1, image="&x;") + event(2))
    assert isinstance(got[0], ReadError) and isinstance(got[1], RawEvent)


def test_doctype_split_across_blocks_is_still_found() -> None:
    pad = " " * (65536 - 5)
    got = read(pad + "<!DOCTYPE x>" + event(1))
    assert len(got) == 2 and isinstance(got[0], ReadError) and "DOCTYPE" in got[0].message
    assert isinstance(got[1], RawEvent)


def test_a_doctype_between_events_is_refused_alone() -> None:
    events = [event(n) for n in range(1, 7)]
    text = "<Events>\n" + "\n".join(events[:3]) + '\n<!DOCTYPE x [<!ENTITY a "b">]>\n' + "\n".join(events[3:])
    got = read(text + "\n</Events>\n")
    errors = [g for g in got if isinstance(g, ReadError)]
    assert [g.record_id for g in got if isinstance(g, RawEvent)] == [1, 2, 3, 4, 5, 6]
    assert len(errors) == 1 and errors[0].message.startswith("DOCTYPE/ENTITY declarations are not accepted")
    assert "the events around it were" in errors[0].message and errors[0].position == "line 5"


def test_a_doctype_inside_an_event_refuses_that_event_only() -> None:
    inner = event(2).replace("<System>", "<!DOCTYPE x><System>", 1)
    got = read(event(1) + inner + event(3))
    assert [type(g).__name__ for g in got] == ["RawEvent", "ReadError", "RawEvent"]
    assert isinstance(got[1], ReadError) and "this event was not read" in got[1].message

"""Event XML reader: one ``<Event>``, concatenated events without a root, an ``<Events>``
wrapper (``wevtutil qe /f:xml``), and forwarded events with ``<RenderingInfo>`` (ignored).

The stream is decoded block by block and cut into ``<Event …>…</Event>`` pieces textually;
each piece is parsed on its own, so a malformed event costs only itself (a ReadError with
its line number) and reading resumes at the next ``<Event`` start tag. Memory is bounded by
the largest event, not the file.

Safety: a ``<!DOCTYPE`` or ``<!ENTITY`` declaration never reaches the parser. Between events
it is refused as a ReadError of its own and the events around it are read; inside an event the
event is refused. Events are parsed standalone, so no declaration could apply to them anyway, and
neither external entities nor entity-expansion bombs can be expanded.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import IO

from shipper.raw import RawEvent, ReadError
from shipper.readers._common import decoded, guid_braced, keywords_hex, to_int, utc_iso

EVENT_NS = "http://schemas.microsoft.com/win/2004/08/events/event"

#: Largest single event accepted before the reader gives up on it and resyncs.
MAX_EVENT_CHARS = 16 * 1024 * 1024

_EVENT_START = re.compile(r"<Event[\s>/]")
_EVENT_END = "</Event>"
_FORBIDDEN = re.compile(r"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_REFUSED = (
    "DOCTYPE/ENTITY declarations are not accepted in event XML (external entities and entity "
    "expansion are refused)"
)
#: What may stand between events: white space, the XML declaration and other processing
#: instructions, comments, and the ``<Events>`` wrapper of ``wevtutil qe /f:xml``.
_BETWEEN = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->|</?Events(?:\s[^<>]*)?/?>", re.DOTALL)
#: Text outside events kept to be reported (the rest of a longer stretch is only counted).
MAX_STRAY_CHARS = 64 * 1024


def _first_stray(text: str) -> int | None:
    """Index of the first character of ``text`` that is not allowed between events."""
    at = 0
    while at < len(text):
        m = _BETWEEN.match(text, at)
        if m is None or m.end() == at:
            return at
        at = m.end()
    return None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def event_from_element(
    root: ET.Element,
    source: str,
    position: str,
    original: str | None,
    end_offset: int | None = None,
    end_line: int | None = None,
) -> RawEvent:
    """Map a parsed ``<Event>`` element (any namespace) to a RawEvent.

    Raises ValueError when the element lacks what every event has (a provider and an EventID).
    """
    provider: str | None = None
    guid: str | None = None
    event_id: int | None = None
    fields: dict[str, object] = {}
    data: dict[str, str] = {}
    for part in root:
        name = _local(part.tag)
        if name == "System":
            for item in part:
                key = _local(item.tag)
                if key == "Provider":
                    provider = item.get("Name") or item.get("EventSourceName")
                    guid = guid_braced(item.get("Guid"))
                elif key == "EventID":
                    event_id = to_int(item.text)
                elif key == "TimeCreated":
                    fields["time_created"] = utc_iso(item.get("SystemTime"))
                elif key == "Execution":
                    fields["process_id"] = to_int(item.get("ProcessID"))
                    fields["thread_id"] = to_int(item.get("ThreadID"))
                elif key == "Security":
                    fields["user_sid"] = item.get("UserID") or None
                elif key == "EventRecordID":
                    fields["record_id"] = to_int(item.text)
                elif key in ("Version", "Level", "Task", "Opcode"):
                    fields[key.lower()] = to_int(item.text)
                elif key == "Keywords":
                    fields["keywords"] = keywords_hex(item.text)
                elif key == "Channel":
                    fields["channel"] = item.text or None
                elif key == "Computer":
                    fields["computer"] = item.text or None
        elif name == "EventData":
            unnamed = 0
            for item in part:
                named = item.get("Name")
                if named is None:
                    unnamed += 1
                    tag = _local(item.tag)
                    named = tag if tag != "Data" else f"param{unnamed}"
                data[named] = item.text or ""
        elif name == "UserData":
            for holder in part:
                for item in holder:
                    data[_local(item.tag)] = item.text or ""
    if not provider:
        raise ValueError("event has no System/Provider Name")
    if event_id is None:
        raise ValueError("event has no numeric System/EventID")
    return RawEvent(
        provider=provider,
        event_id=event_id,
        event_data=data,
        provider_guid=guid,
        source=source,
        position=position,
        original=original,
        end_offset=end_offset,
        end_line=end_line,
        **fields,  # type: ignore[arg-type]
    )


def _parse_event(
    text: str, source: str, line: int, end_offset: int | None = None, end_line: int | None = None
) -> RawEvent | ReadError:
    position = f"line {line}"
    ends = {"end_offset": end_offset, "end_line": end_line}
    if _FORBIDDEN.search(text):
        return ReadError("xml", _REFUSED + "; this event was not read", source, position, text[:4096], **ends)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        err_line, col = exc.position
        reason = str(exc).partition(":")[0]
        where = f"line {line + err_line - 1}"
        return ReadError("xml", f"malformed event XML: {reason} (column {col})", source, where, text, **ends)
    if _local(root.tag) != "Event":
        return ReadError(
            "xml", f"expected <Event>, found <{_local(root.tag)}>", source, position, text, **ends
        )
    try:
        return event_from_element(root, source, position, text, end_offset, end_line)
    except ValueError as exc:
        return ReadError("xml", str(exc), source, position, text, **ends)


def read_xml(
    stream: IO[bytes],
    source: str,
    *,
    start_offset: int | None = 0,
    start_line: int = 1,
    codec: str | None = None,
) -> Iterator[RawEvent | ReadError]:
    """Yield one RawEvent (or ReadError) per ``<Event>`` in ``stream``.

    ``start_offset``/``start_line``: where ``stream`` starts in its file (an event's ``end_offset``/
    ``end_line``), with ``codec`` the file's BOM-less codec when that is not the start.
    Every event (and malformed event) carries ``end_offset``: just past its ``</Event>``."""
    buf = ""
    # Text between events that is not allowed there (a damaged start tag, another form read as
    # XML) is reported as one ReadError per stretch, never dropped silently.
    stray: list[str] = []
    stray_chars = 0
    stray_line = 0
    stray_more = False

    def note(a: int, b: int, at_line: int) -> None:
        """Keep ``buf[a:b]`` (starting on ``at_line``), text outside any event."""
        nonlocal stray_chars, stray_line, stray_more
        if a >= b:
            return
        seg = buf[a:b]
        if not stray:
            lead = len(seg) - len(seg.lstrip())
            if lead == len(seg):
                return
            stray_line = at_line + seg.count("\n", 0, lead)
            seg = seg[lead:]
        if stray_chars >= MAX_STRAY_CHARS:
            stray_more = True
            return
        seg = seg[: MAX_STRAY_CHARS - stray_chars]
        stray.append(seg)
        stray_chars += len(seg)

    def stray_error() -> ReadError | None:
        nonlocal stray_chars, stray_more
        if not stray:
            return None
        text = "".join(stray)
        more = stray_more
        stray.clear()
        stray_chars = 0
        stray_more = False
        first = _first_stray(text)
        if first is None and not more:
            return None
        first = first if first is not None else len(text)
        snippet = text[first : first + 60].replace("\n", " ")
        what = f"text outside any <Event> element was not read: {snippet!r}"
        if _FORBIDDEN.match(text, first):
            what = _REFUSED + f"; it was not read, the events around it were: {snippet!r}"
        return ReadError(
            "xml",
            what,
            source,
            f"line {stray_line + text.count(chr(10), 0, first)}",
            text[:4096],
        )

    pos = 0  # everything before pos is consumed
    blocks, counter = decoded(stream, start_offset, codec)
    line = start_line  # line number at buf[pos]
    mark = 0  # counter.offset is the byte offset of buf[mark]
    eof = False
    while True:
        start = _EVENT_START.search(buf, pos)
        if start is not None:
            begin = start.start()
            end = buf.find(_EVENT_END, begin)
            nxt = _EVENT_START.search(buf, begin + 6)
            note(pos, begin, line)
            err = stray_error()
            if err is not None:
                yield err
            if end >= 0 and (nxt is None or nxt.start() > end):
                stop = end + len(_EVENT_END)
                ev_line = line + buf.count("\n", pos, begin)
                line = ev_line + buf.count("\n", begin, stop)
                counter.advance(buf[mark:stop])
                mark = stop
                end_line = line if counter.offset is not None else None
                yield _parse_event(buf[begin:stop], source, ev_line, counter.offset, end_line)
                pos = stop
                continue
            if nxt is not None or (eof and end < 0) or len(buf) - begin > MAX_EVENT_CHARS:
                cut = nxt.start() if nxt is not None else len(buf)
                ev_line = line + buf.count("\n", pos, begin)
                line = ev_line + buf.count("\n", begin, cut)
                counter.advance(buf[mark:cut])
                mark = cut
                known = nxt is not None and counter.offset is not None
                yield ReadError(
                    "xml",
                    "unterminated <Event> (no </Event> before the next event or the end of input)",
                    source,
                    f"line {ev_line}",
                    buf[begin:cut][:4096],
                    counter.offset if known else None,
                    line if known else None,
                )
                pos = cut
                continue
            line += buf.count("\n", pos, begin)  # the text before it is noted
            pos = keep = begin
        else:
            keep = max(pos, len(buf) - 16)  # a start tag may straddle two blocks
            if eof:
                keep = len(buf)
            note(pos, keep, line)
        if eof:
            err = stray_error()
            if err is not None:
                yield err
            return
        line += buf.count("\n", pos, keep)
        counter.advance(buf[mark:keep])
        mark = 0
        tail = buf[keep:]
        try:
            block = next(blocks)
        except StopIteration:
            eof = True
            block = ""
        buf = tail + block
        pos = 0

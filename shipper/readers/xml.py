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


def _system(
    part: ET.Element, fields: dict[str, object], provider: str | None, guid: str | None, event_id: int | None
) -> tuple[str | None, str | None, int | None]:
    """(provider, provider GUID, event ID) as updated by a ``<System>`` element (given: as an
    earlier one left them); its other fields go into ``fields`` under their RawEvent names."""
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
    return provider, guid, event_id


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
            provider, guid, event_id = _system(part, fields, provider, guid, event_id)
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


class _Stray:
    """Text between events that is not allowed there (a damaged start tag, another form read as
    XML), gathered per stretch so that each stretch is one ReadError, never dropped silently."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.parts: list[str] = []
        self.chars = 0
        self.line = 0
        self.more = False  # text beyond MAX_STRAY_CHARS was only counted

    def note(self, seg: str, at_line: int) -> None:
        """Keep ``seg`` (starting on ``at_line``), text outside any event."""
        if not seg:
            return
        if not self.parts:
            lead = len(seg) - len(seg.lstrip())
            if lead == len(seg):
                return
            self.line = at_line + seg.count("\n", 0, lead)
            seg = seg[lead:]
        if self.chars >= MAX_STRAY_CHARS:
            self.more = True
            return
        seg = seg[: MAX_STRAY_CHARS - self.chars]
        self.parts.append(seg)
        self.chars += len(seg)

    def error(self) -> ReadError | None:
        """The ReadError for the stretch noted so far (None if it was all allowed); resets."""
        if not self.parts:
            return None
        text = "".join(self.parts)
        more = self.more
        self.parts.clear()
        self.chars = 0
        self.more = False
        first = _first_stray(text)
        if first is None and not more:
            return None
        first = first if first is not None else len(text)
        snippet = text[first : first + 60].replace("\n", " ")
        what = f"text outside any <Event> element was not read: {snippet!r}"
        if _FORBIDDEN.match(text, first):
            what = _REFUSED + f"; it was not read, the events around it were: {snippet!r}"
        where = f"line {self.line + text.count(chr(10), 0, first)}"
        return ReadError("xml", what, self.source, where, text[:4096])


class _XmlReader:
    """One event XML stream being cut into events: the decoded text held (``buf``), what is
    consumed (before ``pos``, which is on line ``line``) and the byte counter
    (``counter.offset`` is the file offset of ``buf[mark]``)."""

    def __init__(
        self, stream: IO[bytes], source: str, start_offset: int | None, start_line: int, codec: str | None
    ) -> None:
        self.source = source
        self.blocks, self.counter = decoded(stream, start_offset, codec)
        self.buf = ""
        self.pos = 0
        self.line = start_line
        self.mark = 0
        self.eof = False
        self.stray = _Stray(source)

    def events(self) -> Iterator[RawEvent | ReadError]:
        while True:
            start = _EVENT_START.search(self.buf, self.pos)
            if start is not None:
                begin = start.start()
                self.stray.note(self.buf[self.pos : begin], self.line)
                err = self.stray.error()
                if err is not None:
                    yield err
                item = self._take(begin)
                if item is not None:
                    yield item
                    continue
                keep = begin  # the event is incomplete: read on
            else:
                # a start tag may straddle two blocks
                keep = len(self.buf) if self.eof else max(self.pos, len(self.buf) - 16)
                self.stray.note(self.buf[self.pos : keep], self.line)
            if self.eof:
                err = self.stray.error()
                if err is not None:
                    yield err
                return
            self._refill(keep)

    def _take(self, begin: int) -> RawEvent | ReadError | None:
        """The event starting at ``begin`` (or its error); None while it may be incomplete."""
        buf = self.buf
        end = buf.find(_EVENT_END, begin)
        nxt = _EVENT_START.search(buf, begin + 6)
        if end >= 0 and (nxt is None or nxt.start() > end):
            return self._complete(begin, end + len(_EVENT_END))
        if nxt is not None or (self.eof and end < 0) or len(buf) - begin > MAX_EVENT_CHARS:
            return self._unterminated(begin, nxt.start() if nxt is not None else len(buf), nxt is not None)
        return None

    def _consume(self, begin: int, stop: int) -> int:
        """Consume ``buf`` up to ``stop``; the line number of ``begin``."""
        buf = self.buf
        ev_line = self.line + buf.count("\n", self.pos, begin)
        self.line = ev_line + buf.count("\n", begin, stop)
        self.counter.advance(buf[self.mark : stop])
        self.pos = self.mark = stop
        return ev_line

    def _complete(self, begin: int, stop: int) -> RawEvent | ReadError:
        ev_line = self._consume(begin, stop)
        offset = self.counter.offset
        end_line = self.line if offset is not None else None
        return _parse_event(self.buf[begin:stop], self.source, ev_line, offset, end_line)

    def _unterminated(self, begin: int, cut: int, before_next: bool) -> ReadError:
        ev_line = self._consume(begin, cut)
        # resuming is safe only at the next event's start, not at a possibly growing end
        known = before_next and self.counter.offset is not None
        return ReadError(
            "xml",
            "unterminated <Event> (no </Event> before the next event or the end of input)",
            self.source,
            f"line {ev_line}",
            self.buf[begin:cut][:4096],
            self.counter.offset if known else None,
            self.line if known else None,
        )

    def _refill(self, keep: int) -> None:
        """Drop ``buf`` before ``keep`` (noted already) and append the next block."""
        buf = self.buf
        self.line += buf.count("\n", self.pos, keep)
        self.counter.advance(buf[self.mark : keep])
        try:
            block = next(self.blocks)
        except StopIteration:
            self.eof = True
            block = ""
        self.buf = buf[keep:] + block
        self.pos = self.mark = 0


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
    yield from _XmlReader(stream, source, start_offset, start_line, codec).events()

"""JSON reader: winlogbeat / Elastic Agent documents and NXLog documents.

Accepted layouts: JSON lines, a JSON array of documents (streamed element by element), one
(possibly pretty-printed) object, or objects simply concatenated. The stream is decoded block
by block; a line is tried with orjson first and anything else goes through
``json.JSONDecoder.raw_decode``, so memory is bounded by the largest document. A broken
document yields a ReadError (``line N``, or ``element N`` inside an array) and reading
resumes on the next line.

Document shapes (told apart by the presence of a ``winlog`` object):

* winlogbeat / Elastic Agent: everything under ``winlog``; EventData is ``winlog.event_data``.
  TimeCreated is taken from ``winlog.time_created``, else ``event.created``, else
  ``@timestamp`` (raw winlogbeat output sets ``@timestamp`` to the event's TimeCreated; after
  the Sysmon ingest pipeline ``event.created`` holds it). ``log.level`` names
  (``information``…) map to the Windows Level numbers.
* NXLog (``im_msvistalog``, often shipped through logstash): System fields and EventData are
  flat siblings. Keys NXLog and logstash add are metadata (``NXLOG_METADATA``); every other key
  is EventData. NXLog's own ``EventType`` (``INFO``, ``AUDIT_SUCCESS``…) is metadata, Sysmon's
  ``EventType`` (``CreateKey``, ``SetValue``…) is EventData; when both existed the export
  renamed NXLog's to ``EventTypeOrignal`` (sic). Level comes from ``Level`` or, failing that,
  from NXLog's ``SeverityValue`` mapped back to the Windows level (INFO→4 etc.).

Decision on NXLog times: ``EventTime`` (and ``EventReceivedTime``) are written by NXLog in the
collector's *local* time without a zone (``2020-09-04 03:06:09`` for an event whose Sysmon
``UtcTime`` is ``07:06:09.681``); the zone is not in the document, so such a value gives
``time_created = None`` rather than a guess. An ``EventTime`` that carries a zone offset is
converted to UTC. A top-level ``TimeCreated`` is not trusted either: in the real exports that
carry it, it is local wall-clock time labelled ``Z`` (every Sysmon event in them is exactly
7 h off its ``UtcTime``). ``@timestamp`` is logstash's receive time there, never TimeCreated.
Sysmon's own ``UtcTime`` (EventData) is untouched and is what ``@timestamp`` is built from.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import IO, Any

import orjson

from shipper.native import native
from shipper.raw import SYSMON_PROVIDER, MappedBatch, RawEvent, ReadError
from shipper.readers._common import (
    decoded,
    guid_braced,
    keywords_hex,
    text_value,
    to_int,
    utc_iso,
)

#: Largest single document accepted before the reader gives up on it and resyncs; the
#: environment variable raises it for a run.
MAX_DOCUMENT_CHARS = 16 * 1024 * 1024
MAX_DOCUMENT_ENV = "SYSMON_MAX_RECORD_CHARS"


def max_document_chars() -> int:
    """The record size limit: ``SYSMON_MAX_RECORD_CHARS`` when set to a positive integer."""
    raw = os.environ.get(MAX_DOCUMENT_ENV, "")
    try:
        value = int(raw)
    except ValueError:
        return MAX_DOCUMENT_CHARS
    return value if value > 0 else MAX_DOCUMENT_CHARS


#: bytes read at a time: a native call maps what one block holds, so bigger blocks spread the
#: per-call work of the reader, pipeline and sink over more documents (~500 winlogbeat lines)
JSON_BLOCK_SIZE = 1 << 20
#: characters of the decoded text handed to the core at once when it reads text, not bytes
NATIVE_TEXT_WINDOW = 1 << 16

_NEXT_ELEMENT = re.compile(r"\}\s*,\s*(?=\{)")

#: Top-level keys of NXLog / logstash documents that are not EventData.
NXLOG_METADATA = frozenset(
    {
        # im_msvistalog System fields and rendering
        "EventTime", "EventReceivedTime", "Hostname", "Keywords", "EventType", "EventTypeOrignal",
        "SeverityValue", "Severity", "EventID", "SourceName", "ProviderGuid", "Version", "Task",
        "OpcodeValue", "Opcode", "RecordNumber", "ActivityID", "RelatedActivityID",
        "ExecutionProcessID", "ThreadID", "Channel", "Domain", "AccountName", "UserID",
        "AccountType", "Category", "Message", "Level", "Qualifiers", "SourceModuleName",
        "SourceModuleType", "ERROR_EVT_UNRESOLVED", "TimeCreated", "EventData", "UserData",
        "MessageSourceAddress", "SourceAddress",
        # logstash / shipper additions
        "@timestamp", "@version", "host", "port", "tags", "type", "path", "log", "agent", "ecs",
        "beat", "input", "fields",
    }
)  # fmt: skip

#: NXLog's own EventType vocabulary (Sysmon's EventType values never take these).
NXLOG_EVENT_TYPES = frozenset(
    {"INFO", "WARNING", "ERROR", "CRITICAL", "VERBOSE", "AUDIT_SUCCESS", "AUDIT_FAILURE"}
)

#: NXLog SeverityValue → Windows Level (NXLog maps Level 0 and 4 both to INFO; 4 is read back).
_SEVERITY_TO_LEVEL = {1: 5, 2: 4, 3: 3, 4: 2, 5: 1}
#: winlogbeat ``log.level`` names → Windows Level.
_LEVEL_NAMES = {"critical": 1, "error": 2, "warning": 3, "information": 4, "info": 4, "verbose": 5}


def _sysmon_type(value: Any) -> bool:
    return isinstance(value, str) and value not in NXLOG_EVENT_TYPES


def _get(doc: dict[str, Any], *path: str) -> Any:
    node: Any = doc
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _str(value: Any) -> str | None:
    text = text_value(value)
    return text or None


#: Windows' standard opcode names as winlogbeat renders them.
_OPCODE_NAMES = {"info": 0, "start": 1, "stop": 2, "datacollectionstart": 3, "datacollectionstop": 4}


def _level_name(value: Any) -> int | None:
    if isinstance(value, str):
        return _LEVEL_NAMES.get(value.strip().lower(), to_int(value))
    return to_int(value)


def event_from_winlogbeat(
    doc: dict[str, Any],
    source: str,
    position: str,
    original: str | None,
    end_offset: int | None = None,
    end_line: int | None = None,
) -> RawEvent:
    winlog = doc["winlog"]
    event_id = to_int(winlog.get("event_id"))
    if event_id is None:
        event_id = to_int(_get(doc, "event", "code"))
    if event_id is None:
        raise ValueError("document has no winlog.event_id")
    provider = _str(winlog.get("provider_name")) or _str(_get(doc, "event", "provider"))
    if not provider:
        raise ValueError("document has no winlog.provider_name")
    data: dict[str, str] = {}
    raw_data = winlog.get("event_data")
    if isinstance(raw_data, dict):
        for key, value in raw_data.items():
            text = text_value(value)
            if text is not None:
                data[key] = text
    # winlogbeat's @timestamp is the record's TimeCreated; event.created is when the beat read it.
    stamp = (
        utc_iso(winlog.get("time_created"))
        or utc_iso(doc.get("@timestamp"))
        or utc_iso(_get(doc, "event", "created"))
    )
    task = to_int(winlog.get("task"))
    if task is None and provider == SYSMON_PROVIDER and _str(winlog.get("task")):
        # winlogbeat renders the task as text ("Process Create (rule: ProcessCreate)"); Sysmon's
        # task number is its event ID, which the other forms carry.
        task = event_id
    opcode = to_int(winlog.get("opcode"))
    if opcode is None:
        opcode = _OPCODE_NAMES.get(str(winlog.get("opcode", "")).strip().lower())
    keywords = winlog.get("keywords")
    return RawEvent(
        provider=provider,
        event_id=event_id,
        event_data=data,
        record_id=to_int(winlog.get("record_id")),
        computer=_str(winlog.get("computer_name")),
        channel=_str(winlog.get("channel")),
        time_created=stamp,
        provider_guid=guid_braced(winlog.get("provider_guid")),
        version=to_int(winlog.get("version")),
        level=_level_name(_get(doc, "log", "level")),
        task=task,
        opcode=opcode,
        keywords=keywords_hex(keywords) if not isinstance(keywords, list) else None,
        process_id=to_int(_get(winlog, "process", "pid")),
        thread_id=to_int(_get(winlog, "process", "thread", "id")),
        user_sid=_str(_get(winlog, "user", "identifier")),
        source=source,
        position=position,
        original=original,
        end_offset=end_offset,
        end_line=end_line,
    )


def event_from_nxlog(
    doc: dict[str, Any],
    source: str,
    position: str,
    original: str | None,
    end_offset: int | None = None,
    end_line: int | None = None,
) -> RawEvent:
    event_id = to_int(doc.get("EventID"))
    if event_id is None:
        raise ValueError("document has no EventID")
    provider = _str(doc.get("SourceName")) or _str(doc.get("ProviderName"))
    if not provider:
        raise ValueError("document has no SourceName")
    sysmon_event_type = "EventTypeOrignal" in doc
    data: dict[str, str] = {}
    for key, value in doc.items():
        if key in NXLOG_METADATA and not (key == "EventType" and (sysmon_event_type or _sysmon_type(value))):
            continue
        text = text_value(value)
        if text is not None:
            data[key] = text
    level = to_int(doc.get("Level"))
    if level is None:
        severity = to_int(doc.get("SeverityValue"))
        level = _SEVERITY_TO_LEVEL.get(severity) if severity is not None else None
    event_time = doc.get("EventTime")
    return RawEvent(
        provider=provider,
        event_id=event_id,
        event_data=data,
        record_id=to_int(doc.get("RecordNumber")),
        computer=_str(doc.get("Hostname")),
        channel=_str(doc.get("Channel")),
        time_created=utc_iso(event_time) if isinstance(event_time, str) else None,
        provider_guid=guid_braced(doc.get("ProviderGuid")),
        version=to_int(doc.get("Version")),
        level=level,
        task=to_int(doc.get("Task")),
        opcode=to_int(doc.get("OpcodeValue")),
        keywords=keywords_hex(doc.get("Keywords")),
        process_id=to_int(doc.get("ExecutionProcessID")),
        thread_id=to_int(doc.get("ThreadID")),
        user_sid=_str(doc.get("UserID")) or _str(doc.get("SID")),
        source=source,
        position=position,
        original=original,
        end_offset=end_offset,
        end_line=end_line,
    )


def event_from_document(
    doc: Any,
    source: str,
    position: str,
    original: str | None,
    end_offset: int | None = None,
    end_line: int | None = None,
) -> RawEvent | ReadError:
    """Map one decoded JSON document (either shape) to a RawEvent, or say why not."""
    if not isinstance(doc, dict):
        return ReadError(
            "json",
            f"expected a JSON object, found {type(doc).__name__}",
            source,
            position,
            original,
            end_offset=end_offset,
            end_line=end_line,
        )
    try:
        if isinstance(doc.get("winlog"), dict):
            return event_from_winlogbeat(doc, source, position, original, end_offset, end_line)
        return event_from_nxlog(doc, source, position, original, end_offset, end_line)
    except (ValueError, TypeError, AttributeError) as exc:
        return ReadError(
            "json", str(exc), source, position, original, end_offset=end_offset, end_line=end_line
        )


def read_json(
    stream: IO[bytes],
    source: str,
    *,
    start_offset: int | None = 0,
    start_line: int = 1,
    codec: str | None = None,
    premapped: bool = False,
) -> Iterator[RawEvent | MappedBatch | ReadError]:
    """Yield one RawEvent (or ReadError) per JSON document in ``stream``.

    ``start_offset``/``start_line``: where ``stream`` starts in its file (a JSON-lines record's
    ``end_offset``/``end_line``), with ``codec`` the file's BOM-less codec when that is not
    the start (None: not a file, no offsets). Records of JSON lines carry ``end_offset``: just
    past their line's newline.

    ``premapped``: runs of winlogbeat / NXLog lines the native core reads (``shipper.native``)
    arrive as MappedBatch instead: the same documents and positions, and the providers of the
    other providers' records among them; the core only ever reads whole lines at the top level
    of the stream, where this reader would take its fast path, and gives back every line it
    does not read exactly as this reader would."""
    decoder = json.JSONDecoder()
    loads = orjson.loads
    limit = max_document_chars()
    core = native() if premapped else None
    map_lines = core.map_json_lines if core is not None else None
    map_bytes = core.map_json_bytes if core is not None else None
    misses = 0  # consecutive native calls that mapped nothing
    pause = 0  # documents to read here before asking the core again
    # a UTF-8 file's bytes from offset raw_at (that of buf[0]), for the core to read instead of
    # a UTF-8 copy of buf (which a buffer with one character beyond ASCII costs)
    tap: list[bytes] | None = [] if core is not None and start_offset is not None else None
    blocks, counter = decoded(stream, start_offset, codec, tap, JSON_BLOCK_SIZE)
    raw = b""
    raw_at = start_offset if tap is not None and counter.codec == "utf-8" else None
    line = start_line  # line number at buf[pos]
    mark = 0  # counter.offset is the byte offset of buf[mark]
    buf = ""
    pos = 0
    eof = False
    depth = 0  # > 0 inside a top-level array
    element = 0
    resync = False

    def more() -> bool:
        nonlocal buf, pos, eof, mark, raw, raw_at
        if eof:
            return False
        try:
            block = next(blocks)
        except StopIteration:
            eof = True
            return False
        counter.advance(buf[mark:pos])
        buf = buf[pos:] + block
        pos = mark = 0
        if tap is not None:
            fresh = b"".join(tap) if raw_at is not None else b""
            tap.clear()
            at = counter.offset
            if raw_at is not None and at is not None:  # keep the bytes from buf[0] on
                cut = at - raw_at
                raw = raw[cut:] + fresh if cut <= len(raw) else fresh[cut - len(raw) :]
                raw_at = at
            else:  # not UTF-8, or offsets unknown from here (U+FFFD): the core reads buf
                raw, raw_at = b"", None
        return True

    while True:
        # skip blanks (and array punctuation)
        while True:
            size = len(buf)
            while pos < size and buf[pos] in " \t\r\n,\ufeff" and (buf[pos] != "," or depth):
                if buf[pos] == "\n":
                    line += 1
                pos += 1
            if pos < size or not more():
                break
        if pos >= len(buf):
            return
        char = buf[pos]
        if resync:  # after a broken document: silently skip lines until one opens a document
            if char not in "{[":
                cut = buf.find("\n", pos)
                while cut < 0 and more():
                    cut = buf.find("\n", pos)
                pos = len(buf) if cut < 0 else cut
                continue
            resync = False
        if char == "[" and not depth:
            depth, element = 1, 0
            pos += 1
            continue
        if char == "]" and depth:
            depth = 0
            pos += 1
            continue
        where = f"element {element}" if depth else f"line {line}"
        if depth:
            element += 1
        if not depth and char == "{":  # JSON lines: try the whole line at once
            newline = buf.find("\n", pos)
            while newline < 0 and len(buf) - pos <= limit and more():
                newline = buf.find("\n", pos)
            if map_lines is not None and newline >= 0 and pause:
                pause -= 1
            elif map_lines is not None and newline >= 0:  # this line and the next, natively
                counter.advance(buf[mark:pos])
                mark = pos
                at = counter.offset
                if raw_at is not None and at is not None and map_bytes is not None:
                    run = map_bytes(raw, at - raw_at, line, at)
                else:
                    try:  # (at most a window of the text: a copy per call)
                        run = map_lines(buf[pos : pos + NATIVE_TEXT_WINDOW], counter.width, line, at)
                    except UnicodeEncodeError:  # lone surrogates: not text the core can borrow
                        run = None
                if run is not None and run.start_lines:
                    misses = 0
                    starts, ends = run.start_lines, run.end_offsets
                    yield MappedBatch(
                        run.event_ids, run.docs, run.ids, run.record_ids, source, starts, ends, run.others
                    )
                    pos += run.chars
                    mark = pos
                    line = starts[-1] + 1  # the run ends just past its last line's newline
                    if ends is not None:
                        counter.offset = ends[-1]
                    continue
                # a line the core leaves to this reader (an odd shape, a value it does not
                # reproduce): back off on a run of them, so a file the core cannot map costs little
                misses += 1
                pause = min(1 << (misses - 1), 64) - 1
            stop = newline if newline >= 0 else len(buf)
            candidate = buf[pos:stop]
            try:
                doc = loads(candidate)
            except orjson.JSONDecodeError:
                pass
            else:
                if newline >= 0:  # the record ends past its newline
                    stop += 1
                    line += 1
                counter.advance(buf[mark:stop])
                mark = stop
                end = counter.offset if newline >= 0 or eof else None
                yield event_from_document(
                    doc, source, where, candidate.rstrip("\r"), end, line if end is not None else None
                )
                pos = stop
                continue
        # the careful way: one value from pos, reading on while the value is merely incomplete
        while True:
            try:
                doc, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                # JSON strings cannot hold a raw newline: an error after the last newline of
                # the buffer may just be a value cut by the block boundary
                if buf.find("\n", exc.pos) < 0 and len(buf) - pos <= limit and more():
                    continue
                bad_line = line + buf.count("\n", pos, exc.pos)
                too_long = buf.find("\n", pos) < 0 and len(buf) - pos > limit
                if depth:  # resume at the next element boundary
                    found = _NEXT_ELEMENT.search(buf, exc.pos)
                    cut = found.end() if found else len(buf)
                else:  # resume on the line after the document's first line
                    cut = buf.find("\n", pos)
                    cut = len(buf) if cut < 0 else cut
                    resync = True
                what = f"malformed JSON: {exc.msg} (line {bad_line}, column {exc.colno})"
                if too_long:
                    what = (
                        f"record longer than the limit of {limit} characters, not read "
                        f"(set {MAX_DOCUMENT_ENV} to raise it)"
                    )
                yield ReadError(
                    "json",
                    what,
                    source,
                    where,
                    buf[pos:cut][:4096].rstrip(", \r\n"),
                )
                line += buf.count("\n", pos, cut)
                pos = cut
                break
            text = buf[pos:end]
            yield event_from_document(doc, source, where, text)
            line += text.count("\n")
            pos = end
            break

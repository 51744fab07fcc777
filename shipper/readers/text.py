"""Rendered-text reader: Sysmon events as the Event Viewer shows their message.

One block per event: a title line naming the event (``Process Create:``; also the
``Sysmon Event ID 1`` form), then ``Name: value`` lines, ``\\r\\n`` or ``\\n``. A value may
itself contain ``: `` (only the first one separates). A line that is neither a title nor a
``Name: value`` line continues the previous value (multi-line command lines). Blocks end at a
blank line or at the next title line.

The form carries no System fields: provider and channel are Sysmon's, the computer is the
``host`` option when given and None otherwise; record id, times, GUIDs stay None. An unknown
title yields a ReadError (with its line number) and its block is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from shipper.raw import SYSMON_CHANNEL, SYSMON_PROVIDER, RawEvent, ReadError
from shipper.readers._common import decoded
from shipper.sysmon.events import TITLES

#: Title → event ID, including titles older Sysmon versions used.
TITLE_IDS: dict[str, int] = {title: event_id for event_id, title in TITLES.items()} | {
    "File Delete": 23,
}

_ID_PREFIX = "Sysmon Event ID "


def _is_name(text: str) -> bool:
    return bool(text) and text.replace("_", "a").isalnum() and text.isascii()


def _lines(
    stream: IO[bytes], offset: int | None = 0, codec: str | None = None
) -> Iterator[tuple[str, int | None]]:
    """The lines of ``stream`` (without their line break), each with the byte offset of its
    start (None once unknown)."""
    blocks, counter = decoded(stream, offset, codec)
    rest = ""
    for block in blocks:
        parts = (rest + block).split("\n")
        rest = parts.pop()
        for part in parts:
            at = counter.offset
            counter.advance(part)
            counter.advance("\n")
            yield (part[:-1] if part.endswith("\r") else part), at
    if rest:
        yield (rest[:-1] if rest.endswith("\r") else rest), counter.offset


def _title(line: str) -> tuple[str, int | None] | None:
    """(title, event id or None when unknown) if ``line`` is a title line, else None."""
    text = line.strip()
    if text.startswith(_ID_PREFIX):
        number = text[len(_ID_PREFIX) :].rstrip(":").strip()
        return (text, int(number)) if number.isdigit() else None
    if not text.endswith(":") or ": " in text:
        return None
    name = text[:-1].rstrip()
    if " " not in name:  # ``Name:`` with an empty value
        return None
    return name, TITLE_IDS.get(name)


def render_text(event_id: int, event_data: dict[str, str], newline: str = "\r\n") -> str:
    """The rendered-text form of an event (the title, then ``Name: value`` lines)."""
    title = TITLES.get(event_id)
    head = f"{title}:" if title else f"{_ID_PREFIX}{event_id}"
    return newline.join([head, *(f"{key}: {value}" for key, value in event_data.items())])


class _Blocks:
    """The rendered-text block being read: its event ID (None outside a block), first line,
    ``Name: value`` pairs and lines; ``skipping`` inside a block that was already reported."""

    def __init__(self, source: str, host: str | None) -> None:
        self.source = source
        self.host = host
        self.event_id: int | None = None
        self.start = 0
        self.data: dict[str, str] = {}
        self.last_key: str | None = None
        self.original: list[str] = []
        self.skipping = False

    def finish(self, end: int | None = None, end_line: int | None = None) -> RawEvent | None:
        """The block read so far as a RawEvent (None if there is none); starts afresh."""
        done = None
        if self.event_id is not None:
            done = RawEvent(
                provider=SYSMON_PROVIDER,
                event_id=self.event_id,
                event_data=self.data,
                computer=self.host,
                channel=SYSMON_CHANNEL,
                source=self.source,
                position=f"line {self.start}",
                original="\n".join(self.original),
                end_offset=end,
                end_line=end_line if end is not None else None,
            )
        self.event_id, self.data, self.last_key, self.original = None, {}, None, []
        return done

    def title(self, title: tuple[str, int | None], number: int, line: str) -> ReadError | None:
        """Start the block a title line opens (after :meth:`finish`)."""
        name, found = title
        if found is None:
            self.skipping = True
            return ReadError("text", f"unknown event title {name!r}", self.source, f"line {number}", line)
        self.skipping = False
        self.event_id, self.start, self.original = found, number, [line]
        return None

    def value(self, number: int, line: str) -> ReadError | None:
        """Take a ``Name: value`` line or a continuation line of the previous value."""
        key, sep, value = line.partition(": ")
        if not sep and line.endswith(":"):
            key, sep, value = line[:-1], ":", ""
        if self.event_id is None:
            self.skipping = True
            what = "text outside an event (no title line before it)"
            return ReadError("text", what, self.source, f"line {number}", line)
        self.original.append(line)
        if sep and _is_name(key):
            self.data[key] = value
            self.last_key = key
        elif self.last_key is not None:
            self.data[self.last_key] += "\n" + line
        else:
            self.skipping = True
            self.event_id, self.data, self.original = None, {}, []
            return ReadError("text", "expected a 'Name: value' line", self.source, f"line {number}", line)
        return None


def read_text(
    stream: IO[bytes],
    source: str,
    host: str | None = None,
    *,
    start_offset: int | None = 0,
    start_line: int = 1,
    codec: str | None = None,
) -> Iterator[RawEvent | ReadError]:
    """Yield one RawEvent per rendered-text block in ``stream`` (ReadError for bad blocks).

    ``start_offset``/``start_line``: where ``stream`` starts in its file (a block's ``end_offset``/
    ``end_line``), with ``codec`` the file's BOM-less codec when that is not the start. A
    block ended by a blank line or the next title carries ``end_offset``: the start of that
    line; the last block, ended by the end of input, does not (it may still be growing)."""
    block = _Blocks(source, host)
    for number, (line, at) in enumerate(_lines(stream, start_offset, codec), start_line):
        err: ReadError | None = None
        if not line.strip():
            done = block.finish(at, number)
            block.skipping = False
        elif (title := _title(line)) is not None:
            done = block.finish(at, number)
            err = block.title(title, number, line)
        elif block.skipping:
            continue
        else:
            done = None
            err = block.value(number, line)
        if done is not None:
            yield done
        if err is not None:
            yield err
    done = block.finish()
    if done is not None:
        yield done

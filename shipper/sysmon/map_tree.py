"""The document being built and the state of one event's mapping (the native core's
``map/tree.rs``), with the value helpers every mapping module shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from shipper.raw import RawEvent
from shipper.sysmon.dns import parse_ip
from shipper.sysmon.normalise import parse_bool, parse_int, to_text

MAX_LONG: Final = (1 << 63) - 1
MAX_PORT: Final = 65535

Doc = dict[str, Any]
Path = tuple[str, ...]


def dotted(path: str) -> Path:
    return tuple(path.split("."))


def put(doc: Doc, path: Path, value: Any) -> None:
    d = doc
    for key in path[:-1]:
        nxt = d.get(key)
        if nxt is None:
            nxt = d[key] = {}
        d = nxt
    d[path[-1]] = value


def has(doc: Doc, path: Path) -> bool:
    d: Any = doc
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return False
        d = d[key]
    return True


def sub(d: Doc, key: str) -> Doc:
    nxt = d.get(key)
    if nxt is None:
        nxt = d[key] = {}
    return nxt


def add_unique(items: list[str], value: str) -> None:
    if value not in items:
        items.append(value)


def basename(path: str) -> str:
    return path.rpartition("\\")[2] or path


def int_or_none(value: object) -> int | None:
    if value.__class__ is int:
        return value if value >= 0 else None
    return parse_int(value) if value is not None else None


def text(value: object) -> str:
    """:func:`to_text`, with the common case (an ASCII ``str``) inline."""
    return value if value.__class__ is str and value.isascii() else to_text(value)


def raw_data(raw: RawEvent) -> Mapping[str, object]:
    data = raw.event_data
    return data if isinstance(data, Mapping) else {}


class State:
    """Per-event scratch: the EventData still unconsumed, errors, related.* lists."""

    __slots__ = ("data", "errors", "hashes", "hosts", "ips", "users")

    def __init__(self, data: dict[str, str]) -> None:
        self.data = data
        self.errors: list[str] = []
        self.ips: list[str] = []
        self.users: list[str] = []
        self.hashes: list[str] = []
        self.hosts: list[str] = []

    def fail(self, name: str, value: str, what: str) -> None:
        self.errors.append(f"{name}: cannot convert {value!r} to {what}")

    def take_int(self, name: str, top: int) -> int | None:
        value = self.data.get(name)
        if value is None:
            return None
        n = parse_int(value)
        if n is None or n > top:
            self.fail(name, value, "an integer" if top == MAX_LONG else f"an integer 0..{top}")
            return None
        del self.data[name]
        return n

    def take_bool(self, name: str) -> bool | None:
        value = self.data.get(name)
        if value is None:
            return None
        b = parse_bool(value)
        if b is None:
            # Sysmon adds detail after the word for some outcomes (event 28: ``false - shredded
            # file with pattern 0x00``): the boolean is the first word; the detail stays raw.
            head, sep, _ = value.partition(" - ")
            b = parse_bool(head.strip().lower()) if sep else None
            if b is None:
                self.fail(name, value, "a boolean")
            return b
        del self.data[name]
        return b

    def take_ip(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        ip = parse_ip(value)
        if ip is None:
            self.fail(name, value, "an IP address")
            return None
        del self.data[name]
        return ip

"""The document ``_id`` (the native core's ``map/id.rs``); public as
``shipper.sysmon.ecs.document_id``."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping

import orjson

from shipper.raw import SYSMON_CHANNEL, SYSMON_PROVIDER, RawEvent
from shipper.sysmon.map_tree import raw_data, text
from shipper.sysmon.normalise import normalise_event_data, parse_int, parse_utc_time, to_text


def document_id(raw: RawEvent) -> str:
    """A stable ``_id``: base64url (no padding) of a 160-bit BLAKE2b over (computer lower-cased,
    channel, provider, record id, event id, UtcTime), all normalised first. When the record id
    or the computer is missing (rendered text), a digest of the normalised EventData is added so
    that different events never collide."""
    try:
        data = normalise_event_data(raw_data(raw))
    except Exception:
        return _digest(repr(raw).encode("utf-8", "backslashreplace"))
    return document_id_of(raw, data)


def document_id_of(raw: RawEvent, data: Mapping[str, str]) -> str:
    """:func:`document_id` from the already normalised EventData ``data`` (left unchanged)."""
    try:
        utc = data.get("UtcTime", "")
        computer = text(raw.computer).lower()
        provider = text(raw.provider)
        channel = text(raw.channel) or (SYSMON_CHANNEL if provider == SYSMON_PROVIDER else "")
        record_id = parse_int(raw.record_id) if raw.record_id is not None else None
        parts = [
            computer,
            channel,
            provider,
            "" if record_id is None else str(record_id),
            to_text(raw.event_id),
            parse_utc_time(utc) or utc,
        ]
        if record_id is None or not computer:
            parts.append(orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode())
        material = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    except Exception:
        material = repr(raw).encode("utf-8", "backslashreplace")
    return _digest(material)


def _digest(material: bytes) -> str:
    digest = hashlib.blake2b(material, digest_size=20).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

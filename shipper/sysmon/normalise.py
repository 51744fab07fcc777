"""Normalisation of raw EventData values, so that every input form converges on one rendering.

Readers hand over the source's own strings (and some hand over JSON numbers or booleans despite
the ``dict[str, str]`` annotation); everything here accepts ``object`` and never raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Final

NULL_GUID: Final = "{00000000-0000-0000-0000-000000000000}"

#: EventData fields that hold booleans (Sysmon writes ``true``/``false``; parsers vary in case).
BOOL_FIELDS: Final = frozenset(
    {"Initiated", "SourceIsIpv6", "DestinationIsIpv6", "Archived", "IsExecutable", "Signed"}
)
#: EventData fields that hold hexadecimal integers rendered as ``0x…`` lower-case, no leading zeros.
#: (``StartAddress`` is left as Sysmon writes it: rules match on its upper-case tail.)
HEX_FIELDS: Final = frozenset({"LogonId", "GrantedAccess"})

_HEX_DIGITS: Final = "0123456789abcdefABCDEF"
_HEX_RE: Final = re.compile(r"0[xX]([0-9A-Fa-f]+)")
_DEC_RE: Final = re.compile(r"[+]?[0-9]+")
# yyyy-MM-dd HH:mm:ss(.fraction) with an optional trailing Z; ASCII digits only.
_UTC_RE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[ T]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]+))?Z?"
)
_ISO_RE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[ T]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]+))?"
    r"(Z|z|[+-][0-9]{2}:?[0-9]{2})?"
)
_BOOL_TEXT: Final = {"true": "true", "false": "false"}
_SPECIAL_NAMES: Final = BOOL_FIELDS | HEX_FIELDS
_CACHE_LIMIT: Final = 4096
_BLANKS: Final = " \t\r\n\f\v"
_ZEROS: Final = "000000"


def _valid_unicode(value: str) -> str:
    """``value`` with lone surrogates (from broken UTF-16 in a damaged record) replaced by
    U+FFFD, so that every document serialises as JSON."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def to_text(value: object) -> str:
    """The string form of a raw value: booleans as ``true``/``false``, None as empty."""
    if isinstance(value, str):
        return value if value.isascii() else _valid_unicode(value)
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return _valid_unicode(str(value))


def normalise_guid(value: str) -> str | None:
    """``{UPPER-CASE-GUID}`` for a GUID with or without braces, else None."""
    s = value
    if len(s) == 38 and s[0] == "{" and s[-1] == "}":
        s = s[1:-1]
    elif len(s) != 36:
        s = s.strip()
        if len(s) == 38 and s[0] == "{" and s[-1] == "}":
            s = s[1:-1]
    if (
        len(s) != 36
        or s[8] != "-"
        or s[13] != "-"
        or s[18] != "-"
        or s[23] != "-"
        # all 32 remaining characters hex digits: stripping the hex set leaves nothing
        or (s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]).strip(_HEX_DIGITS)
    ):
        return None
    return "{" + s.upper() + "}"


def normalise_bool(value: str) -> str | None:
    """``true``/``false`` whatever the case, else None."""
    return _BOOL_TEXT.get(value.strip().lower())


def normalise_hex(value: str) -> str | None:
    """``0x`` + lower-case hex without leading zeros (``0x0`` for zero), else None."""
    m = _HEX_RE.fullmatch(value.strip())
    if m is None:
        return None
    return "0x" + (m.group(1).lstrip("0").lower() or "0")


def parse_int(value: object) -> int | None:
    """A non-negative decimal integer, else None (no floats, no hex, no unicode digits)."""
    if value.__class__ is int:
        return value if value >= 0 else None
    if value.__class__ is str:
        text = value
        if text.isascii() and text.isdigit():
            return int(text)
        s = text.strip()
        return int(s) if _DEC_RE.fullmatch(s) is not None else None
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if value >= 0 else None


def parse_bool(value: str) -> bool | None:
    """True/False for a normalised boolean string, else None."""
    if value == "true":
        return True
    if value == "false":
        return False
    return None


_PLAIN: Final = 0
_BOOL: Final = 1
_HEX: Final = 2
_GUID: Final = 3
# Field name → which normalisation it needs; names are few, but bounded against hostile input.
_KIND_CACHE: dict[str, int] = {}
# A GUID already in its canonical rendering (the common case): returned as it is.
_CANONICAL_GUID_RE: Final = re.compile(r"\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\}")


def _kind(name: str) -> int:
    """How a field's value is normalised: booleans, hex, and any ``…Guid`` (any case)."""
    if name in BOOL_FIELDS:
        return _BOOL
    if name in HEX_FIELDS:
        return _HEX
    if name[-4:].lower() == "guid":
        return _GUID
    return _PLAIN


def _is_special(name: str) -> bool:
    """Whether a field needs value normalisation: booleans, hex, and any ``…Guid`` (any case)."""
    return _kind(name) != _PLAIN


def _normalise_special(name: str, s: str) -> str | None:
    """Normalise a value of a boolean, hex or GUID field (None: drop it)."""
    kind = _kind(name)
    if kind == _BOOL:
        return normalise_bool(s) or s
    if kind == _HEX:
        return normalise_hex(s) or s
    if kind == _GUID:
        if _CANONICAL_GUID_RE.fullmatch(s) is not None:
            return None if s == NULL_GUID else s
        guid = normalise_guid(s)
        if guid == NULL_GUID:
            return None
        return guid or s
    return s


# GUID value as written → its rendering ("" for the null GUID, which is dropped). GUIDs repeat
# a lot (a process's events all carry its ProcessGuid); bounded: cleared when full.
_GUID_CACHE: dict[str, str] = {}
_GUID_CACHE_LIMIT: Final = 16384


def _guid_rendering(s: str, canonical: Callable[[str], re.Match[str] | None]) -> str:
    if canonical(s) is not None:
        return "" if s == NULL_GUID else s
    guid = normalise_guid(s)
    if guid == NULL_GUID:
        return ""
    return guid or s


def normalise_event_data(data: Mapping[str, object]) -> dict[str, str]:
    """A new dict of the EventData fields worth keeping, each in its one canonical rendering.

    Drops empty, ``-`` and null-GUID values; upper-cases GUIDs inside braces; lower-cases
    booleans; renders hex integers as ``0x…``. Values that do not look like their field's kind
    are kept unchanged (the mapper then reports them).
    """
    out: dict[str, str] = {}
    kinds = _KIND_CACHE
    guids = _GUID_CACHE
    canonical_guid = _CANONICAL_GUID_RE.fullmatch
    for name, value in data.items():
        if name.__class__ is not str:
            name = to_text(name)
        s = value if value.__class__ is str and value.isascii() else to_text(value)
        if not s or s == "-":
            continue
        if s[0] in _BLANKS or s[-1] in _BLANKS:
            stripped = s.strip()
            if not stripped or stripped == "-":
                continue
        kind = kinds.get(name)
        if kind is None:
            kind = _kind(name)
            if len(kinds) < _CACHE_LIMIT:
                kinds[name] = kind
        if kind:
            if kind == _GUID:
                known = guids.get(s)
                if known is None:
                    known = _guid_rendering(s, canonical_guid)
                    if len(guids) >= _GUID_CACHE_LIMIT:
                        guids.clear()
                    guids[s] = known
                if not known:
                    continue
                s = known
            elif kind == _BOOL:
                s = normalise_bool(s) or s
            else:
                s = normalise_hex(s) or s
        out[name] = s
    return out


# Calendar date (``yyyy-MM-dd``) → whether it exists; bounded (cleared when full).
_DATE_OK: dict[str, bool] = {}


def _valid_date(date: str) -> bool:
    """Whether ``yyyy-MM-dd`` (ASCII digits in place) is a real calendar date."""
    ok = _DATE_OK.get(date)
    if ok is None:
        try:
            datetime(int(date[0:4]), int(date[5:7]), int(date[8:10]))
            ok = True
        except ValueError:
            ok = False
        if len(_DATE_OK) >= _CACHE_LIMIT:
            _DATE_OK.clear()
        _DATE_OK[date] = ok
    return ok


def _fixed_layout(value: str) -> bool:
    """Whether ``value`` starts ``yyyy-MM-dd?HH:mm:ss`` with ASCII digits in place (any
    separator at index 10) and that date and time exist."""
    return (
        value[4] == "-"
        and value[7] == "-"
        and value[13] == ":"
        and value[16] == ":"
        and value.isascii()
        and (value[0:4] + value[5:7] + value[8:10] + value[11:13] + value[14:16] + value[17:19]).isdigit()
        and value[11:13] < "24"
        and value[14:16] < "60"
        and value[17:19] < "60"
        and _valid_date(value[0:10])
    )


def _valid_datetime(y: str, mo: str, d: str, h: str, mi: str, s: str) -> datetime | None:
    try:
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s))
    except ValueError:
        return None


def parse_utc_time(value: str) -> str | None:
    """Sysmon ``UtcTime`` (``yyyy-MM-dd HH:mm:ss.SSS``) → ``yyyy-MM-ddTHH:mm:ss.SSSZ``, else None."""
    if (
        len(value) == 23
        and value[10] == " "
        and value[19] == "."
        and value[20:].isdigit()
        and _fixed_layout(value)
    ):
        return value[0:10] + "T" + value[11:23] + "Z"
    m = _UTC_RE.fullmatch(value.strip())
    if m is None:
        return None
    y, mo, d, h, mi, s, frac = m.groups()
    if _valid_datetime(y, mo, d, h, mi, s) is None:
        return None
    ms = ((frac or "") + "000")[:3]
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}.{ms}Z"


def parse_iso_time(value: str) -> str | None:
    """An ISO-8601 time → UTC ``yyyy-MM-ddTHH:mm:ss.ffffffZ`` (µs: truncated or zero-padded).

    A time without zone designator is taken as UTC (readers give UTC). Returns None when the
    value is not a valid time.
    """
    size = len(value)
    if size > 21 and value[-1] == "Z" and value[10] == "T" and value[19] == ".":
        frac = value[20:-1]
        if frac.isascii() and frac.isdigit() and _fixed_layout(value):
            return value[0:19] + "." + (frac + _ZEROS)[:6] + "Z"
    m = _ISO_RE.fullmatch(value.strip())
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, zone = m.groups()
    dt = _valid_datetime(y, mo, d, h, mi, s)
    if dt is None:
        return None
    us = ((frac or "") + _ZEROS)[:6]
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if offset:
            try:
                dt = dt - sign * offset
            except OverflowError:
                return None
            return (
                f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T"
                f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}.{us}Z"
            )
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}.{us}Z"


def iso_to_millis(value: str) -> str:
    """``…ss.ffffffZ`` (as returned by :func:`parse_iso_time`) → ``…ss.SSSZ``."""
    return value[:23] + "Z"

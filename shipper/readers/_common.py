"""Small helpers shared by the readers: text decoding, value and System-field conversion."""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

import orjson

BLOCK_SIZE = 1 << 16

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def sniff_encoding(head: bytes) -> str:
    """The text encoding a byte head announces by its BOM (UTF-8 when there is none).

    A BOM-less UTF-16 head (``<\\0E\\0``…, as some tools write) is recognised too."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    if len(head) >= 2 and head[0] != 0 and head[1] == 0:
        return "utf-16-le"
    if len(head) >= 2 and head[0] == 0 and head[1] != 0:
        return "utf-16-be"
    return "utf-8"


def peekable(stream: IO[bytes]) -> io.BufferedReader:
    """``stream`` as a buffered reader that supports ``peek``."""
    if isinstance(stream, io.BufferedReader):
        return stream
    return io.BufferedReader(stream)  # type: ignore[arg-type]


def text_blocks(stream: IO[bytes], block_size: int = BLOCK_SIZE) -> Iterator[str]:
    """Decode ``stream`` block by block (BOM-sniffed; undecodable bytes become U+FFFD)."""
    buffered = peekable(stream)
    head = buffered.peek(4)[:4]
    decoder = codecs.getincrementaldecoder(sniff_encoding(head))(errors="replace")
    while True:
        block = buffered.read(block_size)
        if not block:
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail
            return
        text = decoder.decode(block)
        if text:
            yield text


def text_value(value: Any) -> str | None:
    """The string a JSON value stands for, as Windows renders it; None for JSON null."""
    if isinstance(value, str):
        return value
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict) and "#text" in value:
        return text_value(value["#text"])
    return orjson.dumps(value).decode()


def to_int(value: Any) -> int | None:
    """An int from an int or a decimal/``0x`` hex string; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if text[:2] in ("0x", "0X"):
                return int(text, 16)
            return int(text)
        except ValueError:
            return None
    return None


def keywords_hex(value: Any) -> str | None:
    """System Keywords as the hex string Windows writes (``0x8000000000000000``).

    NXLog exports the 64-bit mask as a signed integer; it is folded back into unsigned."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return f"0x{value & 0xFFFFFFFFFFFFFFFF:x}"
    if isinstance(value, str) and value:
        number = to_int(value)
        if number is not None and not value.strip().startswith(("0x", "0X")):
            return f"0x{number & 0xFFFFFFFFFFFFFFFF:x}"
        return value
    return None


def guid_braced(value: Any) -> str | None:
    """A GUID in the braced upper-case form (``{5770385F-...}``) whatever form the source used."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if not text.startswith("{"):
        text = "{" + text + "}"
    return text.upper()


def utc_iso(value: Any) -> str | None:
    """An ISO-8601 UTC string ending in ``Z`` from a zoned timestamp; None when the value
    carries no zone (local time of an unknown zone is never guessed) or does not parse.

    Sub-second digits are kept as the source wrote them (Windows writes seven)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) < 19 or text[4] != "-" or text[7] != "-":
        return None
    if text[10] == " ":
        text = text[:10] + "T" + text[11:]
    if text.endswith(("Z", "z")):
        body, offset = text[:-1], "+00:00"
    else:
        sign_at = max(text.rfind("+", 19), text.rfind("-", 19))
        if sign_at < 0:
            return None
        body, offset = text[:sign_at], text[sign_at:]
    base, _, fraction = body.partition(".")
    if fraction and not fraction.isdigit():
        return None
    try:
        moment = datetime.fromisoformat(base + offset)
    except ValueError:
        return None
    shift = moment.utcoffset()
    if shift is None:  # pragma: no cover - an offset was always given above
        return None
    out = (moment - shift).replace(tzinfo=None).isoformat()
    return f"{out}.{fraction}Z" if fraction else f"{out}Z"

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


#: BOM-announcing decoder → (the same encoding without a BOM, BOM length in bytes).
_PLAIN: dict[str, tuple[str, int]] = {
    "utf-8-sig": ("utf-8", 3),
    "utf-32": ("utf-32", 4),
    "utf-16": ("utf-16", 2),
}


def decoding(head: bytes) -> tuple[str, str, int]:
    """``(decoder, plain, bom)`` for a file whose first bytes are ``head``: the codec that
    decodes it from its start, the BOM-less codec of the same encoding (to decode from a
    position after the head, and to count bytes), and the length of the BOM."""
    name = sniff_encoding(head)
    if name not in _PLAIN:
        return name, name, 0
    family, bom = _PLAIN[name]
    if family == "utf-8":
        return name, "utf-8", bom
    little = head.startswith(codecs.BOM_UTF32_LE if bom == 4 else codecs.BOM_UTF16_LE)
    return name, f"{family}-{'le' if little else 'be'}", bom


class ByteCounter:
    """Byte offsets in the source of positions in its decoded text, advanced over the text
    consumed in order. Exact for valid input; once undecodable bytes were replaced (U+FFFD)
    the offset is unknown (None) for the rest of the read."""

    __slots__ = ("codec", "offset", "width")

    def __init__(self, offset: int | None, codec: str) -> None:
        self.offset: int | None = offset
        self.codec = codec
        self.width = 4 if "32" in codec else 2 if "16" in codec else 1

    def advance(self, text: str) -> int | None:
        if self.offset is None or not text:
            return self.offset
        if text.isascii():
            self.offset += len(text) * self.width
        elif "\ufffd" in text:
            self.offset = None
        else:
            self.offset += len(text.encode(self.codec, "surrogatepass"))
        return self.offset


def decoded(
    stream: IO[bytes],
    offset: int | None = 0,
    codec: str | None = None,
    tap: list[bytes] | None = None,
    block_size: int = BLOCK_SIZE,
) -> tuple[Iterator[str], ByteCounter]:
    """The decoded blocks of ``stream`` and a byte counter for them. ``offset`` is where the
    stream is positioned in its file (None: not a file, such as standard input — no offsets);
    ``codec`` (the BOM-less codec of the file, see :func:`decoding`) must be given when that
    is not the file's start. ``tap``: each block of bytes is appended to it as it is read."""
    buffered = peekable(stream)
    if codec is None:
        name, plain, bom = decoding(buffered.peek(4)[:4])
        counter = ByteCounter(None if offset is None else offset + bom, plain)
        return text_blocks(buffered, block_size, name, tap), counter
    return text_blocks(buffered, block_size, codec, tap), ByteCounter(offset, codec)


def peekable(stream: IO[bytes]) -> io.BufferedReader:
    """``stream`` as a buffered reader that supports ``peek``."""
    if isinstance(stream, io.BufferedReader):
        return stream
    return io.BufferedReader(stream)  # type: ignore[arg-type]


def text_blocks(
    stream: IO[bytes], block_size: int = BLOCK_SIZE, codec: str | None = None, tap: list[bytes] | None = None
) -> Iterator[str]:
    """Decode ``stream`` block by block (BOM-sniffed unless ``codec`` is given; undecodable
    bytes become U+FFFD), each block of bytes also appended to ``tap`` when given."""
    buffered = peekable(stream)
    if codec is None:
        codec = sniff_encoding(buffered.peek(4)[:4])
    decoder = codecs.getincrementaldecoder(codec)(errors="replace")
    while True:
        block = buffered.read(block_size)
        if tap is not None and block:
            tap.append(block)
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
    try:
        out = (moment - shift).replace(tzinfo=None).isoformat()
    except OverflowError:  # before year 1 or after 9999 in UTC: no time to give
        return None
    return f"{out}.{fraction}Z" if fraction else f"{out}Z"

"""Detection items on fields whose values change on the way into our documents.

Sysmon writes ``Hashes`` as ``SHA256=…,IMPHASH=…``, ``User`` as ``DOMAIN\\name``, ``Initiated`` as
``true``; our documents hold ``process.hash.sha256``, ``user.domain`` + ``user.name``,
``network.direction: egress``. A Sigma item on such a field is rewritten into items on the
fields that hold the value, with the value translated the way the mapper translates it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from sigma.conditions import ConditionAND, ConditionOR
from sigma.rule import SigmaDetection, SigmaDetectionItem
from sigma.types import SigmaBool, SigmaCasedString, SigmaString, SigmaType, SpecialChars

from detectors.sigma.errors import CannotFire
from shipper.sysmon.dns import status_name

_HASH_ALGOS = {"md5": "hash.md5", "sha1": "hash.sha1", "sha256": "hash.sha256", "imphash": "pe.imphash"}
_HASH_BY_LENGTH = {32: ("md5", "imphash"), 40: ("sha1",), 64: ("sha256",)}
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_DWORD = re.compile(r"^DWORD \(0x([0-9A-Fa-f]{1,8})\)$")
_QWORD = re.compile(r"^QWORD \(0x([0-9A-Fa-f]{1,8})-0x([0-9A-Fa-f]{1,8})\)$")


def _item(field: str, values: Sequence[SigmaType], like: SigmaDetectionItem) -> SigmaDetectionItem:
    new = SigmaDetectionItem(field, [], list(values), value_linking=like.value_linking, auto_modifiers=False)
    new.source = like.source
    return new


def _either(items: list[SigmaDetectionItem | SigmaDetection], linking: Any) -> SigmaDetection:
    return SigmaDetection(items, item_linking=linking)


def _plain(value: SigmaType, item: SigmaDetectionItem) -> str | None:
    """The literal text of a string value; None when it holds wildcards."""
    if isinstance(value, SigmaString) and not value.contains_special():
        return "".join(p for p in value.s if isinstance(p, str))
    if isinstance(value, SigmaBool):
        return "true" if value.boolean else "false"
    return None


def _stripped(value: SigmaType) -> str | None:
    """The literal text of a string value with wildcards at its ends removed (``|contains``,
    ``|startswith``, ``|endswith``); None when a wildcard is inside."""
    if not isinstance(value, SigmaString):
        return None
    parts = list(value.s)
    while parts and isinstance(parts[0], SpecialChars):
        parts.pop(0)
    while parts and isinstance(parts[-1], SpecialChars):
        parts.pop()
    if any(not isinstance(p, str) for p in parts):
        return None
    return "".join(p for p in parts if isinstance(p, str))


# ------------------------------------------------------------------------------------ hashes
def hashes(item: SigmaDetectionItem, root: str) -> SigmaDetection:
    """``Hashes|contains: 'SHA256=AB…'`` → ``<root>.hash.sha256: ab…``; a bare hash matches
    every algorithm of its length. Values are lower-case, as the mapper writes them."""
    per_value: list[SigmaDetectionItem | SigmaDetection] = []
    for value in item.value:
        text = _stripped(value)
        if text is None:
            raise CannotFire(f"{item.field}: a wildcard inside a hash value ({value})")
        pieces: list[SigmaDetectionItem | SigmaDetection] = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            algo, sep, digest = part.partition("=")
            if not sep:
                algo, digest = "", part
            digest = digest.lower()
            if not _HEX.match(digest):
                raise CannotFire(f"{item.field}: {part!r} is not a hash")
            algos = (algo.lower(),) if algo else _HASH_BY_LENGTH.get(len(digest), ())
            fields = [f"{root}.{_HASH_ALGOS[a]}" for a in algos if a in _HASH_ALGOS]
            if not fields:
                raise CannotFire(f"{item.field}: no field holds {algo or 'a hash of that length'}")
            alternatives = [_item(f, [SigmaString(digest)], item) for f in fields]
            pieces.append(
                alternatives[0] if len(alternatives) == 1 else _either(list(alternatives), ConditionOR)
            )
        if pieces:
            per_value.append(pieces[0] if len(pieces) == 1 else _either(pieces, ConditionAND))
    linking = ConditionAND if item.value_linking is ConditionAND else ConditionOR
    return _either(per_value, linking)


# -------------------------------------------------------------------------------------- user
def _split_user(value: SigmaString) -> tuple[SigmaString, SigmaString] | None:
    """``DOMAIN\\name`` (with wildcards at either end) → the domain and the name patterns."""
    parts = list(value.s)
    for i, p in enumerate(parts):
        if isinstance(p, str) and "\\" in p:
            left, _, right = p.partition("\\")
            domain, name = SigmaString(), SigmaString()
            domain.s = [*parts[:i], left] if left else parts[:i]
            name.s = [right, *parts[i + 1 :]] if right else parts[i + 1 :]
            return domain, name
    return None


def user(item: SigmaDetectionItem, root: str) -> SigmaDetection:
    """``User: 'NT AUTHORITY\\SYSTEM'`` → ``user.domain`` and ``user.name``; a value without a
    backslash matches either part (``User|contains: 'AUTHORI'``)."""
    per_value: list[SigmaDetectionItem | SigmaDetection] = []
    for value in item.value:
        if not isinstance(value, SigmaString):
            raise CannotFire(f"{item.field}: {type(value).__name__} values are not supported")
        split = _split_user(value)
        if split is None:
            per_value.append(
                _either(
                    [_item(f"{root}.domain", [value], item), _item(f"{root}.name", [value], item)],
                    ConditionOR,
                )
            )
            continue
        domain, name = split
        both: list[SigmaDetectionItem | SigmaDetection] = []
        for field, part in ((f"{root}.domain", domain), (f"{root}.name", name)):
            if part.s and not all(isinstance(p, SpecialChars) for p in part.s):
                both.append(_item(field, [part], item))
        per_value.append(both[0] if len(both) == 1 else _either(both, ConditionAND))
    linking = ConditionAND if item.value_linking is ConditionAND else ConditionOR
    return _either(per_value, linking)


# ------------------------------------------------------------------------- translated values
def _translated(
    item: SigmaDetectionItem, field: str, translate: Callable[[str], str | None]
) -> SigmaDetectionItem:
    out: list[SigmaType] = []
    for value in item.value:
        text = _plain(value, item)
        new = translate(text) if text is not None else None
        if new is None:
            raise CannotFire(f"{item.field}: {value} is not a value our documents can hold in {field}")
        out.append(SigmaCasedString(new) if isinstance(value, SigmaCasedString) else SigmaString(new))
    return _item(field, out, item)


def _boolean(true: str, false: str) -> Callable[[str], str | None]:
    def translate(text: str) -> str | None:
        low = text.strip().lower()
        return true if low == "true" else false if low == "false" else None

    return translate


def _details(text: str) -> str | None:
    m = _DWORD.match(text)
    if m:
        return str(int(m.group(1), 16))
    m = _QWORD.match(text)
    if m:
        return str((int(m.group(1), 16) << 32) | int(m.group(2), 16))
    return None


def details(item: SigmaDetectionItem, field: str) -> SigmaDetectionItem:
    """``Details``: registry strings as they are; ``DWORD (0x…)`` and ``QWORD (…)`` become the
    decimal the mapper writes, also when the rule anchors them with ``|endswith``."""
    out: list[SigmaType] = []
    for value in item.value:
        text = _stripped(value)
        if text is not None and ("DWORD (" in text or "QWORD (" in text):
            number = _details(text)
            if number is None:
                raise CannotFire(f"Details: {value} matches a part of a DWORD/QWORD rendering")
            out.append(SigmaString(number))
        else:
            out.append(value)
    return _item(field, out, item)


def translate(item: SigmaDetectionItem, field: str) -> SigmaDetectionItem | SigmaDetection:
    """The special field ``item.field`` → items on ``field`` (or its root) of our documents."""
    name = item.field
    if name in ("Hashes", "Hash"):
        return hashes(item, field)
    if name in ("User", "ParentUser"):
        return user(item, field)
    if name == "Initiated":
        return _translated(item, field, _boolean("egress", "ingress"))
    if name in ("SourceIsIpv6", "DestinationIsIpv6"):
        return _translated(item, field, _boolean("ipv6", "ipv4"))
    if name == "QueryStatus":
        return _translated(item, field, lambda t: status_name(t.strip()))
    if name == "Details":
        return details(item, field)
    raise AssertionError(f"no translation for {name}")

"""Sysmon ``Hashes`` strings: ``SHA1=…,MD5=…,SHA256=…,IMPHASH=…``."""

from __future__ import annotations

from typing import Final

#: Algorithms with an ECS ``*.hash.<algo>`` field; ``imphash`` goes to ``*.pe.imphash``.
ECS_HASH_ALGOS: Final = frozenset({"md5", "sha1", "sha256", "sha384", "sha512"})
IMPHASH: Final = "imphash"


def parse_hashes(value: str) -> list[tuple[str, str]]:
    """``[(algo, value)]`` with both lower-cased, in order; skips malformed, empty and all-zero
    entries (Sysmon writes ``IMPHASH=000…`` for files that are not PE images)."""
    out: list[tuple[str, str]] = []
    for part in value.split(","):
        algo, sep, digest = part.partition("=")
        if not sep:
            continue
        algo = algo.strip().lower()
        digest = digest.strip().lower()
        if not algo or not digest or not digest.strip("0"):
            continue
        out.append((algo, digest))
    return out

"""``Hashes`` / ``Hash`` → ``<target>.hash.*``, ``pe.imphash`` and ``related.hash`` (the native
core's ``map/hashes.rs``; the string itself is parsed by :mod:`shipper.sysmon.hashes`)."""

from __future__ import annotations

from typing import Final

from shipper.sysmon.hashes import ECS_HASH_ALGOS, IMPHASH, parse_hashes
from shipper.sysmon.map_tree import Doc, State, add_unique, sub

HASH_FIELDS: Final = ("Hashes", "Hash")


def map_hashes(st: State, doc: Doc, target: str) -> None:
    for field in HASH_FIELDS:
        value = st.data.get(field)
        if value is None:
            continue
        pairs = parse_hashes(value)
        if not pairs:
            continue  # nothing usable (e.g. "Unknown"): the raw value stays
        root = sub(doc, target)
        complete = True
        for algo, digest in pairs:
            if algo == IMPHASH:
                sub(root, "pe")["imphash"] = digest
            elif algo in ECS_HASH_ALGOS:
                sub(root, "hash")[algo] = digest
            else:
                complete = False  # no ECS field for it: keep the raw string as well
            add_unique(st.hashes, digest)
        if complete:
            del st.data[field]

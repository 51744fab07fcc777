"""What a run reads: files, folders, globs and standard input, expanded to a list of sources."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from shipper.errors import InputError

STDIN = "-"
#: File names inside input folders that are never event logs.
_IGNORED_SUFFIXES = (".md", ".tsv", ".zip", ".gz", ".json.sig", ".sha256")


def _ignored(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(_IGNORED_SUFFIXES) or name.startswith("LICENSE")


def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Files, folders (recursively, sorted), globs and ``-`` → a list of sources, in order,
    each once. A name that matches nothing is an error naming it."""
    out: list[str] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        key = path if path == STDIN else os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            out.append(path)

    for item in inputs:
        if item == STDIN:
            add(STDIN)
            continue
        p = Path(item)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    if not _ignored(name):
                        add(os.path.join(root, name))
        elif p.exists():
            add(str(p))
        else:
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise InputError("no such file, folder or glob match", source=item)
            for m in matches:
                for sub in expand_inputs([m]) if Path(m).is_dir() else [m]:
                    add(sub)
    return out

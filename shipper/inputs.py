"""What a run reads: files, folders, globs and standard input, expanded to a list of sources."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Generic, TypeVar

from shipper.errors import InputError

STDIN = "-"
T = TypeVar("T")
#: File names inside input folders that are never event logs.
_IGNORED_SUFFIXES = (".md", ".tsv", ".zip", ".gz", ".json.sig", ".sha256")


def _ignored(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(_IGNORED_SUFFIXES) or name.startswith("LICENSE")


def expand_inputs(inputs: Iterable[str], named: dict[str, str] | None = None) -> list[str]:
    """Files, folders (recursively, sorted), globs and ``-`` → a list of sources, in order,
    each once. A name that matches nothing is an error naming it. ``named``, if given, gets
    each source's absolute path → the input that named it first."""
    out: list[str] = []
    seen: set[str] = set()
    item = ""

    def add(path: str) -> None:
        key = path if path == STDIN else os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            out.append(path)
            if named is not None:
                named[key] = item

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


class SourceLabels(Generic[T]):
    """Which configured input's labels a source gets: the sources an input names (its files,
    glob matches, and anything found later under its folder, as ``watch`` finds them). The
    first input that names a source wins, as in :func:`expand_inputs`."""

    def __init__(self, inputs: Iterable[str], labelled: Mapping[str, T], named: Mapping[str, str]) -> None:
        """``named``: what :func:`expand_inputs` found for ``inputs`` (source → the input that
        named it first), so that nothing is expanded twice."""
        self._exact: dict[str, T] = {}
        self._folders: list[tuple[str, T]] = []
        by_path = {os.path.abspath(k): v for k, v in labelled.items() if k != STDIN}

        def labels_of(item: str) -> T | None:
            if item == STDIN:
                return None
            return labelled.get(item) if item in labelled else by_path.get(os.path.abspath(item))

        for item in inputs:
            extra = labels_of(item)
            if extra is not None and Path(item).is_dir():  # everything under it, found now or later
                self._folders.append((os.path.join(os.path.abspath(item), ""), extra))
        for path, item in named.items():
            found = labels_of(item)
            if found is not None:
                self._exact.setdefault(path, found)

    def __bool__(self) -> bool:
        return bool(self._exact or self._folders)

    def get(self, source: str) -> T | None:
        if source == STDIN:
            return None
        path = os.path.abspath(source)
        found = self._exact.get(path)
        if found is not None:
            return found
        for folder, extra in self._folders:
            if path.startswith(folder):
                return extra
        return None

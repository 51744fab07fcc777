"""Access to the read-only shared data (``../shared`` next to the repository, or
``$SYSMON_SHARED_DIR``) and parsers for its manifests.

``shared_dir()`` fails the calling test when the folder is missing and ``CI=true``, and skips it
otherwise.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The shared folder (containing ``data/sysmon``), or fail/skip the test per the CI rule."""
    root = Path(os.environ.get("SYSMON_SHARED_DIR") or REPO / ".." / "shared").resolve()
    if (root / "data" / "sysmon").is_dir():
        return root
    message = f"shared data not found at {root} (set SYSMON_SHARED_DIR)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def sysmon_data() -> Path:
    return shared_dir() / "data" / "sysmon"


def parse_counts(text: str) -> dict[int, int]:
    """``1=8,2=1,…`` → ``{1: 8, 2: 1, …}`` (empty text → empty dict)."""
    counts: dict[int, int] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        key, _, value = part.partition("=")
        counts[int(key)] = int(value)
    return counts


@dataclass(frozen=True)
class EvtxEntry:
    path: Path
    sha256: str
    sysmon_events: int
    total_events: int
    sysmon_eid_counts: dict[int, int]
    other_providers: str


@dataclass(frozen=True)
class ZipEntry:
    path: Path
    sysmon_eid_counts: dict[int, int]


def _rows(manifest: Path) -> list[dict[str, str]]:
    with open(manifest, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def evtx_manifest() -> list[EvtxEntry]:
    """``evtx-attack-samples/MANIFEST.tsv``, one entry per file."""
    folder = sysmon_data() / "evtx-attack-samples"
    return [
        EvtxEntry(
            path=folder / row["path"],
            sha256=row["sha256"],
            sysmon_events=int(row["sysmon_events"]),
            total_events=int(row["total_events"]),
            sysmon_eid_counts=parse_counts(row["sysmon_eid_counts"]),
            other_providers=row.get("other_providers") or "",
        )
        for row in _rows(folder / "MANIFEST.tsv")
    ]


def otrf_manifest() -> list[ZipEntry]:
    """``otrf/MANIFEST.tsv``; each entry's path is the local zip (named like the repo path)."""
    folder = sysmon_data() / "otrf"
    return [
        ZipEntry(
            path=folder / Path(row["repo_path"]).name,
            sysmon_eid_counts=parse_counts(row["sysmon_eid_counts"]),
        )
        for row in _rows(folder / "MANIFEST.tsv")
    ]

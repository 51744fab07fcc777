"""The ``sigma`` section of the detectors' configuration file (:mod:`detectors.config`): where
the Sigma rules are and which of them run. No pySigma here: reading the file stays cheap."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from detectors.loader import RuleError
from shipper.yamlnodes import Section

#: Sigma's vocabularies, so a typo in the file is an error rather than a selection of nothing
STATUSES = ("stable", "test", "experimental", "deprecated", "unsupported")
LEVELS = ("informational", "low", "medium", "high", "critical")

Reader = Section[RuleError]


@dataclass(frozen=True, slots=True)
class SigmaConfig:
    """Empty tuples: not given in the file (the command line or the defaults decide)."""

    paths: tuple[Path, ...] = ()
    statuses: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()


def _words(r: Reader, key: str, choices: tuple[str, ...]) -> tuple[str, ...]:
    pattern = re.compile(rf"^({'|'.join(choices)})$")
    return r.strings(key, pattern=pattern, kind=f"one of {', '.join(choices)}")


def _path(base: Path, text: str) -> Path:
    # relative to the file, so the same file works from any working directory
    p = Path(text).expanduser()
    return p if p.is_absolute() else base / p


def sigma_section(r: Reader, base: Path) -> SigmaConfig:
    """The section; problems are collected on ``r``'s reader with their lines."""
    r.check(("paths", "status", "level", "tags", "ids"))
    return SigmaConfig(
        paths=tuple(_path(base, p) for p in r.strings("paths")),
        statuses=_words(r, "status", STATUSES),
        levels=_words(r, "level", LEVELS),
        tags=r.strings("tags"),
        ids=r.strings("ids"),
    )

"""Sigma rules from where people keep them: folders, single files and SigmaHQ release zips
(``--sigma``, repeatable, and ``SYSMON_SIGMA_PATHS``), selected by status, level, tags and ids.
Every file lands somewhere: converted (:mod:`detectors.sigma.rules`), or an error with its file
and line; a bad rule never stops the others."""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import yaml
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError

from detectors.model import Where
from detectors.sigma.correlation import resolve_correlations
from detectors.sigma.rules import DEFAULT_INTERVAL, Converted, convert

_SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True, slots=True)
class _Staged:
    folder: Path  # where pySigma reads the files
    shown_as: str  # what errors and rules name instead


@contextmanager
def _staged(path: Path) -> Iterator[_Staged]:
    """A zip's rule files unpacked to a temporary folder; anything else as it is."""
    if path.suffix.lower() != ".zip":
        yield _Staged(path, str(path))
        return
    with tempfile.TemporaryDirectory(prefix="sigma-") as tmp, zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name = info.filename
            if info.is_dir() or not name.lower().endswith(_SUFFIXES) or ".." in Path(name).parts:
                continue
            target = Path(tmp, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
        yield _Staged(Path(tmp), f"{path}!")


def _rule_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix.lower() in _SUFFIXES and p.is_file())


def _shown(c: Converted, stage: _Staged) -> Converted:
    path = c.where.path
    folder = str(stage.folder)
    if stage.shown_as.endswith("!") and path.startswith(folder):
        path = stage.shown_as + path[len(folder) :].lstrip("/")
    where = Where(path, c.where.line)
    rule = replace(c.rule, where=where) if c.rule is not None else None
    return replace(c, where=where, rule=rule)


def _failed(path: str, exc: BaseException) -> Converted:
    source = getattr(exc, "source", None)
    line = getattr(source, "line", None) or 1
    return Converted("failed", Where(path, int(line)), Path(path).name, "", str(exc))


def _readable(files: list[Path]) -> tuple[list[Path], list[Converted]]:
    """Files that parse as YAML, and a failed entry (with the line) for each that does not:
    pySigma stops a whole load at the first YAML error."""
    good: list[Path] = []
    broken: list[Converted] = []
    for f in files:
        try:
            for _ in yaml.safe_load_all(f.read_text(encoding="utf-8")):
                pass
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 1
            problem = getattr(exc, "problem", None) or str(exc)
            broken.append(Converted("failed", Where(str(f), line), f.name, "", f"not valid YAML: {problem}"))
        except (OSError, UnicodeDecodeError) as exc:
            broken.append(Converted("failed", Where(str(f), 0), f.name, "", f"cannot read: {exc}"))
        else:
            good.append(f)
    return good, broken


def load_sigma(paths: Sequence[Path], *, interval: int = DEFAULT_INTERVAL) -> list[Converted]:
    """Every Sigma rule under ``paths``, converted and classed. Filters (Sigma v2 ``filter``
    documents) apply to the rules they name, across all the paths."""
    out: list[Converted] = []
    for path in paths:
        if not path.exists():
            out.append(Converted("failed", Where(str(path), 0), str(path), "", "no such file or folder"))
            continue
        try:
            with _staged(path) as stage:
                files, broken = _readable(_rule_files(stage.folder))
                out += [_shown(c, stage) for c in broken]
                # references resolved per correlation: a missing base rule fails that one only
                collection = SigmaCollection.load_ruleset(
                    [str(f) for f in files], collect_errors=True, resolve_references=False
                )
                resolve_correlations(collection)
                out += [_shown(c, stage) for c in convert(collection, interval=interval)]
        except (zipfile.BadZipFile, OSError) as exc:
            out.append(_failed(str(path), exc))
        except SigmaError as exc:
            out.append(_failed(str(path), exc))
    return out

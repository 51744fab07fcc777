"""The ``--sigma`` options of ``run``, ``daemon``, ``list`` and ``validate``, and which converted
rules they select. pySigma is imported only when a Sigma path is given."""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

if TYPE_CHECKING:
    from detectors.model import Rule
    from detectors.sigma.rules import Converted

Outcome = Literal["runs", "not_applicable", "cannot_fire", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("runs", "not_applicable", "cannot_fire", "failed")
LABELS = {
    "runs": "runs",
    "not_applicable": "not applicable",
    "cannot_fire": "cannot fire here",
    "failed": "failed",
}
SIGMA_PATHS_ENV = "SYSMON_SIGMA_PATHS"
#: Statuses run unless asked otherwise: SigmaHQ's deprecated and unsupported rules are not.
DEFAULT_STATUSES: tuple[str, ...] = ("stable", "test", "experimental")


def sigma_paths(extra: tuple[str, ...] | list[str] = ()) -> list[Path]:
    """``SYSMON_SIGMA_PATHS`` (os.pathsep-separated), then ``extra`` (``--sigma``)."""
    env = os.environ.get(SIGMA_PATHS_ENV, "")
    return [Path(p) for p in env.split(os.pathsep) if p.strip()] + [Path(p) for p in extra]


@dataclass(frozen=True, slots=True)
class Selection:
    """Which converted rules run. Empty means any; ``ids`` and ``tags`` match any listed."""

    statuses: tuple[str, ...] = DEFAULT_STATUSES
    levels: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()

    def keeps(self, c: Converted) -> bool:
        if self.ids and c.sigma_id.lower() not in {i.lower() for i in self.ids}:
            return False
        if self.statuses and (c.status or "experimental") not in self.statuses:
            return False
        if self.levels and c.level not in self.levels:
            return False
        if self.tags:
            tags = {t.lower() for t in (c.rule.tags if c.rule else ())}
            return any(t.lower() in tags for t in self.tags)
        return True


F = TypeVar("F", bound=Callable[..., Any])

LABELS = {
    "runs": "runs",
    "not_applicable": "not applicable",
    "cannot_fire": "cannot fire here",
    "failed": "failed",
}


@dataclass(frozen=True, slots=True)
class SigmaArgs:
    paths: tuple[str, ...] = ()
    selection: Selection = field(default_factory=Selection)

    def load(self) -> list[Converted]:
        paths = sigma_paths(self.paths)
        if not paths:
            return []
        from detectors.sigma.loading import load_sigma

        return load_sigma(paths)


def sigma_options(f: F) -> F:
    """``--sigma PATH`` (repeatable) and the selection options, passed on as ``sigma``."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kw: Any) -> Any:
        kw["sigma"] = SigmaArgs(
            paths=tuple(kw.pop("sigma_paths")),
            selection=Selection(
                statuses=tuple(kw.pop("sigma_statuses")) or DEFAULT_STATUSES,
                levels=tuple(kw.pop("sigma_levels")),
                tags=tuple(kw.pop("sigma_tags")),
                ids=tuple(kw.pop("sigma_ids")),
            ),
        )
        return f(*args, **kw)

    options = (
        click.option(
            "--sigma",
            "sigma_paths",
            multiple=True,
            type=click.Path(),
            help="Sigma rules: a folder, a file or a SigmaHQ zip (repeatable; also SYSMON_SIGMA_PATHS).",
        ),
        click.option(
            "--sigma-status",
            "sigma_statuses",
            multiple=True,
            help=f"Run Sigma rules of this status (repeatable; default: {', '.join(DEFAULT_STATUSES)}).",
        ),
        click.option("--sigma-level", "sigma_levels", multiple=True, help="Only Sigma rules of this level."),
        click.option("--sigma-tag", "sigma_tags", multiple=True, help="Only Sigma rules with this tag."),
        click.option("--sigma-id", "sigma_ids", multiple=True, help="Only the Sigma rule with this id."),
    )
    out: Any = wrapper
    for option in reversed(options):
        out = option(out)
    return out  # type: ignore[no-any-return]


def selected_rules(sigma: SigmaArgs, *, quiet: bool = False) -> list[Rule]:
    """The runnable, selected Sigma rules; a one-line account of the rest on stderr."""
    converted = sigma.load()
    if not converted:
        return []
    rules = [c.rule for c in converted if c.rule is not None and sigma.selection.keeps(c)]
    if not quiet:
        counts = Counter(c.outcome for c in converted)
        click.echo(
            f"sigma: {len(rules)} rules selected to run of {len(converted)} "
            f"({', '.join(f'{counts[o]} {LABELS[o]}' for o in OUTCOMES)}; "
            "`sysmon-detect sigma check` tells why)",
            err=True,
        )
    return rules

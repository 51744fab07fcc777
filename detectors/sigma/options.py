"""The ``--sigma`` options of ``run``, ``daemon``, ``list`` and ``validate``, and which converted
rules they select. pySigma is imported only when a Sigma path is given."""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from detectors.sigma.attack_data import attack_data_path, with_technique_names

if TYPE_CHECKING:
    from detectors.config import DetectConfig
    from detectors.model import Rule
    from detectors.sigma.config import Overlay
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
CONFIG_ENV = "SYSMON_DETECT_CONFIG"  # detectors.config says the same
#: Statuses run unless asked otherwise: SigmaHQ's deprecated and unsupported rules are not.
DEFAULT_STATUSES: tuple[str, ...] = ("stable", "test", "experimental")


def sigma_paths(extra: tuple[str, ...] | list[str] = (), configured: tuple[Path, ...] = ()) -> list[Path]:
    """``extra`` (``--sigma``) if given, else ``SYSMON_SIGMA_PATHS`` (os.pathsep-separated), else
    ``configured`` (the configuration file's, already resolved against its folder)."""
    if extra:
        return [Path(p) for p in extra]
    env = [Path(p) for p in os.environ.get(SIGMA_PATHS_ENV, "").split(os.pathsep) if p.strip()]
    return env or list(configured)


def read_config(path: str | None) -> DetectConfig:
    """The configuration file (``--config`` / ``SYSMON_DETECT_CONFIG``); a click error naming
    file:line for each problem."""
    from detectors.config import DetectConfig, load_config
    from shipper.errors import ConfigError

    if not path:
        return DetectConfig()
    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


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


@dataclass(frozen=True, slots=True)
class SigmaArgs:
    paths: tuple[Path, ...] = ()  # as resolved: flags, else environment, else the file
    selection: Selection = field(default_factory=Selection)
    overlays: tuple[Overlay, ...] = ()  # the file's exceptions for Sigma rules
    attack_data: str | None = None  # a STIX bundle naming ATT&CK techniques

    def load(self) -> list[Converted]:
        if not self.paths:
            return []
        from detectors.sigma.loading import load_sigma

        return load_sigma(list(self.paths))


def resolve_sigma(
    config: str | None,
    *,
    paths: Sequence[str] = (),
    statuses: Sequence[str] = (),
    levels: Sequence[str] = (),
    tags: Sequence[str] = (),
    ids: Sequence[str] = (),
    attack_data: str | None = None,
) -> SigmaArgs:
    """Flags over the environment over the configuration file, setting by setting (no flags: what
    ``sysmon-detect run`` reads from the configuration and the environment alone)."""
    conf = read_config(config).sigma
    return SigmaArgs(
        paths=tuple(sigma_paths(tuple(paths), conf.paths)),
        selection=Selection(
            statuses=tuple(statuses) or conf.statuses or DEFAULT_STATUSES,
            levels=tuple(levels) or conf.levels,
            tags=tuple(tags) or conf.tags,
            ids=tuple(ids) or conf.ids,
        ),
        overlays=conf.overlays,
        attack_data=attack_data_path(attack_data, conf.attack_data),
    )


def _resolve(kw: dict[str, Any]) -> SigmaArgs:
    return resolve_sigma(
        kw.pop("sigma_config"),
        paths=kw.pop("sigma_paths"),
        statuses=kw.pop("sigma_statuses"),
        levels=kw.pop("sigma_levels"),
        tags=kw.pop("sigma_tags"),
        ids=kw.pop("sigma_ids"),
        attack_data=kw.pop("attack_data"),
    )


config_option = click.option(
    "--config",
    "sigma_config",
    type=click.Path(dir_okay=False),
    envvar=CONFIG_ENV,
    help=f"The detectors' YAML configuration file (also {CONFIG_ENV}); flags and environment win.",
)


def sigma_options(f: F) -> F:
    """``--config``, ``--sigma PATH`` (repeatable) and the selection options, passed on as
    ``sigma``."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kw: Any) -> Any:
        kw["sigma"] = _resolve(kw)
        return f(*args, **kw)

    options = (
        config_option,
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
        click.option(
            "--attack-data",
            type=click.Path(dir_okay=False),
            help="An ATT&CK STIX bundle (enterprise-attack.json) naming the Sigma rules' techniques "
            "(also SYSMON_ATTACK_DATA; default: ids as names).",
        ),
    )
    out: Any = wrapper
    for option in reversed(options):
        out = option(out)
    return out  # type: ignore[no-any-return]


def _attack_names(path: str) -> dict[str, str]:
    from detectors.sigma.attack_data import load_attack_names
    from shipper.errors import ConfigError

    try:
        return load_attack_names(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def selected_rules(sigma: SigmaArgs, *, quiet: bool = False) -> list[Rule]:
    """The runnable, selected Sigma rules; a one-line account of the rest on stderr."""
    converted = sigma.load()
    if not converted:
        return []
    from detectors.sigma.config import with_overlays

    rules = [c.rule for c in converted if c.rule is not None and sigma.selection.keeps(c)]
    rules = with_overlays(rules, sigma.overlays)
    if sigma.attack_data:
        rules = with_technique_names(rules, _attack_names(sigma.attack_data))
    if not quiet:
        counts = Counter(c.outcome for c in converted)
        click.echo(
            f"sigma: {len(rules)} rules selected to run of {len(converted)} "
            f"({', '.join(f'{counts[o]} {LABELS[o]}' for o in OUTCOMES)}; "
            "`sysmon-detect sigma check` tells why)",
            err=True,
        )
    return rules

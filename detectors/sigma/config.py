"""The ``sigma`` section of the detectors' configuration file (:mod:`detectors.config`): where
the Sigma rules are, which of them run, and the exceptions (allowlists, values) they get, which
:func:`with_overlays` adds to the converted rules: the query builders then apply them exactly as
a built-in rule's own. No pySigma here: reading the file stays cheap."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from detectors.loader import RuleError, read_exceptions
from detectors.model import Exceptions, Rule, Where
from shipper.yamlnodes import Section, line_of

#: Sigma's vocabularies, so a typo in the file is an error rather than a selection of nothing
STATUSES = ("stable", "test", "experimental", "deprecated", "unsupported")
LEVELS = ("informational", "low", "medium", "high", "critical")

Reader = Section[RuleError]


@dataclass(frozen=True, slots=True)
class Overlay:
    """Exceptions for the Sigma rules it names: every criterion given must hold (ids: the Sigma
    id or our rule id; tags and levels: any listed); ``every`` names them all."""

    where: Where
    exceptions: Exceptions
    ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    every: bool = False

    def applies(self, rule: Rule) -> bool:
        if rule.sigma is None:
            return False  # built-in and custom rules carry their own exceptions
        if rule.type != "query":
            return False  # a correlation reads its base rules' events: exceptions go on those
        if self.every:
            return True
        low = {i.lower() for i in self.ids}
        if self.ids and not low & {rule.id.lower(), rule.sigma.uuid.lower()}:
            return False
        if self.levels and rule.sigma.level not in self.levels:
            return False
        tags = {t.lower() for t in rule.tags}
        return not self.tags or any(t.lower() in tags for t in self.tags)


def with_overlays(rules: Sequence[Rule], overlays: Sequence[Overlay]) -> list[Rule]:
    """Each rule with the exceptions of every overlay that applies added to its own."""
    out: list[Rule] = []
    for rule in rules:
        extra = [o.exceptions for o in overlays if o.applies(rule)]
        if extra:
            own = rule.exceptions
            rule = replace(
                rule,
                exceptions=Exceptions(
                    allowlists=own.allowlists + tuple(a for e in extra for a in e.allowlists),
                    values=own.values + tuple(v for e in extra for v in e.values),
                ),
            )
        out.append(rule)
    return out


@dataclass(frozen=True, slots=True)
class SigmaConfig:
    """Empty tuples: not given in the file (the command line or the defaults decide)."""

    paths: tuple[Path, ...] = ()
    statuses: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    overlays: tuple[Overlay, ...] = ()
    attack_data: Path | None = None  # an ATT&CK STIX bundle: technique names


def _words(r: Reader, key: str, choices: tuple[str, ...]) -> tuple[str, ...]:
    pattern = re.compile(rf"^({'|'.join(choices)})$")
    return r.strings(key, pattern=pattern, kind=f"one of {', '.join(choices)}")


def _path(base: Path, text: str) -> Path:
    # relative to the file, so the same file works from any working directory
    p = Path(text).expanduser()
    return p if p.is_absolute() else base / p


def _overlay(r: Reader) -> Overlay:
    exceptions = read_exceptions(r, also=("rules",))
    where = Where(r.reader.source, line_of(r.node))
    if not exceptions.allowlists and not exceptions.values:
        r.fail(r.node, "a Sigma exception needs 'allowlists' or 'values'")
    node = r.get("rules", required=True)
    if node is None:
        return Overlay(where, exceptions)
    if isinstance(node, yaml.ScalarNode) and node.value == "all":
        return Overlay(where, exceptions, every=True)
    if not isinstance(node, yaml.MappingNode):
        r.fail(node, "'rules' must be 'all' or a mapping of ids, tags and levels")
        return Overlay(where, exceptions)
    rr = Section(r.reader, node, "rules")
    rr.check(("ids", "tags", "levels"))
    ov = Overlay(where, exceptions, rr.strings("ids"), rr.strings("tags"), _words(rr, "levels", LEVELS))
    if not (ov.ids or ov.tags or ov.levels):
        r.fail(node, "'rules' must name ids, tags or levels (or be 'all')")
    return ov


def sigma_section(r: Reader, base: Path) -> SigmaConfig:
    """The section; problems are collected on ``r``'s reader with their lines."""
    r.check(("paths", "status", "level", "tags", "ids", "exceptions", "attack_data"))
    attack = r.string("attack_data")
    return SigmaConfig(
        paths=tuple(_path(base, p) for p in r.strings("paths")),
        statuses=_words(r, "status", STATUSES),
        levels=_words(r, "level", LEVELS),
        tags=r.strings("tags"),
        ids=r.strings("ids"),
        overlays=tuple(_overlay(e) for e in r.sections("exceptions", "Sigma exception")),
        attack_data=_path(base, attack) if attack else None,
    )

"""ATT&CK technique names from a STIX 2 bundle the user supplies (MITRE's
``enterprise-attack.json``, or any bundle of ``attack-pattern`` objects): ``--attack-data PATH``,
``SYSMON_ATTACK_DATA``, or ``sigma.attack_data`` in the configuration file. Nothing is bundled or
fetched (no network here, and no well-kept PyPI package ships the data), so without a bundle a
technique keeps its id as its name.

A sub-technique is named as ATT&CK shows it, ``Parent: Sub`` (``Command and Scripting
Interpreter: PowerShell``), the form the built-in rules use; the alert splits it into
``threat.technique.name`` and ``threat.technique.subtechnique.name`` (:mod:`detectors.alerts`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from detectors.model import Rule, Technique, Threat
from shipper.errors import ConfigError

ATTACK_DATA_ENV = "SYSMON_ATTACK_DATA"


def _external_id(obj: Mapping[str, Any]) -> str | None:
    for ref in obj.get("external_references") or ():
        if isinstance(ref, Mapping) and ref.get("source_name") == "mitre-attack" and ref.get("external_id"):
            return str(ref["external_id"]).upper()
    return None


def _line_of(text: bytes, pos: int) -> int:
    return text.count(b"\n", 0, pos) + 1


def load_attack_names(path: str | os.PathLike[str]) -> dict[str, str]:
    """Technique id → name (sub-techniques as ``Parent: Sub``) of a STIX bundle; revoked and
    deprecated techniques are left out. A ConfigError names the file (and line) otherwise."""
    source = str(path)
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read ATT&CK data: {exc.strerror or exc}", source=source) from exc
    try:
        bundle = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        line = _line_of(text, exc.pos)
        raise ConfigError(f"not JSON: {exc.msg}", source=source, position=f"line {line}") from exc
    objects = bundle.get("objects") if isinstance(bundle, dict) else None
    if not isinstance(objects, list):
        raise ConfigError("not a STIX bundle: no 'objects' list", source=source)
    names: dict[str, str] = {}
    for obj in objects:
        if not isinstance(obj, Mapping) or obj.get("type") != "attack-pattern":
            continue
        if obj.get("revoked") or obj.get("x_mitre_deprecated"):
            continue
        tid, name = _external_id(obj), obj.get("name")
        if tid and isinstance(name, str) and name.strip():
            names[tid] = name.strip()
    if not names:
        raise ConfigError("no ATT&CK techniques (attack-patterns with a mitre-attack id)", source=source)
    return {tid: _display(tid, names) for tid in names}


def _display(tid: str, names: Mapping[str, str]) -> str:
    parent, _, sub = tid.partition(".")
    if not sub:
        return names[tid]
    return f"{names.get(parent, parent)}: {names[tid]}"


def attack_data_path(flag: str | None, configured: Path | None) -> str | None:
    """The flag, else ``SYSMON_ATTACK_DATA``, else the configuration file's."""
    return flag or os.environ.get(ATTACK_DATA_ENV) or (str(configured) if configured else None)


def _named(t: Technique, names: Mapping[str, str]) -> Technique:
    if t.name != t.id:
        return t  # named already (a built-in rule, or a name the rule gave)
    if t.id in names:
        return Technique(t.id, names[t.id])
    parent = t.id.partition(".")[0]
    return Technique(t.id, f"{names[parent]}: {t.id}") if parent in names and parent != t.id else t


def with_technique_names(rules: Sequence[Rule], names: Mapping[str, str]) -> list[Rule]:
    """Each rule with its techniques named from ``names`` where it had only their ids."""
    if not names:
        return list(rules)
    out: list[Rule] = []
    for r in rules:
        threat = tuple(
            Threat(th.tactic_id, th.tactic_name, tuple(_named(t, names) for t in th.techniques))
            for th in r.threat
        )
        out.append(replace(r, threat=threat) if threat != r.threat else r)
    return out

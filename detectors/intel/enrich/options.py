"""From the command line and the environment to :class:`ServiceSettings`: which services run,
their keys (environment or key file, kept as :class:`Secret`), base URLs and limits."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from detectors.intel.config import Secret
from shipper.errors import ConfigError

from .model import Limits, ServiceSettings
from .services import SERVICES

KEY_FILE_OPTIONS = {"virustotal": "--vt-key-file", "malwarebazaar": "--malwarebazaar-key-file"}


@dataclass(frozen=True, slots=True)
class Selection:
    settings: tuple[ServiceSettings, ...]
    disabled: dict[str, str]  # service → why it does not run


def read_key_file(path: Path, option: str) -> Secret:
    """The key in ``path`` (surrounding white space stripped); the error names the file only."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"{option} {path}: cannot read the key file ({type(exc).__name__})") from None
    if not text or any(c.isspace() for c in text):
        raise ConfigError(f"{option} {path}: expected one key on one line")
    return Secret(text)


def _pairs(values: Sequence[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or name not in SERVICES or not rest:
            known = ", ".join(SERVICES)
            raise ConfigError(f"{option} {value!r}: expected SERVICE=VALUE with SERVICE one of {known}")
        out[name] = rest
    return out


def parse_limit(text: str, option: str = "--limit") -> Limits:
    """``PER_MINUTE`` or ``PER_MINUTE/PER_DAY`` (e.g. ``4/500``)."""
    minute, _, day = text.partition("/")
    try:
        return Limits(per_minute=float(minute), per_day=int(day) if day else None)
    except ValueError:
        raise ConfigError(f"{option}{text!r}: expected PER_MINUTE[/PER_DAY], e.g. 4/500") from None


def select(
    wanted: Sequence[str],
    *,
    key_files: Mapping[str, Path | None],
    urls: Sequence[str] = (),
    limits: Sequence[str] = (),
    min_detections: int = 3,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
) -> Selection:
    """The services to run: those named (all when none), each with its key, URL and limits.
    A service named without its key is an error; left to the default, it is disabled."""
    env = os.environ if env is None else env
    url_of = _pairs(urls, "--url")
    limit_of = {k: parse_limit(v, f"--limit {k}=") for k, v in _pairs(limits, "--limit").items()}
    chosen = list(dict.fromkeys(wanted)) or list(SERVICES)
    settings: list[ServiceSettings] = []
    disabled: dict[str, str] = {}
    for name in chosen:
        service = SERVICES[name]
        key: Secret | None = None
        if service.key_env is not None:
            path = key_files.get(name)
            if path is not None:
                key = read_key_file(path, KEY_FILE_OPTIONS[name])
            elif env.get(service.key_env, "").strip():
                key = Secret(env[service.key_env].strip())
            else:
                why = f"no key: set {service.key_env} or {KEY_FILE_OPTIONS[name]}"
                if wanted:
                    raise ConfigError(f"{name}: {why}")
                disabled[name] = why
                continue
        settings.append(
            ServiceSettings(
                name=name,
                url=url_of.get(name, service.default_url),
                limits=limit_of.get(name, service.limits),
                key=key,
                min_detections=min_detections,
                timeout=timeout,
            )
        )
    return Selection(tuple(settings), disabled)

"""One line saying what an event did, for timelines (``hunt process``, ``hunt hash``).

A registry by event code; codes without an entry fall back to the first of the usual object
fields the event carries (file, registry, DNS, destination).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from detectors.query import get_path

Describe = Callable[[dict[str, Any]], str]


def _g(src: dict[str, Any], path: str) -> str:
    v = get_path(src, path)
    if v is None:
        return ""
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    return str(v)


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _endpoint(src: dict[str, Any], side: str) -> str:
    ip, port = _g(src, f"{side}.ip"), _g(src, f"{side}.port")
    addr = f"[{ip}]" if ":" in ip else ip
    where = f"{addr}:{port}" if port else addr
    domain = _g(src, f"{side}.domain")
    return f"{where} ({domain})" if domain else where


def _network(src: dict[str, Any]) -> str:
    return _join(_g(src, "network.transport"), _endpoint(src, "source"), "→", _endpoint(src, "destination"))


def _dns(src: dict[str, Any]) -> str:
    answers = _g(src, "dns.resolved_ip") or _g(src, "dns.answers.data")
    status = _g(src, "sysmon.dns.status")
    out = _g(src, "dns.question.name")
    if answers:
        out += f" → {answers}"
    if status and status.upper() not in ("SUCCESS", "0"):
        out += f" [{status}]"
    return out


def _file_hash(src: dict[str, Any]) -> str:
    sha = _g(src, "file.hash.sha256")
    return _join(_g(src, "file.path"), f"sha256={sha}" if sha else "")


def _registry(src: dict[str, Any]) -> str:
    data = _g(src, "registry.data.strings")
    return _g(src, "registry.path") + (f" = {data}" if data else "")


def _target(src: dict[str, Any]) -> str:
    image = _g(src, "winlog.event_data.TargetImage")
    access = _g(src, "winlog.event_data.GrantedAccess")
    return _join(f"→ {image}" if image else "", f"access={access}" if access else "")


def _image(src: dict[str, Any]) -> str:
    sha = _g(src, "process.hash.sha256")
    return _join(
        _g(src, "process.command_line") or _g(src, "process.executable"), f"sha256={sha}" if sha else ""
    )


DESCRIBE: dict[str, Describe] = {
    "1": _image,
    "3": _network,
    "6": _file_hash,
    "7": _file_hash,
    "8": _target,
    "10": _target,
    "12": _registry,
    "13": _registry,
    "14": _registry,
    "15": _file_hash,
    "17": lambda s: _g(s, "file.name") or _g(s, "winlog.event_data.PipeName"),
    "18": lambda s: _g(s, "file.name") or _g(s, "winlog.event_data.PipeName"),
    "22": _dns,
    "25": lambda s: _g(s, "message"),
}
_FALLBACK = ("file.path", "registry.path", "dns.question.name", "destination.ip", "winlog.event_data.Device")


def describe(src: dict[str, Any]) -> str:
    fn = DESCRIBE.get(_g(src, "event.code"))
    if fn is not None:
        text = fn(src)
        if text:
            return text
    for path in _FALLBACK:
        v = _g(src, path)
        if v:
            return v
    return ""

"""Indicator model and value normalisation for threat-intel feeds and allowlists.

Everything here is pure: no I/O. Parsers call the ``normalise_*`` helpers, which raise
``ValueError`` with a short human message on bad input; the parser turns that into a
``ParseIssue`` carrying the line, so a bad line never aborts a load.

ECS representation (see :meth:`Indicator.ecs`)
------------------------------------------------
``ecs()`` returns a document fragment with two roots:

* ``threat.indicator.*`` — stock ECS fields only (``type``, ``ip``, ``url.*``, ``file.hash.*``,
  ``file.path``, ``file.name``, ``port``, ``provider``, ``first_seen``, ``last_seen``,
  ``confidence``, ``description``, ``reference``), plus ``threat.feed.name`` and
  ``threat.software.name`` (malware family).
* ``intel.*`` — our custom namespace (not an ECS field set, so it can never collide):
  ``intel.type`` / ``intel.value`` (our own type and normalised value: what lookups match on),
  ``intel.cidr`` (CIDR indicators), ``intel.confidence_score`` (the 0–100 number),
  ``intel.derived``, ``intel.ports``, ``intel.tags``, ``intel.line``, ``intel.extra``.

Decisions:

* **CIDR**: ECS ``threat.indicator.ip`` is of type ``ip`` and cannot hold a network, so a CIDR
  indicator gets ``threat.indicator.type`` ``ipv4-addr``/``ipv6-addr`` (as STIX does for
  ``ipv4-addr`` values with a prefix) and its network in ``intel.cidr`` — meant to be mapped as
  ``ip_range``, which accepts CIDR notation and lets a ``term`` query with an address match
  every network containing it. A /32 or /128 is normalised to a plain ``ip`` indicator.
* **Confidence**: ECS ``threat.indicator.confidence`` is a keyword with the values
  ``Not Specified``/``None``/``Low``/``Medium``/``High``. Numbers map with the STIX 2.1
  "None/Low/Med/High" scale: 0 → ``None``, 1–29 → ``Low``, 30–69 → ``Medium``,
  70–100 → ``High``; no number → ``Not Specified``. The number is kept in
  ``intel.confidence_score``.
* **Domains**: ``threat.indicator.url.domain`` (as Elastic's threat-intel integrations do),
  type ``domain-name``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

IndicatorType = Literal["ip", "cidr", "domain", "url", "md5", "sha1", "sha256", "image_path", "image_name"]
INDICATOR_TYPES: frozenset[str] = frozenset(get_args(IndicatorType))
HASH_TYPES: frozenset[str] = frozenset({"md5", "sha1", "sha256"})
HASH_LENGTHS: dict[int, IndicatorType] = {32: "md5", 40: "sha1", 64: "sha256"}

IssueKind = Literal["invalid", "unsupported", "skipped"]
Normaliser = Callable[[str], tuple[IndicatorType, str]]


@dataclass(frozen=True, slots=True)
class Indicator:
    """One normalised indicator (or allowlist entry) read from a feed.

    ``line`` is the physical line of the feed the value came from (for JSON documents, the
    line of the object's ``id``/``uuid``). ``derived`` marks values not listed by the feed
    itself but derived from another indicator (a URL's host). ``extra`` holds feed-specific
    metadata as sorted ``(key, value)`` pairs so the object stays hashable.
    """

    type: IndicatorType
    value: str
    line: int
    derived: bool = False
    first_seen: str | None = None
    last_seen: str | None = None
    confidence: int | None = None
    description: str | None = None
    malware: str | None = None
    tags: tuple[str, ...] = ()
    reference: str | None = None
    provider: str | None = None
    ports: tuple[int, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """Identity of the indicator within a feed: ``(type, value)``."""
        return (self.type, self.value)

    def extra_dict(self) -> dict[str, str]:
        return dict(self.extra)

    def ecs(self) -> dict[str, Any]:
        """The document fragment for the indicators index (see the module docstring)."""
        ind: dict[str, Any] = {}
        intel: dict[str, Any] = {"type": self.type, "value": self.value, "derived": self.derived}
        _ECS_BUILDERS[self.type](self, ind, intel)
        ind["confidence"] = confidence_label(self.confidence)
        if self.confidence is not None:
            intel["confidence_score"] = self.confidence
        optional = {
            "provider": self.provider,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "description": self.description,
            "reference": self.reference,
        }
        ind.update({k: v for k, v in optional.items() if v is not None})
        if self.ports:
            ind["port"] = list(self.ports) if len(self.ports) > 1 else self.ports[0]
            intel["ports"] = list(self.ports)
        if self.tags:
            intel["tags"] = list(self.tags)
        if self.extra:
            intel["extra"] = dict(self.extra)
        intel["line"] = self.line
        threat: dict[str, Any] = {"indicator": ind}
        if self.provider:
            threat["feed"] = {"name": self.provider}
        if self.malware:
            threat["software"] = {"name": self.malware}
        return {"threat": threat, "intel": intel}


@dataclass(frozen=True, slots=True)
class ParseIssue:
    """A line (or object) that yielded no indicator, and why.

    ``kind``: ``invalid`` (malformed value or row), ``unsupported`` (well-formed but of a type
    or pattern we do not handle), ``skipped`` (deliberately left out, e.g. MISP ``to_ids``
    false, a revoked STIX indicator).
    """

    line: int
    message: str
    raw: str = ""
    kind: IssueKind = "invalid"
    source: str | None = None

    def __str__(self) -> str:
        where = f"{self.source}:" if self.source else "line "
        return f"{where}{self.line}: {self.message}"


ParseItem = Indicator | ParseIssue


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """Per-feed parsing options.

    ``force_type``: every value of a one-value-per-line list is of this type (no inference).
    ``confidence``: default confidence for indicators whose feed gives none.
    ``derive_hosts``: a URL also yields its host (``derived=True``).
    """

    force_type: IndicatorType | None = None
    confidence: int | None = None
    derive_hosts: bool = True
    extra: tuple[tuple[str, str], ...] = field(default=())


# ---------------------------------------------------------------------------------------------
# ECS


def confidence_label(score: int | None) -> str:
    """STIX 2.1 None/Low/Med/High scale onto ECS ``threat.indicator.confidence``."""
    if score is None:
        return "Not Specified"
    if score <= 0:
        return "None"
    if score < 30:
        return "Low"
    if score < 70:
        return "Medium"
    return "High"


def _ip_version_type(value: str) -> str:
    return "ipv6-addr" if ":" in value else "ipv4-addr"


EcsBuilder = Callable[["Indicator", dict[str, Any], dict[str, Any]], None]


def _ecs_ip(i: Indicator, ind: dict[str, Any], intel: dict[str, Any]) -> None:
    ind["type"] = _ip_version_type(i.value)
    ind["ip"] = i.value


def _ecs_cidr(i: Indicator, ind: dict[str, Any], intel: dict[str, Any]) -> None:
    ind["type"] = _ip_version_type(i.value)
    intel["cidr"] = i.value


def _ecs_domain(i: Indicator, ind: dict[str, Any], intel: dict[str, Any]) -> None:
    ind["type"] = "domain-name"
    ind["url"] = {"domain": i.value}


def _ecs_url(i: Indicator, ind: dict[str, Any], intel: dict[str, Any]) -> None:
    ind["type"] = "url"
    parts = urlsplit(i.value)
    url: dict[str, Any] = {"full": i.value, "original": i.value, "scheme": parts.scheme}
    if parts.hostname:
        url["domain"] = parts.hostname
    if parts.path:
        url["path"] = parts.path
    if parts.query:
        url["query"] = parts.query
    try:
        if parts.port is not None:
            url["port"] = parts.port
    except ValueError:
        pass
    ind["url"] = url


def _ecs_hash(i: Indicator, ind: dict[str, Any], intel: dict[str, Any]) -> None:
    ind["type"] = "file"
    ind["file"] = {"hash": {i.type: i.value}}


def _ecs_image_path(i: Indicator, ind: dict[str, Any], intel: dict[str, Any]) -> None:
    ind["type"] = "file"
    ind["file"] = {"path": i.value, "name": i.value.rsplit("\\", 1)[-1]}


def _ecs_image_name(i: Indicator, ind: dict[str, Any], intel: dict[str, Any]) -> None:
    ind["type"] = "file"
    ind["file"] = {"name": i.value}


_ECS_BUILDERS: dict[str, EcsBuilder] = {
    "ip": _ecs_ip,
    "cidr": _ecs_cidr,
    "domain": _ecs_domain,
    "url": _ecs_url,
    "md5": _ecs_hash,
    "sha1": _ecs_hash,
    "sha256": _ecs_hash,
    "image_path": _ecs_image_path,
    "image_name": _ecs_image_name,
}

# ---------------------------------------------------------------------------------------------
# normalisation

_HEX = re.compile(r"[0-9a-f]+")
_SPACE = re.compile(r"\s")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_EXECUTABLE_SUFFIXES = (
    ".exe", ".dll", ".sys", ".scr", ".ps1", ".bat", ".cmd", ".msi", ".cpl", ".ocx", ".vbs", ".js",
    ".hta", ".jar", ".lnk",
)  # fmt: skip
_WINDOWS_PATH = re.compile(r"(?:[a-z]:[\\/]|\\\\|%[a-z_]+%[\\/])", re.IGNORECASE)
_REFANG = (("[.]", "."), ("(.)", "."), ("{.}", "."), ("[:]", ":"), ("[://]", "://"))


def refang(text: str) -> str:
    """Undo the usual defanging (``hxxp://``, ``evil[.]com``)."""
    for old, new in _REFANG:
        text = text.replace(old, new)
    low = text[:8].lower()
    if low.startswith(("hxxp://", "hxxps://")):
        text = "http" + text[4:]
    return text


def normalise_hash(text: str, expected: str | None = None) -> tuple[IndicatorType, str]:
    value = text.strip().lower()
    kind = HASH_LENGTHS.get(len(value))
    if kind is None or not _HEX.fullmatch(value):
        raise ValueError(f"not an MD5, SHA1 or SHA256 hash: {_short(text)!r}")
    if expected is not None and kind != expected:
        raise ValueError(f"expected a {expected} hash, got {len(value)} hex digits")
    return kind, value


def normalise_ip(text: str) -> str:
    try:
        addr = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        raise ValueError(f"not an IP address: {_short(text)!r}") from None
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.scope_id:
            raise ValueError(f"IP address with a scope id: {_short(text)!r}")
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
    return str(addr)


def normalise_cidr(text: str) -> tuple[IndicatorType, str]:
    """A network, canonical; a /32 or /128 comes back as an ``ip``."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"not a CIDR network: {_short(text)!r}") from None
    if isinstance(net, ipaddress.IPv6Network):
        mapped = net.network_address.ipv4_mapped
        if mapped is not None and net.prefixlen >= 96:
            net4 = ipaddress.IPv4Network((mapped, net.prefixlen - 96), strict=False)
            return _net_or_ip(net4)
    return _net_or_ip(net)


def _net_or_ip(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[IndicatorType, str]:
    if net.prefixlen == net.max_prefixlen:
        return "ip", str(net.network_address)
    return "cidr", str(net)


def normalise_domain(text: str) -> str:
    """Lower-case, trailing dot stripped, internationalised names as IDNA ASCII (``xn--``)."""
    value = text.strip().rstrip(".")
    if not value:
        raise ValueError("empty domain name")
    if not value.isascii():
        try:
            value = value.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"not a valid internationalised domain name: {_short(text)!r}") from None
    value = value.lower()
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2:
        raise ValueError(f"not a domain name: {_short(text)!r}")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise ValueError(f"not a domain name: {_short(text)!r}")
    if labels[-1].isdigit():
        raise ValueError(f"not a domain name (numeric top-level label): {_short(text)!r}")
    return value


def normalise_host(text: str) -> tuple[IndicatorType, str]:
    """A host as found in a URL or a ``domain|ip`` pair: an IP or a domain name."""
    host = text.strip().strip("[]")
    if ":" not in host and host[-1:].isalpha():  # no IPv4 ends with a letter, IPv6 has ':'
        return "domain", normalise_domain(host)
    try:
        return "ip", normalise_ip(host)
    except ValueError:
        return "domain", normalise_domain(host)


def normalise_url(text: str) -> tuple[str, tuple[IndicatorType, str] | None]:
    """Canonical URL (scheme and host lower-case, rest untouched) and its host indicator."""
    raw = refang(text.strip())
    if _SPACE.search(raw):
        raise ValueError(f"URL with white space: {_short(text)!r}")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a URL ({exc}): {_short(text)!r}") from None
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"not a URL (needs scheme://host): {_short(text)!r}")
    hostname = parts.hostname
    host: tuple[IndicatorType, str] | None = None
    if hostname:
        try:
            host = normalise_host(hostname)
        except ValueError:
            raise ValueError(f"URL with an invalid host: {_short(text)!r}") from None
    if host is None:
        raise ValueError(f"URL without a host: {_short(text)!r}")
    netloc = host[1] if host[0] == "domain" or ":" not in host[1] else f"[{host[1]}]"
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    if port is not None:
        netloc = f"{netloc}:{port}"
    value = urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, parts.fragment))
    return value, host


def url_host(url: str) -> tuple[IndicatorType, str] | None:
    """The host of an already normalised URL as ``(type, value)``."""
    try:
        return normalise_url(url)[1]
    except ValueError:
        return None


def normalise_image_path(text: str) -> str:
    value = text.strip().strip('"').replace("/", "\\")
    if not _WINDOWS_PATH.match(value):
        raise ValueError(f"not an absolute Windows path: {_short(text)!r}")
    return value.lower()


def normalise_image_name(text: str) -> str:
    value = text.strip().strip('"')
    if not value or "\\" in value or "/" in value:
        raise ValueError(f"not a file name: {_short(text)!r}")
    return value.lower()


def looks_like_image_name(text: str) -> bool:
    low = text.lower()
    return "/" not in low and "\\" not in low and low.endswith(_EXECUTABLE_SUFFIXES)


def looks_like_image_path(text: str) -> bool:
    return bool(_WINDOWS_PATH.match(text.strip().strip('"')))


def normalise(text: str, kind: IndicatorType) -> tuple[IndicatorType, str]:
    """Normalise ``text`` as an indicator of ``kind``; the type can change (a /32 CIDR → ip)."""
    return _NORMALISERS[kind](text)


def _n_ip(text: str) -> tuple[IndicatorType, str]:
    # feeds labelled "ip" sometimes carry networks (MISP ip-dst, STIX ipv4-addr)
    if "/" in text:
        return normalise_cidr(text)
    return "ip", normalise_ip(text)


def _n_url(text: str) -> tuple[IndicatorType, str]:
    return "url", normalise_url(text)[0]


def _n_hash(kind: IndicatorType) -> Normaliser:
    def run(text: str) -> tuple[IndicatorType, str]:
        return normalise_hash(text, kind)

    return run


_NORMALISERS: dict[str, Normaliser] = {
    "ip": _n_ip,
    "cidr": normalise_cidr,
    "domain": lambda t: ("domain", normalise_domain(refang(t))),
    "url": _n_url,
    "md5": _n_hash("md5"),
    "sha1": _n_hash("sha1"),
    "sha256": _n_hash("sha256"),
    "image_path": lambda t: ("image_path", normalise_image_path(t)),
    "image_name": lambda t: ("image_name", normalise_image_name(t)),
}


def infer(text: str) -> tuple[IndicatorType, str]:
    """Infer the type of a bare value and normalise it.

    Order: Windows path, hash, IP, CIDR, URL, executable name, domain.
    """
    value = text.strip()
    if not value:
        raise ValueError("empty value")
    if looks_like_image_path(value):
        return "image_path", normalise_image_path(value)
    if len(value) in HASH_LENGTHS and _HEX.fullmatch(value.lower()):
        return normalise_hash(value)
    fanged = refang(value)
    if "://" in fanged:
        return _n_url(fanged)
    if "/" in fanged:
        return normalise_cidr(fanged)
    try:
        return "ip", normalise_ip(fanged)
    except ValueError:
        pass
    if looks_like_image_name(fanged):
        return "image_name", normalise_image_name(fanged)
    if fanged.replace(".", "").isdigit():
        raise ValueError(f"not an IP address: {_short(text)!r}")
    if len(fanged) > 16 and _HEX.fullmatch(fanged.lower()):
        raise ValueError(f"not an MD5, SHA1 or SHA256 hash ({len(fanged)} hex digits): {_short(text)!r}")
    return "domain", normalise_domain(fanged)


def iso_utc(text: str | None) -> str | None:
    """Feed timestamps (``2024-01-02 03:04:05``, ``2024-01-02``, ISO 8601 with ``Z`` or an
    offset, epoch seconds) as ISO 8601 UTC ``2024-01-02T03:04:05Z``; empty/``n/a`` → None."""
    if text is None:
        return None
    value = text.strip()
    if value.lower() in _EMPTY:
        return None
    if value.isascii() and value.isdigit():
        try:
            dt = datetime.fromtimestamp(int(value), tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"epoch timestamp out of range: {_short(value)!r}") from None
    else:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"not a timestamp: {_short(value)!r}") from None
        dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    frac = f".{dt.microsecond // 1000:03d}" if dt.microsecond else ""
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


_EMPTY = frozenset({"", "n/a", "none", "null", "-"})


def clean(value: str | None) -> str | None:
    """Feed placeholders for "nothing" (``n/a``, ``None``, empty) → None."""
    if value is None:
        return None
    value = value.strip()
    return None if value.lower() in _EMPTY else value


def parse_port(text: str | None) -> int | None:
    """A TCP/UDP port 1-65535, or None for an empty value; ValueError otherwise."""
    value = clean(text)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) < 65536:
        raise ValueError(f"not a port: {_short(value)!r}")
    return int(value)


def parse_confidence(value: object) -> int | None:
    if value is None or (isinstance(value, str) and clean(value) is None):
        return None
    text = str(value).strip()
    try:
        if not (text.isascii() and text.lstrip("-").isdigit()):
            raise ValueError(text)
        number = int(text)
    except ValueError:
        raise ValueError(f"confidence is not a number: {_short(str(value))!r}") from None
    if not 0 <= number <= 100:
        raise ValueError(f"confidence out of range 0-100: {number}")
    return number


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

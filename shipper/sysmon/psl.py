"""Registered domain, subdomain and effective TLD from the bundled public suffix list."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cache, lru_cache

from publicsuffixlist import PublicSuffixList


@dataclass(frozen=True, slots=True)
class DomainParts:
    registered_domain: str
    top_level_domain: str
    subdomain: str | None


@cache
def _psl() -> PublicSuffixList:
    # The list bundled with the package (ICANN and private sections, as Elasticsearch's
    # registered_domain processor uses); never fetched at run time. Unknown TLDs count as public
    # suffixes, the PSL algorithm's default rule "*".
    return PublicSuffixList()


def warm() -> None:
    """Load the bundled list now (about 0.2 s), e.g. before forking workers that will share it."""
    _psl()


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=1 << 16)
def split_domain(name: str) -> DomainParts | None:
    """``www.example.co.uk`` → (``example.co.uk``, ``co.uk``, ``www``), lower-cased; None for a
    single label, an IP address or a name the list cannot split."""
    host = name.strip().rstrip(".")
    if "." not in host or _is_ip(host):
        return None
    psl = _psl()
    try:
        registered = psl.privatesuffix(host)
        tld = psl.publicsuffix(host)
    except (ValueError, TypeError, UnicodeError):
        return None
    if not registered or not tld:
        return None
    lowered = host.lower()
    sub = lowered[: -len(registered) - 1] if len(lowered) > len(registered) else None
    return DomainParts(registered, tld, sub or None)


def rules() -> tuple[list[str], int]:
    """The bundled list's parsed rules and its longest rule's label count, as the list object
    matches them: for the native mapper, which must split names exactly as this module does."""
    psl = _psl()
    return sorted(psl._publicsuffix), int(psl._maxlabel)

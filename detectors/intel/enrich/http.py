"""A small JSON-over-HTTP client for the enrichment services (stdlib urllib, TLS verified).

Answers of any status come back as :class:`Answer` (status, parsed JSON or None, Retry-After);
only a connection failure raises :class:`ServiceStop`. Nothing here logs or returns a header
value, so a key sent in a header never reaches an error message.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any
from urllib.parse import urlsplit

from shipper.redact import mask_url

from .model import ServiceStop

USER_AGENT = "sysmon-detect-enrich/0.1"
MAX_ANSWER = 16 << 20  # a file report is a few hundred KiB; never read without a bound


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any
    retry_after: float | None = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The services do not redirect their API; following one could send the key elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener() -> urllib.request.OpenerDirector:
    context = ssl.create_default_context()
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirect())


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
    timeout: float = 30.0,
) -> Answer:
    """Send one request; any HTTP status is an :class:`Answer`, an unreachable service a
    :class:`ServiceStop` naming the host (the URL's userinfo and credential parameters masked)."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise ServiceStop(f"not an http(s) URL: {mask_url(url)}")
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("User-Agent", USER_AGENT)
    req.add_header("Accept", "application/json")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with _opener().open(req, timeout=timeout) as resp:
            return Answer(resp.status, _json(resp.read(MAX_ANSWER + 1)))
    except urllib.error.HTTPError as exc:
        try:
            body = _json(exc.read(MAX_ANSWER + 1))
        except (OSError, HTTPException):
            body = None
        return Answer(exc.code, body, _retry_after(exc.headers.get("Retry-After") if exc.headers else None))
    except (urllib.error.URLError, OSError, HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceStop(f"{urlsplit(mask_url(url)).netloc}: unreachable ({reason})") from None


def _json(raw: bytes) -> Any:
    if len(raw) > MAX_ANSWER:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None

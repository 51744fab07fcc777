"""Kibana's saved-objects import API: the request (multipart NDJSON, ``kbn-xsrf``, API key or
basic auth), TLS verification, and what Kibana answered (per-object errors)."""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from shipper.errors import ConfigError

from .objects import KibanaError, SavedObjects


@dataclass(frozen=True, slots=True)
class KibanaAuth:
    """``api_key`` (sent as ``Authorization: ApiKey …``) wins over ``username``/``password``."""

    api_key: str | None = None
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KibanaAuth:
        """``KIBANA_API_KEY``, else ``ES_USERNAME``/``ES_PASSWORD``; each also as ``*_FILE``."""
        env = os.environ if env is None else env

        def secret(name: str) -> str | None:
            if env.get(name):
                return env[name]
            path = env.get(f"{name}_FILE")
            if path:
                try:
                    with open(path, encoding="utf-8") as fh:
                        return fh.read().strip() or None
                except OSError as exc:
                    raise ConfigError(f"cannot read {name}_FILE: {exc.strerror}", source=path) from None
            return None

        api_key = secret("KIBANA_API_KEY")
        if api_key:
            return cls(api_key=api_key)
        return cls(username=secret("ES_USERNAME"), password=secret("ES_PASSWORD"))

    def header(self) -> str | None:
        if self.api_key:
            return f"ApiKey {self.api_key}"
        if self.username:
            if self.password is None:
                raise ConfigError("ES_USERNAME is set but ES_PASSWORD is not")
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
            return f"Basic {token}"
        return None


@dataclass(frozen=True, slots=True)
class ImportRequest:
    url: str
    headers: dict[str, str]
    body: bytes


def import_url(kibana_url: str, space: str | None = None) -> str:
    parts = urlsplit(kibana_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"Kibana URL {kibana_url!r}: expected http(s)://host:port")
    base = kibana_url.rstrip("/")
    if space and space != "default":
        base += f"/s/{quote(space, safe='')}"
    return f"{base}/api/saved_objects/_import?overwrite=true"


def build_import_request(
    objects: SavedObjects,
    kibana_url: str,
    auth: KibanaAuth,
    *,
    space: str | None = None,
    boundary: str | None = None,
) -> ImportRequest:
    """The multipart ``POST`` Kibana's import API expects: one ``file`` part holding the NDJSON."""
    boundary = boundary or f"sysmon-detect-{uuid.uuid4().hex}"
    body = b"".join(
        [
            f"--{boundary}\r\n".encode(),
            b'Content-Disposition: form-data; name="file"; filename="sysmon-detect.ndjson"\r\n',
            b"Content-Type: application/ndjson\r\n\r\n",
            objects.ndjson(),
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    headers = {
        "kbn-xsrf": "sysmon-detect",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Accept": "application/json",
    }
    authorization = auth.header()
    if authorization:
        headers["Authorization"] = authorization
    return ImportRequest(import_url(kibana_url, space), headers, body)


@dataclass(frozen=True, slots=True)
class ImportResult:
    success_count: int
    errors: list[str]


def ssl_context(ca_certs: str | None = None) -> ssl.SSLContext:
    """Certificates and host names verified (system trust store, plus ``ca_certs``)."""
    ctx = ssl.create_default_context()
    if ca_certs:
        try:
            ctx.load_verify_locations(cafile=ca_certs)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load CA certificates: {exc}", source=ca_certs) from None
    return ctx


def _describe(err: Mapping[str, Any]) -> str:
    detail = err.get("error") or {}
    kind = detail.get("type", "error")
    title = err.get("title") or (err.get("meta") or {}).get("title", "")
    text = f"{err.get('type')} {err.get('id')} ({title}): {kind}"
    missing = detail.get("references") or []
    if missing:
        text += " — missing " + ", ".join(f"{r.get('type')} {r.get('id')}" for r in missing)
    if detail.get("message"):
        text += f": {detail['message']}"
    return text


def import_objects(
    objects: SavedObjects,
    kibana_url: str,
    auth: KibanaAuth,
    *,
    space: str | None = None,
    ca_certs: str | None = None,
    timeout: float = 60.0,
) -> ImportResult:
    """Post the objects to Kibana; raises :class:`KibanaError` with what Kibana said when the
    request fails, and returns per-object errors when Kibana imported some but not all."""
    req = build_import_request(objects, kibana_url, auth, space=space)
    request = urllib.request.Request(req.url, data=req.body, headers=req.headers, method="POST")
    context = ssl_context(ca_certs) if req.url.startswith("https:") else None
    where = req.url.split("?", 1)[0]
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")[:500]
        hint = {
            401: " (check KIBANA_API_KEY or ES_USERNAME/ES_PASSWORD)",
            403: " (the user needs the saved-objects management privilege in this space)",
            404: " (wrong URL or space?)",
        }.get(exc.code, "")
        raise KibanaError(f"Kibana answered HTTP {exc.code}{hint}: {body}", source=where) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise KibanaError(
                f"TLS certificate not trusted ({reason.verify_message}); pass --ca-certs", source=where
            ) from None
        raise KibanaError(f"cannot reach Kibana: {reason}", source=where) from None
    except (TimeoutError, OSError) as exc:
        raise KibanaError(f"cannot reach Kibana: {exc}", source=where) from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        raise KibanaError(
            f"Kibana answered something that is not JSON: {raw[:200]!r}", source=where
        ) from None
    errors = [_describe(e) for e in data.get("errors") or []]
    return ImportResult(int(data.get("successCount", 0)), errors)

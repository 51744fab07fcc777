"""Elasticsearch client factory: TLS verified by default, API key or basic auth, CA file.

Secrets come from the environment, files or the configuration and are never printed: use
``ClusterSettings.masked()`` for anything shown to a person.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import TlsError
from elasticsearch import ApiError, AuthenticationException, AuthorizationException, Elasticsearch
from elasticsearch.serializer import (
    CompatibilityModeJsonSerializer,
    CompatibilityModeNdjsonSerializer,
    NdjsonSerializer,
    OrjsonSerializer,
)

from shipper.errors import ClusterError
from shipper.redact import mask_url

MIN_MAJOR = 9


@dataclass(frozen=True)
class ClusterSettings:
    url: str = "http://127.0.0.1:9200"
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    request_timeout: float = 60.0

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, base: ClusterSettings | None = None
    ) -> ClusterSettings:
        """Apply ``ES_URL``, ``ES_API_KEY``, ``ES_USERNAME``/``ES_PASSWORD``, ``ES_CA_CERTS`` and
        ``ES_VERIFY_CERTS`` over ``base`` (defaults when None). ``*_FILE`` variants read the secret
        from a file, as container secrets are mounted."""
        env = os.environ if env is None else env
        s = base or cls()

        def secret(name: str) -> str | None:
            if env.get(name):
                return env[name]
            path = env.get(f"{name}_FILE")
            if path:
                with open(path, encoding="utf-8") as fh:
                    return fh.read().strip()
            return None

        changes: dict[str, Any] = {}
        if env.get("ES_URL"):
            changes["url"] = env["ES_URL"].rstrip("/")
        for field, var in (
            ("api_key", "ES_API_KEY"),
            ("username", "ES_USERNAME"),
            ("password", "ES_PASSWORD"),
        ):
            value = secret(var)
            if value:
                changes[field] = value
        if env.get("ES_CA_CERTS"):
            changes["ca_certs"] = env["ES_CA_CERTS"]
        if env.get("ES_VERIFY_CERTS"):
            changes["verify_certs"] = env["ES_VERIFY_CERTS"].strip().lower() not in (
                "0",
                "false",
                "no",
                "off",
            )
        return replace(s, **changes)

    def masked(self) -> dict[str, Any]:
        """The settings as shown to a person: secrets replaced by ``****``."""
        return {
            "url": mask_url(self.url),
            "api_key": "****" if self.api_key else None,
            "username": self.username,
            "password": "****" if self.password else None,
            "ca_certs": self.ca_certs,
            "verify_certs": self.verify_certs,
            "request_timeout": self.request_timeout,
        }


class _BodyAsIs:
    """An NDJSON serializer that sends a body already serialised as bytes and ending in a
    newline as it is. The client's own copies such a body twice (into a bytearray, then back
    to bytes): for the shipper's bulk requests of up to 5 MiB, that was CPU taken from the
    node on a shared host. Anything else is serialised as the client would."""

    def dumps(self, data: Any) -> bytes:
        if isinstance(data, bytes) and data.endswith(b"\n"):
            return data
        return super().dumps(data)  # type: ignore[misc, no-any-return]


class _Ndjson(_BodyAsIs, NdjsonSerializer):
    pass


class _CompatNdjson(_BodyAsIs, CompatibilityModeNdjsonSerializer):
    pass


class _CompatOrjson(OrjsonSerializer):
    """JSON bodies and answers through orjson: search pages of thousands of hits parse several
    times faster than with the standard library."""

    mimetype = CompatibilityModeJsonSerializer.mimetype


_SERIALIZERS = {
    _Ndjson.mimetype: _Ndjson(),
    _CompatNdjson.mimetype: _CompatNdjson(),
    OrjsonSerializer.mimetype: OrjsonSerializer(),
    _CompatOrjson.mimetype: _CompatOrjson(),
}


_WARNED: set[str] = set()


def _warn_unverified(url: str) -> None:
    """Say once per process and cluster, on stderr, that certificates are not checked."""
    shown = mask_url(url)
    if shown not in _WARNED:
        _WARNED.add(shown)
        print(
            f"warning: TLS certificates of {shown} are NOT verified (ES_VERIFY_CERTS=false or --insecure):"
            " anyone on the path can read and change what is sent",
            file=sys.stderr,
        )


def make_client(settings: ClusterSettings | None = None, **kwargs: Any) -> Elasticsearch:
    """An ``Elasticsearch`` client for ``settings`` (from the environment when None)."""
    s = settings or ClusterSettings.from_env()
    opts: dict[str, Any] = {
        "request_timeout": s.request_timeout,
        "serializers": dict(_SERIALIZERS),
    }
    if s.api_key:
        opts["api_key"] = s.api_key
    elif s.username:
        opts["basic_auth"] = (s.username, s.password or "")
    if s.url.startswith("https"):
        opts["verify_certs"] = s.verify_certs
        if s.ca_certs:
            opts["ca_certs"] = s.ca_certs
        if not s.verify_certs:
            opts["ssl_show_warn"] = False  # one warning of ours instead of one per request
            _warn_unverified(s.url)
    opts.update(kwargs)
    return Elasticsearch(s.url, **opts)


_VERSION = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def parse_version(version: str) -> tuple[int, int, int] | None:
    """``"9.5.4"`` → ``(9, 5, 4)`` (a suffix such as ``-SNAPSHOT`` ignored); None if unreadable."""
    m = _VERSION.match(version.strip())
    if not m:
        return None
    return (int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0))


def check_cluster(client: Elasticsearch, url: str = "") -> str:
    """Return the cluster's Elasticsearch version, or raise ClusterError saying plainly what is
    wrong: unreachable, TLS not trusted, credentials refused, or a version too old.

    Uses ``_nodes/_local`` rather than ``GET /``, which the integration-test distribution lacks.
    """
    where = mask_url(url) if url else "the cluster"
    try:
        resp = client.nodes.info(node_id="_local", metric="_none", filter_path="nodes.*.version")
    except TlsError as exc:
        raise ClusterError(
            f"TLS verification of {where} failed ({exc.message}); give the cluster's CA with "
            "ES_CA_CERTS / --ca-certs (verification stays on)."
        ) from exc
    except TransportConnectionError as exc:
        raise ClusterError(f"cannot connect to {where}: {exc.message}") from exc
    except AuthenticationException as exc:
        raise ClusterError(
            f"{where} refused the credentials (HTTP 401); check ES_API_KEY or ES_USERNAME/ES_PASSWORD"
        ) from exc
    except AuthorizationException as exc:
        raise ClusterError(
            f"{where}: the credentials lack the privilege to read the node version: {exc.message}"
        ) from exc
    except ApiError as exc:
        raise ClusterError(f"{where} answered HTTP {exc.meta.status}: {exc.message}") from exc
    nodes = dict(resp).get("nodes", {})
    versions = [str(n.get("version", "")) for n in nodes.values()]
    if not versions:
        raise ClusterError(f"{where} reported no nodes")
    parsed: list[tuple[tuple[int, ...], str]] = []
    for v in versions:
        key = parse_version(v)
        if key is None:
            raise ClusterError(f"{where} reported an unreadable version {v!r}")
        parsed.append((key, v))
    # The oldest node decides, compared as numbers ("10.0.0" is newer than "9.5.4").
    (major, *_), version = min(parsed)
    if major < MIN_MAJOR:
        raise ClusterError(f"{where} runs Elasticsearch {version}; this tool needs {MIN_MAJOR}.x or later")
    return version

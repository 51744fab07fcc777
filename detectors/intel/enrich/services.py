"""The enrichment services, as a registry: how to ask each one about hashes and read its answer.

* ``virustotal`` — API v3 ``GET /files/{hash}`` with ``x-apikey``; ``data.attributes.
  last_analysis_stats.malicious`` at least ``min_detections`` is malicious (score: the share of
  engines that detect it), fewer is unknown; ``404 NotFoundError`` unknown; ``429
  QuotaExceededError`` stops the service (minute, daily or monthly quota); 401/403 stop it too.
* ``malwarebazaar`` — ``POST /`` form ``query=get_info&hash=…`` with ``Auth-Key``;
  ``query_status: ok`` lists a malware sample (malicious, score 80), ``hash_not_found`` unknown.
* ``circl`` — CIRCL hashlookup ``GET /lookup/{algo}/{hash}`` (``POST /bulk/{algo}`` with
  ``{"hashes": […]}`` for several): a known file is known-good (score: ``hashlookup:trust``)
  unless it carries ``KnownMalicious``; 404 or a ``message`` entry in a bulk answer is unknown.

Every lookup returns one :class:`Verdict` per hash it could judge; a hash it could not judge is
left out (looked up again next run). Error texts come from the services' own ``error.code`` /
``query_status`` / ``message`` fields, with the key scrubbed out should a service echo it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from detectors.intel.model import HASH_LENGTHS

from .http import Answer, request
from .model import Limits, LookupError_, ServiceSettings, ServiceStop, Verdict, VerdictKind

MASK = "****"
MALWAREBAZAAR_SCORE = 80  # MalwareBazaar only lists vetted malware samples
CIRCL_MALICIOUS_SCORE = 70
CIRCL_BATCH = 100

Lookup = Callable[[ServiceSettings, Sequence[str], str], list[Verdict]]


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    title: str
    default_url: str
    key_env: str | None  # None: the service needs no key
    limits: Limits
    batch: int  # hashes per request
    lookup: Lookup


def _scrub(text: str, settings: ServiceSettings) -> str:
    key = settings.key.reveal() if settings.key is not None else ""
    return text.replace(key, MASK) if key else text


def _headers(settings: ServiceSettings, name: str) -> dict[str, str]:
    return {name: settings.key.reveal()} if settings.key is not None else {}


def _epoch_iso(value: Any) -> str | None:
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def _space_iso(value: Any) -> str | None:
    """``2024-01-02 03:04:05`` (UTC, as abuse.ch writes it) → ISO 8601."""
    if isinstance(value, str) and len(value) >= 19:
        return value[:10] + "T" + value[11:19] + "Z"
    return None


def _stop_or_fail(answer: Answer, code: str, message: str, settings: ServiceSettings, who: str) -> None:
    """Raise for a status that stops the service (429, 401, 403) or fails this hash."""
    text = _scrub(f"{who}: HTTP {answer.status} {code}: {message}".rstrip(": "), settings)
    if answer.status == 429:
        raise ServiceStop(text, quota=True, retry_after=answer.retry_after)
    if answer.status in (401, 403):
        raise ServiceStop(text)
    raise LookupError_(text)


# --------------------------------------------------------------------------------- VirusTotal


def _vt_verdict(settings: ServiceSettings, h: str, body: Any, now: str) -> Verdict:
    try:
        attrs = body["data"]["attributes"]
        stats = attrs["last_analysis_stats"]
        malicious = int(stats.get("malicious", 0))
    except (KeyError, TypeError, ValueError):
        raise LookupError_(f"virustotal: {h}: no data.attributes.last_analysis_stats") from None
    judged = sum(int(stats.get(k, 0)) for k in ("malicious", "suspicious", "undetected", "harmless"))
    sha256 = str(attrs.get("sha256") or body["data"].get("id") or h)
    label = (attrs.get("popular_threat_classification") or {}).get("suggested_threat_label")
    verdict: VerdictKind = "malicious" if malicious >= settings.min_detections else "unknown"
    return Verdict(
        service="virustotal",
        hash=h,
        verdict=verdict,
        checked_at=now,
        score=round(100 * malicious / judged) if judged else 0,
        reference=f"https://www.virustotal.com/gui/file/{sha256}",
        malware=str(label) if label else None,
        description=f"VirusTotal: {malicious} of {judged} engines detect it",
        first_seen=_epoch_iso(attrs.get("first_submission_date")),
        last_seen=_epoch_iso(attrs.get("last_analysis_date")),
        detail=(("detections", str(malicious)), ("engines", str(judged))),
    )


def virustotal(settings: ServiceSettings, hashes: Sequence[str], now: str) -> list[Verdict]:
    out: list[Verdict] = []
    for h in hashes:
        answer = request(
            "GET",
            f"{settings.url.rstrip('/')}/files/{h}",
            headers=_headers(settings, "x-apikey"),
            timeout=settings.timeout,
        )
        if answer.status == 200:
            out.append(_vt_verdict(settings, h, answer.body, now))
            continue
        error = answer.body.get("error") if isinstance(answer.body, dict) else None
        code = str(error.get("code", "")) if isinstance(error, dict) else ""
        message = str(error.get("message", "")) if isinstance(error, dict) else ""
        if answer.status == 404 and code in ("NotFoundError", ""):
            out.append(Verdict("virustotal", h, "unknown", now, description="VirusTotal: not found"))
            continue
        _stop_or_fail(answer, code, message, settings, "virustotal")
    return out


# ------------------------------------------------------------------------------ MalwareBazaar

_MB_STOP = frozenset({"unknown_auth_key", "no_api_key", "user_blacklisted", "unauthorized"})


def _mb_verdict(h: str, body: dict[str, Any], now: str) -> Verdict:
    data = body.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        raise LookupError_(f"malwarebazaar: {h}: query_status ok without data")
    sample = data[0]
    sha256 = str(sample.get("sha256_hash") or h)
    tags = sample.get("tags") or []
    name = sample.get("file_name") or ""
    return Verdict(
        service="malwarebazaar",
        hash=h,
        verdict="malicious",
        checked_at=now,
        score=MALWAREBAZAAR_SCORE,
        reference=f"https://bazaar.abuse.ch/sample/{sha256}/",
        malware=str(sample["signature"]) if sample.get("signature") else None,
        description=f"MalwareBazaar: {sample.get('file_type') or 'sample'} {name}".rstrip(),
        first_seen=_space_iso(sample.get("first_seen")),
        last_seen=_space_iso(sample.get("last_seen")),
        detail=(("tags", ",".join(str(t) for t in tags if t)),) if tags else (),
    )


def malwarebazaar(settings: ServiceSettings, hashes: Sequence[str], now: str) -> list[Verdict]:
    out: list[Verdict] = []
    headers = {"Content-Type": "application/x-www-form-urlencoded", **_headers(settings, "Auth-Key")}
    for h in hashes:
        answer = request(
            "POST",
            settings.url,
            headers=headers,
            data=urlencode({"query": "get_info", "hash": h}).encode(),
            timeout=settings.timeout,
        )
        status = str(answer.body.get("query_status", "")) if isinstance(answer.body, dict) else ""
        if answer.status == 200 and status == "ok":
            out.append(_mb_verdict(h, answer.body, now))
        elif answer.status == 200 and status == "hash_not_found":
            out.append(Verdict("malwarebazaar", h, "unknown", now, description="MalwareBazaar: not found"))
        elif status in _MB_STOP:
            raise ServiceStop(f"malwarebazaar: HTTP {answer.status} query_status {status}")
        elif answer.status == 200:
            raise LookupError_(f"malwarebazaar: {h}: query_status {status or 'missing'}")
        else:
            _stop_or_fail(answer, status, "", settings, "malwarebazaar")
    return out


# -------------------------------------------------------------------------- CIRCL hashlookup

_CIRCL_KEYS = {"md5": "MD5", "sha1": "SHA-1", "sha256": "SHA-256"}


def _circl_verdict(h: str, entry: dict[str, Any], algo: str, now: str) -> Verdict:
    name, source = entry.get("FileName"), entry.get("source") or entry.get("db")
    trust = entry.get("hashlookup:trust")
    reference = f"https://hashlookup.circl.lu/lookup/{algo}/{h}"
    detail = tuple((k, str(v)) for k, v in (("source", source), ("file_name", name)) if v)
    if entry.get("KnownMalicious"):
        return Verdict("circl", h, "malicious", now, score=CIRCL_MALICIOUS_SCORE, reference=reference,
                       description=f"CIRCL hashlookup: known malicious ({entry['KnownMalicious']})",
                       detail=detail)  # fmt: skip
    return Verdict("circl", h, "known_good", now, score=int(trust) if isinstance(trust, int) else None,
                   reference=reference, description=f"CIRCL hashlookup: known file {name or ''}".rstrip(),
                   detail=detail)  # fmt: skip


def _circl_one(settings: ServiceSettings, h: str, algo: str, now: str) -> Verdict:
    answer = request("GET", f"{settings.url.rstrip('/')}/lookup/{algo}/{h}", timeout=settings.timeout)
    if answer.status == 200 and isinstance(answer.body, dict):
        return _circl_verdict(h, answer.body, algo, now)
    if answer.status == 404:
        return Verdict("circl", h, "unknown", now, description="CIRCL hashlookup: not found")
    message = str(answer.body.get("message", "")) if isinstance(answer.body, dict) else ""
    _stop_or_fail(answer, "", message, settings, "circl")
    raise AssertionError("unreachable")


def _circl_bulk(settings: ServiceSettings, hashes: Sequence[str], algo: str, now: str) -> list[Verdict]:
    answer = request(
        "POST",
        f"{settings.url.rstrip('/')}/bulk/{algo}",
        headers={"Content-Type": "application/json"},
        data=json.dumps({"hashes": list(hashes)}).encode(),
        timeout=settings.timeout,
    )
    if answer.status != 200 or not isinstance(answer.body, list):
        message = str(answer.body.get("message", "")) if isinstance(answer.body, dict) else ""
        _stop_or_fail(answer, "", message or "not a list", settings, "circl")
    found: dict[str, dict[str, Any]] = {}
    for entry in answer.body:
        value = entry.get(_CIRCL_KEYS[algo]) if isinstance(entry, dict) else None
        if isinstance(value, str):
            found[value.lower()] = entry
    return [
        _circl_verdict(h, found[h], algo, now)
        if h in found
        else Verdict("circl", h, "unknown", now, description="CIRCL hashlookup: not found")
        for h in hashes
    ]


def circl(settings: ServiceSettings, hashes: Sequence[str], now: str) -> list[Verdict]:
    by_algo: dict[str, list[str]] = {}
    for h in hashes:
        by_algo.setdefault(HASH_LENGTHS[len(h)], []).append(h)
    out: list[Verdict] = []
    for algo, group in by_algo.items():
        if len(group) == 1:
            out.append(_circl_one(settings, group[0], algo, now))
        else:
            out.extend(_circl_bulk(settings, group, algo, now))
    return out


SERVICES: dict[str, Service] = {
    "circl": Service("circl", "CIRCL hashlookup", "https://hashlookup.circl.lu", None,
                     Limits(per_minute=60), CIRCL_BATCH, circl),
    "malwarebazaar": Service("malwarebazaar", "MalwareBazaar", "https://mb-api.abuse.ch/api/v1/",
                             "MALWAREBAZAAR_API_KEY", Limits(per_minute=60), 1, malwarebazaar),
    "virustotal": Service("virustotal", "VirusTotal", "https://www.virustotal.com/api/v3", "VT_API_KEY",
                          Limits(per_minute=4, per_day=500), 1, virustotal),
}  # fmt: skip
"""In the order they are asked: the free known-good lookup first, so its answers spare the
quotas of the others."""

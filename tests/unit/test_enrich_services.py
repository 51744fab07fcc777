"""The enrichment services' clients against loopback servers answering in each service's
documented format: verdicts, not-found, errors, 429 and rejected keys; keys never in messages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from detectors.intel.config import Secret
from detectors.intel.enrich.model import Limits, LookupError_, ServiceSettings, ServiceStop
from detectors.intel.enrich.services import SERVICES
from tests.enrich_services import FakeServices, serving

BAD, GOOD, NONE, MAL = "aa" * 32, "bb" * 32, "cc" * 32, "dd" * 32
NOW = "2026-01-01T00:00:00.000Z"


@pytest.fixture
def fake() -> Iterator[FakeServices]:
    with serving(FakeServices()) as f:
        yield f


def _settings(fake: FakeServices, name: str, key: str | None = None) -> ServiceSettings:
    path = {"virustotal": "/vt/api/v3", "malwarebazaar": "/mb/api/v1/", "circl": "/circl"}[name]
    default_key = {"virustotal": fake.vt_key, "malwarebazaar": fake.mb_key}.get(name)
    chosen = key or default_key
    return ServiceSettings(name, fake.base + path, Limits(60), Secret(chosen) if chosen else None)


def test_virustotal_verdicts_from_last_analysis_stats(fake: FakeServices) -> None:
    fake.vt_files = {BAD: {"malicious": 40, "undetected": 20}, GOOD: {"malicious": 2, "undetected": 60}}
    got = SERVICES["virustotal"].lookup(_settings(fake, "virustotal"), [BAD, GOOD, NONE], NOW)
    by = {v.hash: v for v in got}
    assert by[BAD].verdict == "malicious" and by[BAD].score == round(100 * 40 / 60)
    assert by[BAD].reference == f"https://www.virustotal.com/gui/file/{BAD}"
    assert by[BAD].malware == "trojan.agenttesla/msil" and by[BAD].first_seen == "2023-11-14T22:13:20Z"
    assert dict(by[BAD].detail) == {"detections": "40", "engines": "60"}
    assert by[GOOD].verdict == "unknown"  # 2 engines: under the default 3 detections
    assert by[NONE].verdict == "unknown" and by[NONE].description == "VirusTotal: not found"
    assert [r.headers["x-apikey"] for r in fake.requests] == [fake.vt_key] * 3
    assert [r.path for r in fake.requests] == [f"/vt/api/v3/files/{h}" for h in (BAD, GOOD, NONE)]


def test_virustotal_429_stops_with_retry_after_and_401_without_the_key(fake: FakeServices) -> None:
    fake.vt_quota, fake.retry_after = 0, 120
    with pytest.raises(ServiceStop) as stop:
        SERVICES["virustotal"].lookup(_settings(fake, "virustotal"), [BAD], NOW)
    assert stop.value.quota and stop.value.retry_after == 120.0
    assert "429 QuotaExceededError" in stop.value.message
    wrong = "wrong-key-that-must-not-show"
    with pytest.raises(ServiceStop) as refused:
        SERVICES["virustotal"].lookup(_settings(fake, "virustotal", wrong), [BAD], NOW)
    assert not refused.value.quota and "401 WrongCredentialsError" in refused.value.message
    assert wrong not in str(refused.value) and wrong not in repr(_settings(fake, "virustotal", wrong))


def test_virustotal_transient_error_fails_only_that_hash(fake: FakeServices) -> None:
    fake.vt_broken = {BAD}
    with pytest.raises(LookupError_, match="500 TransientError"):
        SERVICES["virustotal"].lookup(_settings(fake, "virustotal"), [BAD], NOW)


def test_malwarebazaar_get_info(fake: FakeServices) -> None:
    fake.mb_samples = {MAL: {}}
    got = SERVICES["malwarebazaar"].lookup(_settings(fake, "malwarebazaar"), [MAL, NONE], NOW)
    assert [(v.hash, v.verdict) for v in got] == [(MAL, "malicious"), (NONE, "unknown")]
    assert got[0].malware == "AgentTesla" and got[0].first_seen == "2024-01-02T03:04:05Z"
    assert got[0].reference == f"https://bazaar.abuse.ch/sample/{MAL}/"
    assert fake.requests[0].body.decode() == f"query=get_info&hash={MAL}"
    assert fake.requests[0].headers["auth-key"] == fake.mb_key
    with pytest.raises(ServiceStop, match="unknown_auth_key") as stop:
        SERVICES["malwarebazaar"].lookup(_settings(fake, "malwarebazaar", "nope"), [MAL], NOW)
    assert not stop.value.quota


def test_circl_single_and_bulk(fake: FakeServices) -> None:
    fake.circl_known = {GOOD: {}, MAL: {"KnownMalicious": "malshare"}}
    (one,) = SERVICES["circl"].lookup(_settings(fake, "circl"), [GOOD], NOW)
    assert one.verdict == "known_good" and one.score == 80 and dict(one.detail)["source"] == "NSRL"
    got = SERVICES["circl"].lookup(_settings(fake, "circl"), [GOOD, NONE, MAL], NOW)
    assert [(v.hash, v.verdict) for v in got] == [(GOOD, "known_good"), (NONE, "unknown"), (MAL, "malicious")]
    assert [r.path for r in fake.requests] == [f"/circl/lookup/sha256/{GOOD}", "/circl/bulk/sha256"]
    assert "x-apikey" not in fake.requests[1].headers and "auth-key" not in fake.requests[1].headers


def test_an_unreachable_service_stops_it() -> None:
    settings = ServiceSettings("circl", "http://127.0.0.1:9/circl", Limits(60), timeout=2)
    with pytest.raises(ServiceStop, match="unreachable") as stop:
        SERVICES["circl"].lookup(settings, [GOOD], NOW)
    assert not stop.value.quota

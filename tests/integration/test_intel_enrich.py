"""``sysmon-detect intel enrich`` against loopback stand-ins of VirusTotal, MalwareBazaar and
CIRCL hashlookup and the real node: unknown hashes looked up once, cached, turned into feeds that
the intel rules alert on; budgets kept across runs; 429s stop one service and not the others."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from elasticsearch import Elasticsearch

from detectors.cli import main
from detectors.intel.config import Secret
from detectors.intel.enrich.hashes import unknown_hashes
from detectors.intel.enrich.model import Limits, ServiceSettings
from detectors.intel.enrich.run import RunOptions, RunReport, enrich
from detectors.intel.indices import setup_intel
from detectors.intel.loader import feed_from_location, load_feed
from detectors.intel.lookup import is_listed
from shipper.es import ClusterSettings
from tests.enrich_services import FakeServices, serving
from tests.integration.test_detect_support import alerts, cli_env, index_docs, proc_event, ts_ago

A, B, C, D, E, F, G = (c * 64 for c in "abcdef0")  # F: a module; G: an event older than --since


@pytest.fixture
def fake() -> Iterator[FakeServices]:
    with serving(FakeServices()) as f:
        yield f


def _events(es: Elasticsearch, prefix: str) -> None:
    docs = [proc_event("WS01", ts_ago(1), f"{{P-{h[:4]}}}", None, f"C:\\t\\{h[:4]}.exe",
                       extra={"process.hash.sha256": h}) for h in (A, B, C, D, E, A)]  # fmt: skip
    docs.append(proc_event("WS02", ts_ago(2), "{P-9}", None, "C:\\t\\host.exe", code="7",
                           extra={"file.path": "C:\\t\\evil.dll", "file.hash.sha256": F}))  # fmt: skip
    docs.append(
        proc_event("WS02", ts_ago(40), "{P-8}", None, "C:\\t\\old.exe", extra={"process.hash.sha256": G})
    )
    index_docs(es, prefix, docs)


def _feeds(es: Elasticsearch, prefix: str, tmp_path: Path) -> None:
    setup_intel(es, prefix)
    for name, kind, value in (("bad", "intel", D), ("good", "allow", E)):
        path = tmp_path / f"{name}.txt"
        path.write_text(value + "\n")
        feed = feed_from_location(str(path), name=name, kind="intel" if kind == "intel" else "allow")
        assert load_feed(es, feed, prefix=prefix, cache_dir=tmp_path / "c").status == "loaded"
    es.indices.refresh(index=f"{prefix}-intel-*")


def _dump(es: Elasticsearch, prefix: str) -> str:
    es.indices.refresh(index=f"{prefix}-*")
    hits = es.search(index=f"{prefix}-*", size=10_000, query={"match_all": {}})["hits"]["hits"]
    return json.dumps([h["_source"] for h in hits])


def _enrich(cli: CliRunner, env: dict[str, str], fake: FakeServices, *args: str) -> Any:
    return cli.invoke(main, ["intel", "enrich", *fake.urls(), *args], env=env)


def test_unknown_hashes_enriched_once_cached_and_alerted(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path, fake: FakeServices
) -> None:
    fake.vt_files = {A: {"malicious": 30, "undetected": 30}, B: {"malicious": 50}, F: {"malicious": 9}}
    fake.circl_known = {B: {}}
    fake.mb_samples = {F: {}}
    cli = CliRunner()
    env = cli_env(es_settings, prefix) | {"VT_API_KEY": fake.vt_key, "MALWAREBAZAAR_API_KEY": fake.mb_key}
    assert cli.invoke(main, ["setup"], env=env).exit_code == 0
    _feeds(es, prefix, tmp_path)
    _events(es, prefix)
    now = datetime.now(UTC)
    assert sorted(unknown_hashes(es, prefix, since=timedelta(days=30), now=now)) == [A, B, C, F]
    assert G in set(unknown_hashes(es, prefix, since=None, now=now))
    paged = list(unknown_hashes(es, prefix, since=timedelta(days=30), now=now, page=1))  # by after_key
    assert sorted(paged) == [A, B, C, F]

    r = _enrich(cli, env, fake, "--unknown", "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    s = got["services"]
    outcome = [got[k] for k in ("hashes", "malicious", "known_good", "unknown", "pending")]
    assert outcome == [4, 2, 1, 1, 0] and got["feed_errors"] == []
    counts = ("requests", "looked_up", "malicious", "known_good", "unknown", "skipped_known", "cached")
    assert [s["circl"][k] for k in counts] == [1, 4, 0, 1, 3, 0, 0]  # one bulk request
    assert [s["malwarebazaar"][k] for k in counts] == [3, 3, 1, 0, 2, 1, 0]  # B is known-good
    assert [s["virustotal"][k] for k in counts] == [2, 2, 1, 0, 1, 2, 0]  # B and F judged already
    assert sorted(r.path.rsplit("/", 1)[-1] for r in fake.requests if r.path.startswith("/vt/")) == [A, C]
    assert s["virustotal"]["feeds"] == {"enrich-virustotal": 1}
    assert (s["virustotal"]["used_today"], s["virustotal"]["per_day"]) == (2, 500)
    assert s["circl"]["feeds"] == {"enrich-circl-allow": 1}
    assert fake.vt_key not in r.output + r.stderr and fake.mb_key not in r.output + r.stderr

    (vt,) = [d for d in is_listed(es, A, prefix=prefix)]
    ind = vt["threat"]["indicator"]
    intel = vt["intel"]
    assert (intel["feed"], intel["kind"], intel["confidence_score"]) == ("enrich-virustotal", "intel", 50)
    assert ind["provider"] == "VirusTotal" and ind["confidence"] == "Medium"
    assert ind["reference"] == f"https://www.virustotal.com/gui/file/{A}"
    assert vt["threat"]["software"]["name"] == "trojan.agenttesla/msil"
    assert [(d["intel"]["feed"], d["intel"]["kind"]) for d in is_listed(es, B, prefix=prefix)] == [
        ("enrich-circl-allow", "allow")
    ]

    before = len(fake.requests)
    r = _enrich(cli, env, fake, "--unknown")  # every verdict is fresh: nothing asked, nothing reloaded
    assert r.exit_code == 0, r.output
    assert len(fake.requests) == before
    summary = "summary: hashes=4 malicious=2 known_good=1 unknown=1 pending=0 requests=0 looked_up=0 cached=9"
    assert summary in r.output
    assert "virustotal: ok requests=0 looked_up=0 cached=2 malicious=1 known_good=0 unknown=1" in r.output
    assert "skipped_quota=0 skipped_known=2 errors=0 today=2/500\n" in r.output
    assert "feeds=" not in r.output

    r = cli.invoke(main, ["run", "--rule", "intel-hash-executed", "--ingest-delay", "0", "--json"], env=env)
    assert r.exit_code == 0, r.output
    got_alerts = alerts(es, prefix, "intel-hash-executed")
    by_hash = {a["process"]["hash"]["sha256"]: a for a in got_alerts}
    assert sorted(by_hash) == [A, D] and len(got_alerts) == 3  # A ran twice
    enrichment = by_hash[A]["threat"]["enrichments"][0]
    assert enrichment["matched"]["atomic"] == A
    assert enrichment["indicator"]["reference"] == f"https://www.virustotal.com/gui/file/{A}"
    assert fake.vt_key not in _dump(es, prefix) and fake.mb_key not in _dump(es, prefix)


class Clock:
    """A clock the budget's waits advance: no test ever sleeps."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _vt(fake: FakeServices, limits: Limits) -> ServiceSettings:
    return ServiceSettings("virustotal", f"{fake.base}/vt/api/v3", limits, Secret(fake.vt_key))


def _run(es: Elasticsearch, prefix: str, hashes: list[str], settings: list[ServiceSettings], clock: Clock,
         **opts: Any) -> RunReport:  # fmt: skip
    return enrich(es, prefix, hashes, settings, RunOptions(**opts), clock=clock, sleep=clock.sleep)


def test_daily_quota_holds_across_runs_and_resumes_the_next_utc_day(
    es: Elasticsearch, prefix: str, fake: FakeServices
) -> None:
    setup_intel(es, prefix)
    hashes = [c * 64 for c in "12345"]
    fake.vt_files = {h: {"malicious": 10} for h in hashes}
    clock = Clock(datetime(2026, 3, 1, 22, 0, tzinfo=UTC))
    vt = [_vt(fake, Limits(per_minute=100, per_day=3))]
    rep = _run(es, prefix, hashes, vt, clock).services["virustotal"]
    assert (rep.status, rep.looked_up, rep.skipped_quota) == ("quota", 3, 2)
    assert rep.reason == "virustotal: daily quota used (3/3, resets 00:00 UTC)"
    clock.now += 3600  # the next cron run, same UTC day: nothing sent
    rep = _run(es, prefix, hashes, vt, clock).services["virustotal"]
    assert (rep.status, rep.cached, rep.looked_up, rep.skipped_quota) == ("quota", 3, 0, 2)
    assert fake.count("/vt/") == 3
    clock.now += 7200  # 01:00 UTC the next day
    rep = _run(es, prefix, hashes, vt, clock).services["virustotal"]
    assert (rep.status, rep.cached, rep.looked_up, rep.malicious, fake.count("/vt/")) == ("ok", 3, 2, 5, 5)
    assert rep.feeds == {"enrich-virustotal": 2}


def test_rate_limit_waits_within_max_wait_then_stops(
    es: Elasticsearch, prefix: str, fake: FakeServices
) -> None:
    setup_intel(es, prefix)
    hashes = [c * 64 for c in "6789"]
    clock = Clock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    report = _run(es, prefix, hashes, [_vt(fake, Limits(per_minute=2))], clock, max_wait=45.0)
    rep = report.services["virustotal"]
    assert (report.unknown, report.pending) == (3, 1)
    # two tokens at once, the third after 30 s; the fourth would need 60 s, past --max-wait
    assert (rep.looked_up, rep.unknown, rep.skipped_quota, rep.status) == (3, 3, 1, "quota")
    assert "rate limit (2/min) would wait past the run's --max-wait" in str(rep.reason)
    assert sum(clock.slept) == pytest.approx(30.0)


def test_a_429_stops_one_service_the_others_go_on_and_blocks_until_retry_after(
    es: Elasticsearch, prefix: str, fake: FakeServices
) -> None:
    setup_intel(es, prefix)
    hashes = [c * 64 for c in "89ab"]
    fake.circl_fail, fake.vt_quota, fake.retry_after = 429, 2, 3600
    circl = ServiceSettings("circl", f"{fake.base}/circl", Limits(60))
    clock = Clock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    report = _run(es, prefix, hashes, [circl, _vt(fake, Limits(100, 500))], clock)
    c, v = report.services["circl"], report.services["virustotal"]
    assert (c.status, c.requests, c.skipped_quota) == ("quota", 1, 4)
    assert c.reason == "circl: HTTP 429 : Too many requests"
    assert (v.status, v.looked_up, v.skipped_quota) == ("quota", 2, 2)
    assert v.reason == "virustotal: HTTP 429 QuotaExceededError: Quota exceeded"
    clock.now += 600  # the next run: VirusTotal said Retry-After 3600, so nothing is sent to it
    sent = fake.count("/vt/")
    v = _run(es, prefix, hashes, [_vt(fake, Limits(100, 500))], clock).services["virustotal"]
    assert (v.status, v.cached, v.skipped_quota, fake.count("/vt/")) == ("quota", 2, 2, sent)
    assert "blocked after a 429 until 13:00:00Z" in str(v.reason)
    clock.now += 3600
    fake.vt_quota = None
    v = _run(es, prefix, hashes, [_vt(fake, Limits(100, 500))], clock).services["virustotal"]
    assert (v.status, v.looked_up, v.cached) == ("ok", 2, 2)


def test_verdicts_age_out(es: Elasticsearch, prefix: str, fake: FakeServices) -> None:
    setup_intel(es, prefix)
    bad, unseen = "12" * 32, "34" * 32
    fake.vt_files = {bad: {"malicious": 10}}
    clock = Clock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    vt = [_vt(fake, Limits(100, 500))]

    def run() -> tuple[int, int]:
        rep = _run(es, prefix, [bad, unseen], vt, clock).services["virustotal"]
        return rep.looked_up, rep.cached

    assert run() == (2, 0)
    clock.now += 2 * 3600
    assert run() == (0, 2)
    clock.now += 23 * 3600  # 25 h: "not found" is asked again, the malicious verdict holds (7 d)
    assert run() == (1, 1)
    clock.now += 7 * 86400
    assert run() == (2, 0)


def test_keys_never_printed_stored_or_logged(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path, fake: FakeServices,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    setup_intel(es, prefix)
    wrong = "wrong-vt-key-5f1e2d3c4b"
    key_file = tmp_path / "vt.key"
    key_file.write_text(wrong + "\n")
    cli = CliRunner()
    env = cli_env(es_settings, prefix) | {"MALWAREBAZAAR_API_KEY": "wrong-mb-key-0a9b8c"}
    r = cli.invoke(
        main, ["--debug", "intel", "enrich", *fake.urls(), "--vt-key-file", str(key_file), A], env=env
    )
    assert r.exit_code == 1, r.output
    assert "virustotal: failed" in r.output and "401 WrongCredentialsError" in r.output
    assert "malwarebazaar: failed" in r.output and "query_status unknown_auth_key" in r.output
    assert fake.requests[-1].headers["x-apikey"] == wrong  # it was sent, to the service only
    for text in (r.output, r.stderr, caplog.text, _dump(es, prefix)):
        assert wrong not in text and "wrong-mb-key-0a9b8c" not in text
    r = cli.invoke(main, ["intel", "enrich", "--service", "virustotal", A], env=cli_env(es_settings, prefix))
    assert r.exit_code == 2 and "virustotal: no key: set VT_API_KEY or --vt-key-file" in r.output


def test_a_transient_error_leaves_the_hash_pending_and_the_service_going(
    es: Elasticsearch, prefix: str, fake: FakeServices
) -> None:
    setup_intel(es, prefix)
    flaky, bad = "56" * 32, "78" * 32
    fake.vt_files, fake.vt_broken = {flaky: {"malicious": 10}, bad: {"malicious": 10}}, {flaky}
    clock = Clock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    report = _run(es, prefix, [flaky, bad], [_vt(fake, Limits(100, 500))], clock)
    rep = report.services["virustotal"]
    assert (rep.status, rep.errors, rep.looked_up, report.malicious, report.pending) == ("ok", 1, 1, 1, 1)
    assert rep.last_error == "virustotal: HTTP 500 TransientError: Transient error"
    fake.vt_broken = set()
    clock.now += 60  # not cached: the next run asks again
    report = _run(es, prefix, [flaky, bad], [_vt(fake, Limits(100, 500))], clock)
    assert (report.services["virustotal"].looked_up, report.malicious, report.pending) == (1, 2, 0)

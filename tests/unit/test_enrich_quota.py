"""The request budget rule (token bucket per minute, count per UTC day, block after 429) and the
service selection (keys from the environment or files, URLs, limits)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from detectors.intel.enrich.model import Limits
from detectors.intel.enrich.options import parse_limit, select
from detectors.intel.enrich.quota import Bucket, decide, new_bucket
from shipper.errors import ConfigError

T0 = datetime(2026, 3, 1, 23, 59, 0, tzinfo=UTC).timestamp()


def _spend(bucket: Bucket, limits: Limits, now: float, n: int) -> Bucket:
    for _ in range(n):
        d = decide(bucket, limits, now)
        assert d.wait == 0 and d.exhausted is None
        bucket = d.bucket
    return bucket


def test_per_minute_bucket_refills_evenly() -> None:
    vt = Limits(per_minute=4, per_day=500)
    b = _spend(new_bucket(vt, T0), vt, T0, 4)
    d = decide(b, vt, T0)
    assert d.exhausted is None and d.wait == pytest.approx(15.0)
    assert decide(b, vt, T0 + 15).wait == 0  # one token back after 15 s
    assert decide(b, vt, T0 + 7.5).wait == pytest.approx(7.5)


def test_daily_quota_counts_across_runs_and_resets_at_utc_midnight() -> None:
    small = Limits(per_minute=100, per_day=3)
    b = _spend(new_bucket(small, T0), small, T0, 3)
    later = Bucket.from_doc(b.doc("virustotal"))  # what the next cron run reads back
    d = decide(later, small, T0 + 30)
    assert d.exhausted == "daily quota used (3/3, resets 00:00 UTC)"
    assert decide(later, small, T0 + 61).exhausted is None  # 00:00:01 the next day
    assert decide(later, small, T0 + 61).bucket.day_used == 1


def test_blocked_after_429_until_retry_after() -> None:
    lim = Limits(per_minute=4)
    b = Bucket(tokens=4, updated=T0, day="2026-03-01", blocked_until=T0 + 60)
    assert "blocked after a 429 until 00:00:00Z" in str(decide(b, lim, T0 + 10).exhausted)
    assert decide(b, lim, T0 + 60).exhausted is None


def test_limits_are_checked() -> None:
    assert parse_limit("4/500") == Limits(4.0, 500) and parse_limit("0.5") == Limits(0.5, None)
    for bad in ("x", "4/x", "0", "-1/3"):
        with pytest.raises(ConfigError, match="PER_MINUTE"):
            parse_limit(bad)


def test_selection_keys_from_env_or_file_disabled_without(tmp_path: Path) -> None:
    chosen = select((), key_files={}, env={})
    assert [s.name for s in chosen.settings] == ["circl"]
    assert chosen.disabled == {
        "malwarebazaar": "no key: set MALWAREBAZAAR_API_KEY or --malwarebazaar-key-file",
        "virustotal": "no key: set VT_API_KEY or --vt-key-file",
    }
    with pytest.raises(ConfigError, match="virustotal: no key"):
        select(("virustotal",), key_files={}, env={})
    key = tmp_path / "vt.key"
    key.write_text("  file-key-123\n")
    got = select(("virustotal", "malwarebazaar"), key_files={"virustotal": key},
                 env={"VT_API_KEY": "env-key", "MALWAREBAZAAR_API_KEY": "mb-env"},
                 urls=["virustotal=http://127.0.0.1:1/vt"], limits=["virustotal=2/10"])  # fmt: skip
    vt, mb = got.settings
    assert vt.key is not None and vt.key.reveal() == "file-key-123"  # the file wins over the env
    assert mb.key is not None and mb.key.reveal() == "mb-env"
    assert (vt.url, vt.limits) == ("http://127.0.0.1:1/vt", Limits(2, 10))
    assert "file-key-123" not in repr(got) and "mb-env" not in repr(got)
    two = tmp_path / "two.key"
    two.write_text("a b\n")
    with pytest.raises(ConfigError, match=r"--vt-key-file .*two.key: expected one key on one line") as err:
        select(("virustotal",), key_files={"virustotal": two}, env={})
    assert "a b" not in str(err.value)
    with pytest.raises(ConfigError, match="--url 'nope=x': expected SERVICE=VALUE"):
        select((), key_files={}, env={}, urls=["nope=x"])

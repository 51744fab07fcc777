from __future__ import annotations

import pytest

from detectors.intel.config import loads_feeds
from detectors.intel.guard import CoverageGuard
from shipper.errors import ConfigError


@pytest.mark.parametrize(
    ("total", "invalid", "previous", "reason"),
    [
        (0, 0, 0, "the feed yielded no indicators"),
        (0, 7, 500, "the feed yielded no indicators (7 invalid records)"),
        (100, 13_530, 0, "13530 of 13630 records are invalid"),
        (9, 0, 100, "9 indicators, fewer than 10% of the last good generation's 100"),
    ],
)
def test_refusals_say_why(total: int, invalid: int, previous: int, reason: str) -> None:
    problem = CoverageGuard().problem(total=total, invalid=invalid, previous_total=previous)
    assert problem is not None and problem.startswith(reason)


@pytest.mark.parametrize(
    ("total", "invalid", "previous"),
    [(1, 0, 0), (10, 0, 100), (100, 100, 0), (5_000, 10, 100_000 // 2)],
)
def test_acceptable_loads_pass(total: int, invalid: int, previous: int) -> None:
    assert CoverageGuard().problem(total=total, invalid=invalid, previous_total=previous) is None


def test_the_checks_can_be_turned_off_but_not_the_empty_one() -> None:
    lax = CoverageGuard(min_ratio=0, max_invalid_share=1)
    assert lax.problem(total=1, invalid=10_000, previous_total=1_000_000) is None
    assert lax.problem(total=0, invalid=0, previous_total=0) is not None


def test_min_ratio_in_the_feed_file() -> None:
    feeds = loads_feeds("- {name: a, location: /x, min_ratio: 0.5}\n- {name: b, location: /y}\n")
    assert [f.min_ratio for f in feeds] == [0.5, 0.1]
    with pytest.raises(ConfigError, match=r"line 1.*min_ratio must be a number from 0 to 1"):
        loads_feeds("- {name: a, location: /x, min_ratio: 2}\n")

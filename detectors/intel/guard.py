"""The coverage guard: a load that would silently shrink a feed's coverage is refused.

A feed server that answers 200 with an HTML error page, a truncated download or a format change
all parse to "almost nothing". Flipping to that generation would stop every detection the feed
drove without anyone noticing, so the load is refused and the previous generation stays.
``--force`` (``force=True``) accepts such a load on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MIN_RATIO = 0.1
DEFAULT_MAX_INVALID_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class CoverageGuard:
    """``min_ratio``: the smallest accepted size of a load against the last good generation
    (0 turns that check off); ``max_invalid_share``: the largest accepted share of invalid
    records among all records (1 turns that check off)."""

    min_ratio: float = DEFAULT_MIN_RATIO
    max_invalid_share: float = DEFAULT_MAX_INVALID_SHARE

    def problem(self, *, total: int, invalid: int, previous_total: int) -> str | None:
        """Why a load of ``total`` indicators with ``invalid`` unparseable records must be
        refused, after a last good generation of ``previous_total``; None when it may go on."""
        if total == 0:
            detail = f" ({invalid} invalid records)" if invalid else ""
            return f"the feed yielded no indicators{detail}"
        records = total + invalid
        if invalid and invalid / records > self.max_invalid_share:
            return (
                f"{invalid} of {records} records are invalid "
                f"(more than {self.max_invalid_share:.0%}); only {total} indicators parsed"
            )
        if previous_total and total < self.min_ratio * previous_total:
            return (
                f"{total} indicators, fewer than {self.min_ratio:.0%} of the last good "
                f"generation's {previous_total}"
            )
        return None

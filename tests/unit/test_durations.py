"""The one duration grammar: what both former grammars (rules, feeds) accepted, and the rest refused."""

from __future__ import annotations

import pytest

from shipper.durations import parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        # the rules' former grammar: one number and unit, white space between allowed
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("7d", 604800),
        ("5 m", 300),
        (" 5m\t", 300),
        (90, 90),
        # the feeds' former grammar: weeks, compounds, any case, a number of seconds as text
        ("1w", 604800),
        ("1h30m", 5400),
        ("1d 2h 3m 4s", 93784),
        ("1H30M", 5400),
        ("90", 90),
        (" 90 ", 90),
        ("0h30m", 1800),
        ("٥m", 300),  # any decimal digit, as both took
    ],
)
def test_accepted(value: object, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("soon", "'soon' is not a duration like 30s, 5m, 1h30m, 7d or 2w"),
        ("", "is not a duration"),
        ("h", "is not a duration"),
        ("5y", "is not a duration"),
        ("1x", "is not a duration"),
        ("m5", "is not a duration"),
        ("1.5h", "is not a duration"),
        ("-5m", "is not a duration"),
        ("²", "is not a duration"),
        (True, "True is not a duration"),
        (1.5, "1.5 is not a duration"),
        (None, "None is not a duration"),
        ("0s", "a duration must be positive, not '0s'"),
        ("0m0s", "must be positive"),
        ("0", "must be positive"),
        (0, "must be positive"),
        (-1, "a duration must be positive, not -1"),
    ],
)
def test_rejected(value: object, words: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert words in str(info.value)

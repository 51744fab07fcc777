"""Sink pieces that need no cluster (the sink against a real node is in tests/integration)."""

from __future__ import annotations

import pytest

from shipper.sending import ack_ranges
from shipper.sink import BulkOptions, BulkSink


def test_ranges_merge_contiguous_acks_per_source() -> None:
    acks = [("b", 2), ("a", 3), ("a", 1), ("a", 2), ("b", 1), ("a", 7)]
    assert ack_ranges(acks) == [("a", 1, 3), ("a", 7, 7), ("b", 1, 2)]


def test_backoff_is_bounded_and_jittered() -> None:
    sink = BulkSink(object(), options=BulkOptions(backoff_initial=0.5, backoff_max=4.0))  # type: ignore[arg-type]
    try:
        for attempt in range(12):
            cap = min(4.0, 0.5 * 2**attempt)
            values = {round(sink._sender.backoff(attempt), 6) for _ in range(20)}
            assert all(cap / 2 <= v <= cap for v in values)
            assert len(values) > 1  # jitter
    finally:
        sink.close()


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError):
        BulkSink(object(), options=BulkOptions(in_flight=0))  # type: ignore[arg-type]

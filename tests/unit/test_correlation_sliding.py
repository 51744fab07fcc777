"""The sliding-window scan of correlation rules (no cluster): windows start at events, not at clock
marks; fresh events decide which windows are judged; existing alert windows hold."""

from __future__ import annotations

from detectors.builders.correlation import spec_value, to_ms
from detectors.builders.sliding import Member, Spec, holds, merge_ranges, ordered_figure, scan

MIN = 60_000
BOUNDARY = 1_700_000_100_000  # a multiple of 5 minutes (epoch ms)
assert BOUNDARY % (5 * MIN) == 0


def ev(minutes: float, name: str, base: int = 0, value: str | None = None) -> Member:
    return Member(int(BOUNDARY + minutes * MIN), name, "idx", base, value)


def count(n: int, op: str = "gte", kind: str = "event_count", bases: int = 1) -> Spec:
    return Spec(kind, 5 * MIN, op, n, bases)  # type: ignore[arg-type]


def ids(events: list[Member]) -> set[str]:
    return {e.id for e in events}


def test_two_events_across_a_clock_boundary_share_a_window() -> None:
    events = [ev(-1, "a"), ev(1, "b")]  # 2 minutes apart, a 5-minute mark between them
    (m,) = scan(count(2), events, ids(events))
    assert [x.id for x in m.members] == ["a", "b"]
    assert (m.start, m.end, m.figure) == (events[0].t, events[0].t + 5 * MIN, 2)


def test_the_window_end_is_included_and_one_ms_more_is_not() -> None:
    a, b = ev(0, "a"), ev(5, "b")
    assert len(scan(count(2), [a, b], {"a", "b"})) == 1
    c = Member(b.t + 1, "c", "idx", 0)
    assert scan(count(2), [a, c], {"a", "c"}) == []


def test_below_the_threshold_nothing() -> None:
    events = [ev(0, "a"), ev(4, "b"), ev(10, "c")]
    assert scan(count(3), events, ids(events)) == []


def test_a_burst_gives_one_match_per_window_not_per_event() -> None:
    events = [ev(i * 0.5, f"e{i:02}") for i in range(20)]  # 10 minutes, one every 30 s
    found = scan(count(3), events, ids(events))
    assert [m.start for m in found] == [events[0].t, events[11].t]
    assert len(found[0].members) == 11  # 0 … 5 minutes, both ends included


def test_a_later_anchor_finds_what_greedy_fixed_windows_miss() -> None:
    events = [ev(0, "a"), ev(4, "b"), ev(6, "c"), ev(8, "d")]
    (m,) = scan(count(3), events, ids(events))
    assert [x.id for x in m.members] == ["b", "c", "d"]


def test_only_windows_holding_a_fresh_event_are_judged() -> None:
    events = [ev(0, "a"), ev(1, "b"), ev(2, "c"), ev(20, "d")]
    assert scan(count(3), events, {"d"}) == []
    assert len(scan(count(3), events, {"c"})) == 1


def test_existing_alert_windows_hold_so_a_rerun_adds_nothing() -> None:
    events = [ev(0, "a"), ev(1, "b"), ev(2, "c")]
    (m,) = scan(count(3), events, ids(events))
    assert scan(count(3), events, ids(events), held=[(m.start, m.end)]) == []


def test_a_late_event_before_an_alert_inside_its_window_adds_nothing() -> None:
    events = [ev(0, "a"), ev(1, "b"), ev(2, "c")]
    held = [(events[0].t, events[0].t + 5 * MIN)]
    late = Member(events[0].t + 30_000, "late", "idx", 0)
    assert scan(count(3), [*events, late], {"late"}, held=held) == []


def test_value_count_counts_distinct_values() -> None:
    events = [ev(0, "a", value="x"), ev(1, "b", value="x"), ev(2, "c", value="y"), ev(3, "d")]
    assert scan(count(3, kind="value_count"), events, ids(events)) == []
    more = [*events, ev(4, "e", value="z")]
    (m,) = scan(count(3, kind="value_count"), more, ids(more))
    assert m.figure == 3


def test_one_event_matching_two_base_rules_counts_once() -> None:
    events = [ev(0, "a", 0), ev(0, "a", 1), ev(1, "b", 0)]
    assert scan(count(3), events, {"a", "b"}) == []
    assert len(scan(count(2), events, {"a", "b"})) == 1


def test_temporal_needs_every_base_rule_in_any_order() -> None:
    spec = count(2, kind="temporal", bases=2)
    assert scan(spec, [ev(0, "a", 0), ev(1, "b", 0)], {"a", "b"}) == []
    assert len(scan(spec, [ev(0, "a", 1), ev(1, "b", 0)], {"a", "b"})) == 1


def test_temporal_ordered_needs_the_order() -> None:
    spec = count(2, kind="temporal_ordered", bases=2)
    assert scan(spec, [ev(0, "a", 1), ev(1, "b", 0)], {"a", "b"}) == []
    (m,) = scan(spec, [ev(0, "a", 1), ev(1, "b", 0), ev(2, "c", 1)], {"a", "b", "c"})
    assert [x.id for x in m.members] == ["b", "c"]
    assert ordered_figure([ev(0, "a", 0), ev(1, "b", 2), ev(2, "c", 1)], 3) == 2


def test_lt_is_judged_on_closed_windows_only() -> None:
    events = [ev(0, "a"), ev(1, "b")]
    horizon_open = events[0].t + 5 * MIN  # the window of "a" ends at the horizon: still open
    found = scan(count(3, op="lt"), events, ids(events), horizon=horizon_open)
    assert found == []
    (m,) = scan(count(3, op="lt"), events, ids(events), horizon=horizon_open + 10 * MIN)
    assert m.figure == 2


def test_condition_operators() -> None:
    assert holds("gt", 3, 2) and not holds("gt", 2, 2)
    assert holds("gte", 2, 2) and holds("lte", 2, 2) and holds("lt", 1, 2)
    assert holds("eq", 2, 2) and holds("neq", 1, 2) and not holds("neq", 2, 2)


def test_merge_ranges() -> None:
    assert merge_ranges([10, 0, 100], 5, 5) == [(-5, 15), (95, 105)]
    assert merge_ranges([], 5, 5) == []


def test_time_and_value_reading() -> None:
    assert to_ms("2026-01-01T00:00:00.123456789Z") == to_ms("2026-01-01T00:00:00.123Z")
    assert to_ms("2026-01-01T00:00:01Z") - to_ms("2026-01-01T00:00:00.5+00:00") == 500
    src = {"user": {"domain": "CORP", "name": "Bob"}, "host": {"name": "WKS-1"}}
    assert spec_value(src, ("user",)) == "corp\\bob"
    assert spec_value(src, ("process.executable", "host.name")) == "wks-1"
    assert spec_value(src, ("file.path",)) is None

"""The log-integrity rule types without a cluster: the record-id sequence analysis (gaps,
resets, jitter) and the ``sequence_gap`` / ``silence`` parameters as the loader reads them."""

from __future__ import annotations

from pathlib import Path

from detectors.builders.sequence import Record, findings
from detectors.loader import BUILTIN_DIR, RuleErrors, load_rules, parse_rule
from detectors.model import SequenceGapParams, SilenceParams


def _recs(*ids: int, start: int = 0) -> list[Record]:
    return [
        Record(i, f"2026-01-01T00:{(start + n) // 60:02d}:{(start + n) % 60:02d}Z", "")
        for n, i in enumerate(ids)
    ]


def _summary(recs: list[Record], tolerance: int = 16) -> list[tuple[str, int, int]]:
    return [(f.kind, f.first, f.last) for f in findings(recs, tolerance)]


def test_a_gap_in_the_middle_has_its_exact_range() -> None:
    got = findings(_recs(1, 2, 3, 7, 8), 16)
    assert [(f.kind, f.first, f.last, f.missing) for f in got] == [("gap", 4, 6, 3)]
    assert (got[0].before.record_id, got[0].after.record_id) == (3, 7)


def test_consecutive_ids_and_out_of_order_stamps_are_no_gap() -> None:
    assert _summary(_recs(10, 11, 13, 12, 14, 14, 15)) == []


def test_a_restart_low_is_a_reset_and_each_epoch_is_checked_on_its_own() -> None:
    # 100..105, a gap at 103, then the log cleared: 1, 2, 4
    got = _summary(_recs(100, 101, 102, 104, 105, 1, 2, 4))
    assert got == [("reset", 1, 105), ("gap", 103, 103), ("gap", 3, 3)]


def test_a_drop_within_the_tolerance_is_not_a_reset() -> None:
    assert _summary(_recs(50, 51, 52, 40), tolerance=16) == [("gap", 41, 49)]
    assert _summary(_recs(50, 51, 52, 40), tolerance=5)[0][0] == "reset"


RULE = """\
id: my-gap
name: gaps
description: test
type: {type}
severity: low
risk_score: 10
interval: 5m
threat:
  - tactic: {{id: TA0005, name: Defense Evasion}}
    techniques: [{{id: T1070.001, name: Clear Windows Event Logs}}]
"""


def test_integrity_rules_need_neither_filter_nor_params() -> None:
    gap = parse_rule(RULE.format(type="sequence_gap"), "gap.yml")
    assert gap.params == SequenceGapParams() and gap.filter.event_codes == ()
    quiet = parse_rule(RULE.format(type="silence"), "quiet.yml")
    assert quiet.params == SilenceParams()


def test_integrity_params_are_checked_with_lines(tmp_path: Path) -> None:
    text = (
        RULE.format(type="silence")
        + "params:\n  fraction: 2\n  clock: whenever\n  bucket: 5d\n  colour: red\n"
    )
    try:
        parse_rule(text, "quiet.yml")
    except RuleErrors as exc:
        errs = [str(e) for e in exc.errors]
    else:
        raise AssertionError("accepted")
    assert "quiet.yml:12: 'fraction' must be a number from 0 to 1" in errs
    assert "quiet.yml:13: clock 'whenever' is not one of event.ingested, @timestamp" in errs
    assert any(e.startswith("quiet.yml:15: unknown key 'colour' in params (allowed: bucket,") for e in errs)
    assert "quiet.yml:12: silence: 'history' must span from 2 to 10,000 'bucket's" in errs
    gap = RULE.format(type="sequence_gap") + "params:\n  grace: soon\n  reset_tolerance: 0\n"
    try:
        parse_rule(gap, "gap.yml")
    except RuleErrors as exc:
        errs = [str(e) for e in exc.errors]
    assert "gap.yml:12: 'grace': 'soon' is not a duration like 30s, 5m, 1h30m, 7d or 2w" in errs
    assert "gap.yml:13: 'reset_tolerance' must be an integer from 1 to 1000000000" in errs


def test_the_builtin_integrity_rules() -> None:
    rules = {r.id: r for r in load_rules([BUILTIN_DIR]).rules}
    assert rules["log-record-gap"].type == "sequence_gap"
    assert rules["host-went-quiet"].type == "silence"
    assert set(rules["sysmon-state-change"].filter.event_codes) == {"4", "16", "255"}


def test_silence_bucket_must_be_a_positive_duration() -> None:
    try:
        parse_rule(RULE.format(type="silence") + "params:\n  bucket: 0\n", "quiet.yml")
    except RuleErrors as exc:
        assert [str(e) for e in exc.errors] == ["quiet.yml:12: 'bucket': a duration must be positive, not 0"]
    else:
        raise AssertionError("accepted")

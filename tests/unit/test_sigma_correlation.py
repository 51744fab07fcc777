"""Sigma correlation rules → ``correlation`` detectors (no cluster): each lands in one class,
base rules by id or name, ``generate``, aliases, fields mapped per base rule."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sigma.collection import SigmaCollection

from detectors.cli import main
from detectors.model import CorrelationParams, Exceptions, Where
from detectors.sigma.loading import load_sigma
from detectors.sigma.rules import Converted, convert, runnable

WHOAMI = """
title: whoami
id: 0d1c0000-0000-4000-8000-000000000001
name: whoami
status: test
level: low
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\\whoami.exe'}
  condition: sel
"""
SMB = """
title: smb out
id: 0d1c0000-0000-4000-8000-000000000002
name: smb_out
status: test
level: low
logsource: {product: windows, category: network_connection}
detection:
  sel: {DestinationPort: 445}
  condition: sel
"""
LINUX = """
title: linux thing
id: 0d1c0000-0000-4000-8000-000000000003
name: linux_thing
logsource: {product: linux, category: process_creation}
detection:
  sel: {Image: /bin/id}
  condition: sel
"""


def corr(body: str, title: str = "corr") -> str:
    head = f"title: {title}\nid: 0d1c0000-0000-4000-8000-0000000000ff\nstatus: test\nlevel: high\n"
    return f"{head}correlation:\n{body}"


def run(*docs: str) -> dict[str, Converted]:
    text = "\n---\n".join(d.strip("\n") for d in docs)
    return {c.title: c for c in convert(SigmaCollection.from_yaml(text))}


def test_event_count_by_name_runs_and_its_base_rule_raises_no_alerts_of_its_own() -> None:
    out = run(WHOAMI, corr("  type: event_count\n  rules: [whoami]\n  group-by: [Computer, User]\n"
                          "  timespan: 5m\n  condition: {gte: 3}\n"))  # fmt: skip
    c = out["corr"]
    assert c.outcome == "runs" and c.rule is not None
    assert c.rule.type == "correlation" and c.rule.severity == "high"
    p = c.rule.params
    assert isinstance(p, CorrelationParams)
    assert (p.kind, p.timespan, p.op, p.count) == ("event_count", 300, "gte", 3)
    assert p.group_by == ("Computer", "User")
    (base,) = p.bases
    assert base.ref == "whoami" and base.event_codes == ("1",)
    assert base.group_fields == (("host.name",), ("user",))
    assert "process.executable" in base.lucene
    assert out["whoami"].outcome == "runs" and out["whoami"].rule is None
    assert "only inside correlation" in out["whoami"].reason
    assert [r.id for r in runnable(out.values())] == [c.rule.id]


def test_generate_true_keeps_the_base_rule_and_ids_work_as_references() -> None:
    out = run(WHOAMI, corr("  type: event_count\n  rules: [0d1c0000-0000-4000-8000-000000000001]\n"
                          "  generate: true\n  timespan: 1h\n  condition: {gt: 10}\n"))  # fmt: skip
    assert out["whoami"].rule is not None and out["whoami"].rule.type == "query"
    assert out["corr"].rule is not None
    alone = run(WHOAMI)["whoami"].rule
    assert alone is not None and out["whoami"].rule.filter == alone.filter


def test_temporal_ordered_with_aliases_maps_each_base_rule_s_field() -> None:
    body = ("  type: temporal_ordered\n  rules: [whoami, smb_out]\n  group-by: [src]\n  timespan: 10m\n"
            "  aliases:\n    src:\n      whoami: Computer\n      smb_out: SourceIp\n")  # fmt: skip
    c = run(WHOAMI, SMB, corr(body))["corr"]
    assert c.rule is not None
    p = c.rule.params
    assert isinstance(p, CorrelationParams)
    assert (p.op, p.count) == ("gte", 2)  # pySigma's default: every rule
    assert [b.group_fields for b in p.bases] == [(("host.name",),), (("source.ip",),)]
    assert c.rule.filter.event_codes == ("1", "3")


def test_value_count_field_is_mapped() -> None:
    body = "  type: value_count\n  rules: [smb_out]\n  group-by: [Computer]\n  timespan: 5m\n"
    c = run(SMB, corr(body + "  condition: {gte: 5, field: DestinationIp}\n"))["corr"]
    assert c.rule is not None and isinstance(c.rule.params, CorrelationParams)
    assert c.rule.params.bases[0].value_field == ("destination.ip",)
    assert c.rule.params.value_name == "DestinationIp"


def test_classes_follow_the_base_rules_and_unsupported_forms_fail() -> None:
    na = run(LINUX, corr("  type: event_count\n  rules: [linux_thing]\n  timespan: 5m\n  condition: {gt: 2}"))
    assert na["corr"].outcome == "not_applicable" and "linux_thing" in na["corr"].reason
    hashes = run(WHOAMI, corr("  type: event_count\n  rules: [whoami]\n  group-by: [Hashes]\n"
                              "  timespan: 5m\n  condition: {gte: 2}\n"))  # fmt: skip
    assert hashes["corr"].outcome == "cannot_fire"
    never = run(SMB, corr("  type: event_count\n  rules: [smb_out]\n  group-by: [TargetObject]\n"
                          "  timespan: 5m\n  condition: {gte: 2}\n"))  # fmt: skip
    assert never["corr"].outcome == "cannot_fire" and "never carry" in never["corr"].reason
    total = run(SMB, corr("  type: value_sum\n  rules: [smb_out]\n  timespan: 5m\n"
                          "  condition: {gte: 2, field: DestinationPort}\n"))  # fmt: skip
    assert total["corr"].outcome == "failed" and "value_sum" in total["corr"].reason


def test_a_missing_reference_fails_that_correlation_only(tmp_path: Path) -> None:
    bad = corr("  type: event_count\n  rules: [nope]\n  timespan: 5m\n  condition: {gte: 2}\n", "bad")
    (tmp_path / "a.yml").write_text(WHOAMI.strip() + "\n---\n" + bad)
    out = {c.title: c for c in load_sigma([tmp_path])}
    assert out["bad"].outcome == "failed" and "nope" in out["bad"].reason
    assert out["whoami"].outcome == "runs" and out["whoami"].rule is not None


def test_sigma_check_lists_a_correlation_under_runs(tmp_path: Path) -> None:
    body = corr("  type: event_count\n  rules: [whoami]\n  group-by: [Computer]\n  timespan: 5m\n"
                "  condition: {gte: 3}\n")  # fmt: skip
    (tmp_path / "c.yml").write_text(WHOAMI.strip() + "\n---\n" + body)
    res = CliRunner().invoke(main, ["sigma", "check", "--json", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert '"correlation":{"type":"event_count","rules":["whoami"]' in res.output
    assert '"summary":{"runs":2,' in res.output


def test_a_base_rule_with_fieldref_fails_its_correlation() -> None:
    """A ``|fieldref`` is checked per hit, which the correlation's reads do not do: the
    correlation says so instead of counting events the base rule would not match."""
    same = (
        "title: same image\nid: 0d1c0000-0000-4000-8000-000000000009\nname: same_image\n"
        "status: test\nlevel: low\nlogsource: {product: windows, category: process_creation}\n"
        "detection:\n  sel: {Image|fieldref: ParentImage}\n  condition: sel\n"
    )
    out = run(
        same,
        corr(
            "  type: event_count\n  rules: [same_image]\n  group-by: [Computer]\n"
            "  timespan: 5m\n  condition: {gte: 2}\n"
        ),
    )
    c = out["corr"]
    assert c.outcome == "failed" and "|fieldref" in c.reason, (c.outcome, c.reason)


def test_config_exceptions_are_not_added_to_correlations() -> None:
    from detectors.sigma.config import Overlay

    out = run(
        WHOAMI,
        corr(
            "  type: event_count\n  rules: [whoami]\n  group-by: [Computer]\n"
            "  timespan: 5m\n  condition: {gte: 2}\n"
        ),
    )
    every = Overlay(Where("detect.yml", 1), Exceptions(), every=True)
    rule = out["corr"].rule
    assert rule is not None and rule.type == "correlation" and not every.applies(rule)

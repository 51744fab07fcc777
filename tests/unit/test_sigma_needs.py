"""What a converted Sigma rule needs of the fields events carry (``sigma check --live``): three
valued, so only a rule that can never match is called so."""

from __future__ import annotations

import pytest
from sigma.collection import SigmaCollection

from detectors.sigma.needs import fields, verdict
from detectors.sigma.rules import convert

RULE = """title: t
id: 3f3c2a10-0000-4000-8000-000000000301
status: test
level: high
logsource: {product: windows, category: process_creation}
detection:
%s
"""
PRESENT = {"process.executable", "process.command_line", "user.name"}


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ("  sel: {CommandLine|contains: a}\n  condition: sel", "maybe"),
        ("  sel: {ParentCommandLine|contains: a}\n  condition: sel", "no"),
        ("  sel: {ParentCommandLine|contains: a}\n  condition: not sel", "yes"),
        ("  sel: {ParentCommandLine: null}\n  condition: sel", "yes"),
        ("  sel: {ParentCommandLine|exists: true}\n  condition: sel", "no"),
        ("  a: {ParentCommandLine: x}\n  b: {CommandLine: y}\n  condition: a or b", "maybe"),
        ("  a: {ParentCommandLine: x}\n  b: {CommandLine: y}\n  condition: a and b", "no"),
        ("  a: {ParentCommandLine: x}\n  b: {OriginalFileName: y}\n  condition: 1 of them", "no"),
        ("  a: {ParentImage|fieldref: Image}\n  condition: a", "no"),
        ("  a: {User|contains: bob}\n  condition: a", "maybe"),
        ("  kw: ['mimikatz']\n  condition: kw", "maybe"),
    ],
)
def test_verdict(detection: str, expected: str) -> None:
    (c,) = convert(SigmaCollection.from_yaml(RULE % detection))
    assert c.rule is not None and c.rule.sigma is not None and c.rule.sigma.needs is not None, c.reason
    need = c.rule.sigma.needs
    assert verdict(need, PRESENT.__contains__) == expected, need
    assert set(fields(need)) <= {
        "process.parent.command_line", "process.command_line", "process.pe.original_file_name",
        "process.parent.executable", "process.executable", "user.name", "user.domain",
    }  # fmt: skip

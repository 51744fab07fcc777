"""The stream stage as ``sysmon-ship --detect`` builds it: the rule set the scheduled engine
runs (built-in rules, rules folders, the Sigma rules of the detectors' configuration), the
matcher, the intel cache and the process cache."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from elasticsearch import Elasticsearch

from detectors.commands import load_rule_set
from detectors.model import Rule
from detectors.sigma.options import resolve_sigma
from detectors.stream.intel import IntelCache
from detectors.stream.processes import ProcessCache
from detectors.stream.stage import StreamStage, stream_plan


def rule_set(
    rules_dirs: Sequence[str], builtin: bool, config: str | None, warn: Callable[[str], None]
) -> list[Rule]:
    """The enabled rules ``sysmon-detect run`` would run; each rule error is warned about."""
    rules, errors = load_rule_set(rules_dirs, not builtin, resolve_sigma(config))
    for e in errors:
        warn(f"detect: rule error: {e}")
    return [r for r in rules if r.enabled]


def build_stage(
    es: Elasticsearch,
    prefix: str,
    *,
    rules_dirs: Sequence[str] = (),
    builtin: bool = True,
    config: str | None = None,
    intel_poll: float = 30.0,
    process_cache: int = 100_000,
    warn: Callable[[str], None] = print,
) -> StreamStage:
    plan = stream_plan(rule_set(rules_dirs, builtin, config, warn))
    intel = IntelCache(es, prefix, poll_seconds=intel_poll) if plan.needs_intel else None
    stage = StreamStage(es, prefix, plan, intel, ProcessCache(process_cache))
    warn(
        f"detect: {len(plan.supported)} rules run in the stream, {len(plan.unsupported)} stay scheduled"
        " (`sysmon-detect list` tells which)" + (f"; degraded: {stage.degraded}" if stage.degraded else "")
    )
    return stage

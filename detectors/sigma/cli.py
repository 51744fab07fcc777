"""``sysmon-detect sigma check``: every Sigma rule in exactly one class, and why."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click
import orjson

from detectors.model import CorrelationParams
from detectors.prefix import prefix_option
from detectors.sigma.options import LABELS, OUTCOMES, config_option, read_config, sigma_paths

if TYPE_CHECKING:
    from detectors.sigma.rules import Converted


def _record(c: Converted) -> dict[str, Any]:
    d: dict[str, Any] = {
        "class": c.outcome,
        "file": c.where.path,
        "line": c.where.line,
        "id": c.sigma_id,
        "title": c.title,
        "level": c.level,
        "status": c.status,
    }
    if c.reason:
        d["reason"] = c.reason
    if c.rule is not None:
        d["rule_id"] = c.rule.id
        d["event_codes"] = list(c.rule.filter.event_codes)
        d["query"] = c.rule.filter.lucene
        p = c.rule.params
        if isinstance(p, CorrelationParams):
            d["query"] = c.rule.sigma.query if c.rule.sigma else None
            d["correlation"] = {
                "type": p.kind,
                "rules": [b.ref for b in p.bases],
                "group_by": list(p.group_by),
                "timespan": p.timespan,
                "condition": {p.op: p.count} | ({"field": p.value_name} if p.value_name else {}),
            }
    return d


def _print_report(converted: Sequence[Converted], as_json: bool, verbose: bool) -> None:
    counts = Counter(c.outcome for c in converted)
    if as_json:
        for c in converted:
            click.echo(orjson.dumps(_record(c)).decode())
        summary = {"summary": {o: counts[o] for o in OUTCOMES} | {"total": len(converted)}}
        click.echo(orjson.dumps(summary).decode())
        return
    for c in converted:
        if c.outcome in ("cannot_fire", "failed") or verbose:
            click.echo(f"{LABELS[c.outcome]:<16} {c.where}  {c.title}: {c.reason or c.outcome}")
    width = max(len(v) for v in LABELS.values())
    for o in OUTCOMES:
        click.echo(f"{LABELS[o]:<{width}} {counts[o]:>6}")
    click.echo(
        f"summary: {len(converted)} rules: {counts['runs']} run, {counts['not_applicable']} not applicable, "
        f"{counts['cannot_fire']} cannot fire here, {counts['failed']} failed"
    )


def _live(ctx: click.Context, prefix: str, converted: list[Converted]) -> list[Converted]:
    from detectors.sigma.live import live_check
    from shipper.clifail import fail
    from shipper.errors import SysmonError
    from shipper.es import ClusterSettings, check_cluster, make_client

    try:
        settings = ClusterSettings.from_env()
        es = make_client(settings)
        check_cluster(es, settings.url)
        return live_check(es, prefix, converted)
    except (SysmonError, RuntimeError) as exc:
        fail(ctx, exc)


@click.group("sigma")
def sigma_group() -> None:
    """Sigma rules: which of them can run on our documents, and why the others cannot."""


@sigma_group.command("check")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="One JSON object per rule, then a summary object.")
@click.option("-v", "--verbose", is_flag=True, help="List every rule, not only those that cannot run.")
@config_option
@click.option(
    "--live",
    is_flag=True,
    help="Also check the rules that run against the indexed events (ES_URL and credentials as for "
    "run): a rule needing fields that never appear for its event codes cannot fire here.",
)
@prefix_option
@click.pass_context
def check_cmd(
    ctx: click.Context,
    paths: tuple[str, ...],
    as_json: bool,
    verbose: bool,
    sigma_config: str | None,
    live: bool,
    prefix: str,
) -> None:
    """Put every Sigma rule under PATHS (default: SYSMON_SIGMA_PATHS, else the
    configuration file's sigma.paths) in exactly one class: runs,
    not applicable (a logsource Sysmon does not produce), cannot fire here (fields our documents
    never carry; with --live, also fields the indexed events never have), or failed (file:line
    and pySigma's message). Exit 1 if any failed."""
    found = sigma_paths(paths, read_config(sigma_config).sigma.paths)
    if not found:
        raise click.UsageError("give PATHS, set SYSMON_SIGMA_PATHS, or sigma.paths in --config")
    from detectors.sigma.loading import load_sigma  # pySigma loads only when asked for

    converted = load_sigma(found)
    if live:
        converted = _live(ctx, prefix, converted)
    _print_report(converted, as_json, verbose)
    if any(c.outcome == "failed" for c in converted):
        sys.exit(1)

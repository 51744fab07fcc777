"""Detector commands of ``sysmon-detect``: setup, run, daemon, list, validate, status, alerts.

Mounted on the ``sysmon-detect`` group by :func:`register` (see ``detectors/cli.py``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import orjson

from detectors.loader import RuleError, format_duration, load_rules, rule_dirs
from detectors.model import Rule
from detectors.prefix import prefix_option
from detectors.retro.cli import hunt_now, hunt_summary, no_hunt_option
from detectors.sigma.options import SigmaArgs, selected_rules, sigma_options
from shipper.clifail import fail as _fail
from shipper.errors import SysmonError

#: ``run``: a due rule could not run because another run holds its lease (sysexits EX_TEMPFAIL).
EXIT_LOCKED = 75


def cluster_client() -> Any:
    from shipper.es import ClusterSettings, check_cluster, make_client

    settings = ClusterSettings.from_env()
    es = make_client(settings)
    check_cluster(es, settings.url)
    return es


def load_rule_set(
    rules_dirs: Sequence[str], no_builtin: bool = False, sigma: SigmaArgs | None = None
) -> tuple[list[Rule], list[RuleError]]:
    dirs = rule_dirs(rules_dirs, builtin=not no_builtin)
    res = load_rules(dirs)
    rules, errors = list(res.rules), list(res.errors)
    if sigma is not None:
        taken = {r.id: r for r in rules}
        for r in selected_rules(sigma):
            if r.id in taken:
                errors.append(
                    RuleError(
                        f"duplicate rule id {r.id!r} (also in {taken[r.id].where})", path=r.where.path, line=1
                    )
                )
                continue
            taken[r.id] = r
            rules.append(r)
    return rules, errors


rules_dir_option = click.option(
    "--rules-dir",
    "rules_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="A folder of your own rules (repeatable; also SYSMON_RULES_DIRS).",
)
no_builtin_option = click.option("--no-builtin", is_flag=True, help="Leave out the built-in rules.")


@click.command("setup")
@prefix_option
@click.pass_context
def setup_cmd(ctx: click.Context, prefix: str) -> None:
    """Install the event and alert templates and create the state index (idempotent)."""
    from detectors.setup import setup_alerts

    try:
        for line in setup_alerts(cluster_client(), prefix):
            click.echo(line)
    except SysmonError as exc:
        _fail(ctx, exc)


@click.command("list")
@rules_dir_option
@no_builtin_option
@sigma_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per rule.")
def list_cmd(rules_dirs: tuple[str, ...], no_builtin: bool, as_json: bool, sigma: SigmaArgs) -> None:
    """Show every rule: id, type, severity, interval, ATT&CK techniques, file, and the engines that
    run it (stream+scheduled, or scheduled only and why)."""
    from detectors.stream.stage import stream_plan

    rules, errors = load_rule_set(rules_dirs, no_builtin, sigma)
    scheduled_only = stream_plan(rules).unsupported  # the rest also run in the stream
    for r in rules:
        why = scheduled_only.get(r.id)
        engine = "scheduled" if why else "stream+scheduled"
        if as_json:
            click.echo(
                orjson.dumps(
                    {
                        "id": r.id,
                        "name": r.name,
                        "type": r.type,
                        "severity": r.severity,
                        "risk_score": r.risk_score,
                        "interval": format_duration(r.interval),
                        "enabled": r.enabled,
                        "techniques": list(r.technique_ids),
                        "ruleset": "sigma" if r.sigma else "builtin" if r.builtin else "custom",
                        "file": r.where.path,
                        "engine": engine,
                        "stream_unsupported": why,
                    }
                ).decode()
            )
        else:
            flag = "" if r.enabled else " (disabled)"
            click.echo(
                f"{r.id:<32} {r.type:<12} {r.severity:<9} every {format_duration(r.interval):<5} "
                f"{','.join(dict.fromkeys(r.technique_ids)):<28} {r.name}{flag}"
                f"  [{engine}{': ' + why if why else ''}]"
            )
    for e in errors:
        click.echo(f"error: {e}", err=True)
    click.echo(f"{len(rules)} rules, {len(errors)} errors", err=True)
    if errors:
        sys.exit(1)


@click.command("validate")
@rules_dir_option
@no_builtin_option
@sigma_options
@click.option(
    "--cluster/--no-cluster",
    default=None,
    help="Also build and run every query (default: when ES_URL is set).",
)
@prefix_option
@click.pass_context
def validate_cmd(
    ctx: click.Context,
    rules_dirs: tuple[str, ...],
    no_builtin: bool,
    cluster: bool | None,
    prefix: str,
    sigma: SigmaArgs,
) -> None:
    """Check every rule (all errors, with file and line); with a cluster, build and run each
    rule's query (size 0)."""
    from detectors.validate import check_queries

    rules, errors = load_rule_set(rules_dirs, no_builtin, sigma)
    messages = [str(e) for e in errors]
    use_cluster = cluster if cluster is not None else bool(os.environ.get("ES_URL"))
    if use_cluster:
        try:
            es = cluster_client()
        except SysmonError as exc:
            _fail(ctx, exc)
        messages += [str(e) for e in check_queries(es, rules, prefix)]
    for m in messages:
        click.echo(m, err=True)
    click.echo(
        f"validated {len(rules)} rules{' against the cluster' if use_cluster else ''}: "
        f"{len(messages)} error{'s' if len(messages) != 1 else ''}"
    )
    if messages:
        sys.exit(1)


def _engine(prefix: str, ingest_delay: float, owner: str | None = None, **kw: Any) -> Any:
    from detectors.engine import Engine, EngineOptions
    from detectors.setup import setup_alerts

    es, p = cluster_client(), prefix
    if not es.indices.exists_index_template(name=f"{p}-alerts"):
        setup_alerts(es, p)  # first run without `setup`: alerts must never get dynamic mappings
    return Engine(es, p, [], EngineOptions(ingest_delay=ingest_delay, **kw), owner=owner)


ingest_delay_option = click.option(
    "--ingest-delay",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to stay behind now, so events being indexed are not missed.",
)


@click.command("run")
@click.option("--rule", "rule_ids", multiple=True, help="Run only this rule (repeatable), due or not.")
@click.option("--all", "run_all", is_flag=True, help="Run every enabled rule, due or not.")
@no_hunt_option
@ingest_delay_option
@rules_dir_option
@no_builtin_option
@sigma_options
@prefix_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON line per rule run, then a summary object: JSON only on stdout.",
)
@click.pass_context
def run_cmd(
    ctx: click.Context,
    rule_ids: tuple[str, ...],
    run_all: bool,
    no_hunt: bool,
    ingest_delay: float,
    rules_dirs: tuple[str, ...],
    no_builtin: bool,
    prefix: str,
    as_json: bool,
    sigma: SigmaArgs,
) -> None:
    """Run every due rule once (for cron, or after shipping an archive). First (unless --rule or
    --no-hunt), retro-hunt the indicators intel loads added that no hunt has covered yet.

    Exit 1 if a rule or a hunt failed or a rule file has errors; exit 75 (EX_TEMPFAIL) if none failed but a
    due rule could not run because another run holds its lease, so cron notices; else 0."""
    rules, errors = load_rule_set(rules_dirs, no_builtin, sigma)
    for e in errors:
        click.echo(f"rule error: {e}", err=True)
    by_id = {r.id: r for r in rules}
    unknown = [i for i in rule_ids if i not in by_id]
    if unknown:
        _fail(ctx, click.UsageError(f"unknown rule id(s): {', '.join(unknown)}"))
    try:
        engine = _engine(prefix, ingest_delay)
    except SysmonError as exc:
        _fail(ctx, exc)
    # a hand-picked --rule run is targeted: the queued hunts wait for the next scheduled run
    hunts: dict[str, int] = {}
    if not (no_hunt or rule_ids):
        try:  # a failed hunt stays queued; the rules still run
            hunts = hunt_summary(hunt_now(engine.es, engine.prefix, rules, as_json=as_json))
        except Exception as exc:
            click.echo(f"retro-hunt: failed: {type(exc).__name__}: {exc}", err=True)
            hunts = {"hunts_failed": 1}
    if rule_ids:
        results = engine.run([by_id[i] for i in rule_ids], only_due=False)
    else:
        results = engine.run([r for r in rules if r.enabled], only_due=not run_all)
    for res in results:
        click.echo(orjson.dumps(res.to_json()).decode() if as_json else res.line())
    failed = sum(r.status == "failed" for r in results)
    locked = sum(r.status == "locked" for r in results)
    totals = {k: sum(getattr(r, k) for r in results) for k in ("hits", "alerts", "updated", "duplicates")}
    counts = {"rules": len(results), "failed": failed, "locked": locked, "rule_errors": len(errors), **totals}
    counts |= hunts
    if as_json:
        click.echo(orjson.dumps({"summary": counts}).decode())
    else:
        click.echo("summary: " + " ".join(f"{k}={v}" for k, v in counts.items()))
    if failed or errors or hunts.get("hunts_failed"):
        sys.exit(1)
    if locked:
        sys.exit(EXIT_LOCKED)


@click.command("daemon")
@no_hunt_option
@ingest_delay_option
@rules_dir_option
@no_builtin_option
@sigma_options
@prefix_option
@click.option("--json", "as_json", is_flag=True, help="Log each run as one JSON line.")
@click.pass_context
def daemon_cmd(
    ctx: click.Context,
    no_hunt: bool,
    ingest_delay: float,
    rules_dirs: tuple[str, ...],
    no_builtin: bool,
    prefix: str,
    as_json: bool,
    sigma: SigmaArgs,
) -> None:
    """Run each enabled rule at its interval until SIGTERM; retro-hunt what intel loads queued
    at start and every minute (unless --no-hunt)."""
    from detectors.scheduler import Daemon

    rules, errors = load_rule_set(rules_dirs, no_builtin, sigma)
    for e in errors:
        click.echo(f"rule error (rule not scheduled): {e}", err=True)
    try:
        engine = _engine(prefix, ingest_delay)
    except SysmonError as exc:
        _fail(ctx, exc)
    hunter = None if no_hunt else (lambda: hunt_now(engine.es, engine.prefix, rules, as_json=as_json))
    d = Daemon(engine, rules, json_lines=as_json, hunter=hunter)
    d.install_signals()
    click.echo(f"daemon: {len(d.rules)} rules scheduled (prefix {engine.prefix})", err=True)
    d.run()
    click.echo("daemon: stopped", err=True)


@click.command("status")
@rules_dir_option
@no_builtin_option
@prefix_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status_cmd(
    ctx: click.Context, rules_dirs: tuple[str, ...], no_builtin: bool, prefix: str, as_json: bool
) -> None:
    """Each rule's last run, next run, status and last error."""
    from detectors.state import StateStore

    rules, errors = load_rule_set(rules_dirs, no_builtin)
    try:
        states = StateStore(cluster_client(), prefix).all()
    except SysmonError as exc:
        _fail(ctx, exc)
    now = datetime.now(UTC)
    for r in rules:
        st = states.get(r.id)
        last = st.last_run if st else None
        nxt = "now" if last is None else (last + timedelta(seconds=r.interval))
        nxt_s = nxt if isinstance(nxt, str) else ("now" if nxt <= now else nxt.isoformat(timespec="seconds"))
        row = {
            "rule": r.id,
            "enabled": r.enabled,
            "status": st.status if st else "never",
            "last_run": last.isoformat(timespec="seconds") if last else None,
            "next_run": nxt_s if r.enabled else None,
            "checkpoint": st.checkpoint.isoformat(timespec="seconds") if st and st.checkpoint else None,
            "hits": st.hits if st else 0,
            "alerts": st.alerts if st else 0,
            "duration": round(st.duration, 3) if st else 0.0,
            "last_error": st.last_error if st else None,
        }
        if as_json:
            click.echo(orjson.dumps(row).decode())
        else:
            click.echo(
                f"{r.id:<32} {row['status']:<8} last={row['last_run'] or '-':<25} "
                f"next={row['next_run'] or '-':<25}"
                f" alerts={row['alerts']}" + (f"  error: {row['last_error']}" if row["last_error"] else "")
            )
    for e in errors:
        click.echo(f"rule error: {e}", err=True)


@click.group("alerts")
def alerts_group() -> None:
    """Triage alerts: acknowledge or close them."""


def _set(ctx: click.Context, ids: tuple[str, ...], status: str, reason: str | None, prefix: str) -> None:
    from detectors.alerts import set_status

    try:
        es = cluster_client()
    except SysmonError as exc:
        _fail(ctx, exc)
    missing = 0
    for aid in ids:
        try:
            before = set_status(es, prefix, aid, status, reason=reason)
        except KeyError:
            click.echo(f"{aid}: no such alert", err=True)
            missing += 1
            continue
        click.echo(f"{aid}: {before} → {status}")
    if missing:
        sys.exit(1)


@alerts_group.command("ack")
@click.argument("ids", nargs=-1, required=True)
@click.option("--reason")
@prefix_option
@click.pass_context
def ack_cmd(ctx: click.Context, ids: tuple[str, ...], reason: str | None, prefix: str) -> None:
    """Mark alerts acknowledged."""
    _set(ctx, ids, "acknowledged", reason, prefix)


@alerts_group.command("close")
@click.argument("ids", nargs=-1, required=True)
@click.option("--reason")
@prefix_option
@click.pass_context
def close_cmd(ctx: click.Context, ids: tuple[str, ...], reason: str | None, prefix: str) -> None:
    """Close alerts."""
    _set(ctx, ids, "closed", reason, prefix)


@alerts_group.command("open")
@click.argument("ids", nargs=-1, required=True)
@prefix_option
@click.pass_context
def reopen_cmd(ctx: click.Context, ids: tuple[str, ...], prefix: str) -> None:
    """Re-open alerts."""
    _set(ctx, ids, "open", None, prefix)


COMMANDS = (setup_cmd, run_cmd, daemon_cmd, list_cmd, validate_cmd, status_cmd, alerts_group)


def register(group: click.Group) -> None:
    for cmd in COMMANDS:
        group.add_command(cmd)

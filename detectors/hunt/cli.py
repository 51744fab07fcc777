"""``sysmon-detect hunt``: stack, process, hash.

Cluster from the environment (``ES_URL``, …; see ``shipper.es``), index prefix from ``--prefix``
/ ``SYSMON_INDEX_PREFIX``. Rows go to stdout (``--format``: a table on a terminal, else JSON
lines); one ``summary:`` line a script can parse goes to stderr. Exit 1 on errors (no such
process, a field that cannot be stacked, the cluster unreachable).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

import click
from elasticsearch import ApiError, TransportError

from detectors.ancestry import DEFAULT_DEPTH
from detectors.hunt.output import FORMATS, Column, choose_format, write_rows
from detectors.hunt.scope import Scope, parse_time
from detectors.prefix import prefix_option
from shipper.clifail import fail
from shipper.durations import parse_duration
from shipper.errors import SysmonError

F = TypeVar("F", bound=Callable[..., Any])
_ERRORS = (SysmonError, ApiError, TransportError, LookupError, ValueError)


def _time(_ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None


def _duration(_ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None


def scope_options(func: F) -> F:
    """--host, --since, --until, --event-code, --limit, --format, --prefix."""
    for opt in reversed(
        [
            click.option("--host", "hosts", multiple=True, help="Only events of this host (repeatable)."),
            click.option(
                "--since",
                callback=_time,
                help="From this @timestamp: ISO (UTC unless zoned), or ago: 24h, 7d.",
            ),
            click.option("--until", callback=_time, help="Before this @timestamp (same forms as --since)."),
            click.option(
                "--event-code",
                "event_codes",
                multiple=True,
                help="Only these event IDs (repeatable, or 1,7).",
            ),
            click.option("--limit", type=click.IntRange(min=1), help="At most this many rows."),
            click.option(
                "--format",
                "fmt",
                type=click.Choice(FORMATS),
                help="table, csv or json (JSON lines). Default: table on a terminal, else json.",
            ),
            prefix_option,
        ]
    ):
        func = opt(func)
    return func


def _scope(
    hosts: tuple[str, ...], since: datetime | None, until: datetime | None, codes: tuple[str, ...]
) -> Scope:
    if since is not None and until is not None and since >= until:
        raise click.BadParameter("--since must be before --until", param_hint="--since")
    event_codes = tuple(dict.fromkeys(c.strip() for part in codes for c in part.split(",") if c.strip()))
    bad = [c for c in event_codes if not c.isdigit()]
    if bad:
        raise click.BadParameter(f"not an event ID: {', '.join(bad)}", param_hint="--event-code")
    return Scope(hosts=hosts, since=since, until=until, event_codes=event_codes)


def _client() -> Any:
    from detectors.commands import cluster_client as connect

    return connect()


def _emit(rows: Iterable[dict[str, Any]], columns: list[Column], fmt: str | None) -> int:
    out = sys.stdout
    return write_rows(rows, columns, choose_format(fmt, out), out)


def _progress() -> Callable[[int], None]:
    def show(buckets: int) -> None:
        click.echo(f"\rstack: {buckets:,} values read…", nl=False, err=True)

    return show


@click.group("hunt")
def hunt() -> None:
    """Hunt over the events: stack values, investigate a process, follow a hash across hosts."""


@hunt.command("stack")
@click.option(
    "--by",
    "fields",
    multiple=True,
    help="Field to stack by (repeatable; default: process.executable, process.hash.sha256).",
)
@click.option("--unknown", is_flag=True, help="Only rows no allowlist knows.")
@click.option("--rare", is_flag=True, help="Least frequent first (same as --sort rare).")
@click.option(
    "--sort",
    "order",
    type=click.Choice(["count", "rare", "value"]),
    default="count",
    show_default=True,
    help="count: most first; rare: fewest first; value: by the values, streamed.",
)
@click.option("--no-lookups", is_flag=True, help="Skip the allowlist and intel look-ups.")
@click.option(
    "--save",
    "save_as",
    metavar="NAME",
    help="Write every row to <prefix>-hunt-stack as stack NAME (for Kibana) instead of printing.",
)
@click.option("--page-size", type=click.IntRange(1, 10_000), default=1000, hidden=True)
@scope_options
@click.pass_context
def stack_cmd(
    ctx: click.Context,
    fields: tuple[str, ...],
    unknown: bool,
    rare: bool,
    order: str,
    no_lookups: bool,
    save_as: str | None,
    page_size: int,
    hosts: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    event_codes: tuple[str, ...],
    limit: int | None,
    fmt: str | None,
    prefix: str,
) -> None:
    """Count events by FIELDS (the seed's `stats count by Image, Hashes`), with first and last
    seen, host count and the allowlists / intel feeds that list each value."""
    from detectors.hunt.stack import DEFAULT_BY, StackRequest, StackTotals, columns, stack

    by = tuple(dict.fromkeys(fields)) or DEFAULT_BY
    req = StackRequest(
        fields=by,
        scope=_scope(hosts, since, until, event_codes),
        unknown_only=unknown,
        order="rare" if rare else order,  # type: ignore[arg-type]
        limit=limit,
        lookups=not no_lookups,
        page_size=page_size,
    )
    if save_as is not None:
        _save(ctx, save_as, req, unknown or limit is not None or no_lookups, prefix)
        return
    totals = StackTotals()
    chosen = choose_format(fmt, sys.stdout)
    # progress on a terminal, unless rows stream to the same terminal meanwhile
    progress = _progress() if sys.stderr.isatty() and (chosen == "table" or not sys.stdout.isatty()) else None
    try:
        rows: Iterable[dict[str, Any]] = (
            r.to_row(by) for r in stack(_client(), prefix, req, totals, progress)
        )
        if chosen == "table":
            rows = list(rows)
        if progress is not None:
            click.echo("\r\033[K", nl=False, err=True)
        shown = _emit(rows, columns(by), chosen)
    except _ERRORS as exc:
        fail(ctx, exc)
    for note in totals.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(
        f"summary: rows={shown} buckets={totals.buckets} events={totals.events} "
        f"allowlisted={totals.known} intel={totals.intel}",
        err=True,
    )


def _save(ctx: click.Context, name: str, req: Any, filtered: bool, prefix: str) -> None:
    from detectors.hunt.saved import save_stack

    if filtered:
        raise click.UsageError(
            "--save stores every row with its verdicts: drop --unknown, --limit, --no-lookups"
        )
    try:
        res = save_stack(_client(), prefix, name, req)
    except _ERRORS as exc:
        fail(ctx, exc)
    click.echo(res.line(), err=True)


@hunt.command("save")
@click.argument("names", nargs=-1)
@click.option("--host", "hosts", multiple=True, help="Only events of this host (repeatable).")
@click.option(
    "--since", callback=_time, help="From this @timestamp: ISO (UTC unless zoned), or ago: 24h, 7d."
)
@click.option("--until", callback=_time, help="Before this @timestamp (same forms as --since).")
@click.option(
    "--window", callback=_duration, help="Events of the last DURATION (30d), counted back from each save."
)
@click.option("--every", callback=_duration, help="Save again every DURATION (1h) until SIGTERM: a service.")
@prefix_option
@click.pass_context
def save_cmd(
    ctx: click.Context,
    names: tuple[str, ...],
    hosts: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    window: int | None,
    every: int | None,
    prefix: str,
) -> None:
    """Save the dashboard's stacks to <prefix>-hunt-stack (all, or NAMES: executables, modules,
    domains, destination-ips), replacing the previous save of each."""
    from detectors.hunt.saved import check_stacks, save_defaults, window_scope
    from detectors.hunt.stack import StackError

    if window is not None and (since is not None or until is not None):
        raise click.UsageError("--window counts back from each save: not with --since / --until")
    scope = _scope(hosts, since, until, ())
    names = tuple(dict.fromkeys(names))
    if every is not None:
        try:
            check_stacks(names)
        except StackError as exc:
            fail(ctx, exc)
        _serve(prefix, names, scope, window, every)
        return
    try:
        results = save_defaults(_client(), prefix, names, window_scope(scope, window))
    except _ERRORS as exc:
        fail(ctx, exc)
    for res in results:
        click.echo(res.line(), err=True)
    rows = sum(r.rows for r in results)
    unknown = sum(r.rows - r.allowlisted for r in results)
    click.echo(f"summary: stacks={len(results)} rows={rows} unknown={unknown}", err=True)


def _serve(prefix: str, names: tuple[str, ...], scope: Scope, window: int | None, every: int) -> None:
    import signal
    import threading

    from detectors.hunt.saved import run_every, save_defaults, window_scope

    es, stop = _client(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(f"hunt save: every {every}s (prefix {prefix})", err=True)
    rounds = run_every(
        lambda: save_defaults(es, prefix, names, window_scope(scope, window)),
        every,
        stop,
        lambda line: click.echo(line, err=True),
    )
    click.echo(f"summary: rounds={rounds}", err=True)


@hunt.command("process")
@click.argument("entity_id")
@click.option(
    "--depth",
    type=click.IntRange(1, 64),
    default=DEFAULT_DEPTH,
    show_default=True,
    help="Ancestors to follow at most.",
)
@scope_options
@click.pass_context
def process_cmd(
    ctx: click.Context,
    entity_id: str,
    depth: int,
    hosts: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    event_codes: tuple[str, ...],
    limit: int | None,
    fmt: str | None,
    prefix: str,
) -> None:
    """A process (its ProcessGuid, braces optional) as a timeline: its ancestry root first, then
    its own events, its children's creation and the events that target it, by time."""
    from detectors.hunt.process import ProcessRequest, process_rows
    from detectors.hunt.timeline import timeline_columns

    req = ProcessRequest(entity_id, _scope(hosts, since, until, event_codes), depth=depth, limit=limit)
    cols = timeline_columns()
    cols.insert(3, Column("depth", "DEPTH", align="right"))
    counts: dict[str, int] = {}

    def counted(rows: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
        for r in rows:
            counts[r["relation"]] = counts.get(r["relation"], 0) + 1
            yield r

    try:
        n = _emit(counted(process_rows(_client(), prefix, req)), cols, fmt)
    except _ERRORS as exc:
        fail(ctx, exc)
    parts = " ".join(f"{k}={counts.get(k, 0)}" for k in ("ancestor", "self", "child", "target"))
    broken = " broken=yes" if counts.get("missing") else ""
    click.echo(f"summary: rows={n} {parts}{broken}", err=True)


@hunt.command("hash")
@click.argument("value")
@click.option("--first", "first_only", is_flag=True, help="Only the first sighting per host.")
@click.option(
    "--window",
    callback=_duration,
    help="Spread window for patient zero (default: the bad-hash-spread rule's).",
)
@click.option(
    "--min-hosts",
    type=click.IntRange(min=1),
    help="Hosts within --window that make a spread (default: the rule's).",
)
@scope_options
@click.pass_context
def hash_cmd(
    ctx: click.Context,
    value: str,
    first_only: bool,
    window: int | None,
    min_hosts: int | None,
    hosts: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    event_codes: tuple[str, ...],
    limit: int | None,
    fmt: str | None,
    prefix: str,
) -> None:
    """Every sighting of a hash (MD5, SHA1, SHA256, … or imphash) across hosts in time order,
    each host's first marked and patient zero named: where the spread began."""
    from detectors.hunt.sightings import (
        HashRequest,
        first_sightings,
        hash_clause,
        sighting_rows,
        spread_defaults,
    )
    from detectors.hunt.timeline import timeline_columns

    try:
        hash_clause(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="VALUE") from None
    rule_window, rule_min = spread_defaults()
    req = HashRequest(
        value,
        _scope(hosts, since, until, event_codes),
        limit=limit,
        first_only=first_only,
        window=window or rule_window,
        min_hosts=min_hosts or rule_min,
    )
    cols = timeline_columns("SIGHTING")
    cols.insert(7, Column("file", "FILE", width=56))
    cols += [
        Column("first_on_host", "first_on_host", in_table=False),
        Column("patient_zero", "patient_zero", in_table=False),
    ]
    if first_only:
        cols.insert(4, Column("count", "COUNT", align="right"))
    try:
        es = _client()
        spread = first_sightings(es, prefix, req)
        _emit(sighting_rows(es, prefix, req, spread), cols, fmt)
    except _ERRORS as exc:
        fail(ctx, exc)
    click.echo(spread.summary(), err=True)
    if not spread.hosts:
        sys.exit(1)

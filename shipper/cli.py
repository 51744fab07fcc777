"""``sysmon-ship``: read Sysmon events, map them to ECS, ship them to Elasticsearch."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from shipper import __version__
from shipper.clifail import fail as _fail
from shipper.redact import echo_masked_traceback, mask_text


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sysmon-ship")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Ship Microsoft Sysmon events (EVTX, event XML, winlogbeat/NXLog JSON, rendered text) to
    Elasticsearch as Elastic Common Schema documents."""
    ctx.obj = {"debug": debug}


# ---------------------------------------------------------------------------------------------
# convert: ECS NDJSON to stdout or a file, no cluster involved

FORMAT_CHOICES = ["evtx", "xml", "json", "text"]


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--format", "fmt", type=click.Choice(FORMAT_CHOICES), help="Input form (default: detected from content)."
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write here instead of stdout."
)
@click.option(
    "--skip-errors", is_flag=True, help="Skip and count bad records instead of keeping them tagged."
)
@click.option(
    "--evtx-backend",
    type=click.Choice(["auto", "rust", "python"]),
    default="auto",
    show_default=True,
    help="EVTX parser: the Rust-backed evtx package, python-evtx, or auto (Rust, python-evtx as fallback).",
)
@click.option("--host", help="Computer name for forms that lack one (rendered text).")
@click.option("--json-summary", is_flag=True, help="Print the summary on stderr as JSON.")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Processes mapping sources in parallel (0: one per core when there are several sources; "
    "1: none, the fastest on a busy or 2-vCPU machine). The output is the same either way.",
)
@click.pass_context
def convert(
    ctx: click.Context,
    inputs: tuple[str, ...],
    fmt: str | None,
    output: str | None,
    skip_errors: bool,
    evtx_backend: str,
    host: str | None,
    json_summary: bool,
    workers: int,
) -> None:
    """Map Sysmon events in INPUTS (files, folders, globs, or - for standard input) to ECS
    NDJSON, one document per line. A summary goes to standard error."""

    import orjson

    from shipper.errors import SysmonError
    from shipper.pipeline import Stats, expand_inputs, iter_documents

    stats = Stats()
    try:
        paths = expand_inputs(inputs)
        out = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115
        try:
            write = out.write
            for item in iter_documents(
                paths,
                fmt=fmt,
                evtx_backend=evtx_backend,  # type: ignore[arg-type]  # click checked the choice
                host=host,
                skip_errors=skip_errors,
                stats=stats,
                workers=workers or None,
            ):
                write(item.json())
                write(b"\n")
        finally:
            if output:
                out.close()
            else:
                out.flush()
    except SysmonError as exc:
        if ctx.obj and ctx.obj.get("debug"):
            echo_masked_traceback(exc)
        raise click.ClickException(mask_text(str(exc))) from exc
    if json_summary:
        click.echo(orjson.dumps(stats.as_dict()).decode(), err=True)
    else:
        shown = stats.error_samples[:20]
        for sample in shown:
            click.echo(f"error: {sample}", err=True)
        total_errors = sum(stats.errors.values())
        if total_errors > len(shown):
            click.echo(f"error: … {total_errors - len(shown)} more not shown", err=True)
        if stats.errors:
            kinds = " ".join(f"{k}={v}" for k, v in sorted(stats.errors.items()))
            click.echo(f"convert: errors by kind: {kinds}", err=True)
        if stats.other_providers:
            others = " ".join(f"{k}={v}" for k, v in sorted(stats.other_providers.items()))
            click.echo(f"convert: other providers (skipped): {others}", err=True)
        click.echo(f"convert: {stats.summary()}", err=True)


# ---------------------------------------------------------------------------------------------
# setup, ship, watch, config check: talking to the cluster (shipper/config.py, ship.py, sink.py)


SHIP_FORMATS = ["evtx", "xml", "json", "text"]


def _cluster_options(func: Any) -> Any:
    """Options every cluster command shares; each overrides the file and the environment."""
    opts = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False),
            envvar="SYSMON_CONFIG",
            help="YAML configuration file (also SYSMON_CONFIG).",
        ),
        click.option("--url", help="Elasticsearch URL (overrides ES_URL and the file)."),
        click.option(
            "--ca-certs", type=click.Path(dir_okay=False), help="CA file to verify the cluster with."
        ),
        click.option(
            "--insecure", is_flag=True, help="Do not verify TLS certificates (throwaway test clusters only)."
        ),
        click.option("--index-prefix", help="Index name prefix (default sysmon; also SYSMON_INDEX_PREFIX)."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def _ship_options(func: Any) -> Any:
    opts = [
        click.option("--state-dir", type=click.Path(file_okay=False), help="Where checkpoints are kept."),
        click.option("--dead-letter", type=click.Path(dir_okay=False), help="Dead-letter NDJSON file."),
        click.option("--bulk-bytes", type=click.IntRange(min=1024), help="Max bytes per bulk request."),
        click.option("--bulk-docs", type=click.IntRange(min=1), help="Max documents per bulk request."),
        click.option("--in-flight", type=click.IntRange(min=1), help="Bulk requests in flight at once."),
        click.option("--max-retries", type=click.IntRange(min=0), help="Retries of a failing bulk request."),
        click.option(
            "--format", "fmt", type=click.Choice(SHIP_FORMATS), help="Input form (default: detected)."
        ),
        click.option(
            "--evtx-backend", type=click.Choice(["auto", "rust", "python"]), default="auto", show_default=True
        ),
        click.option("--host", help="Computer name for forms that lack one (rendered text)."),
        click.option(
            "--skip-errors", is_flag=True, help="Skip and count bad records instead of shipping them tagged."
        ),
        click.option(
            "--label",
            "labels",
            multiple=True,
            metavar="KEY=VALUE",
            help="labels.KEY on every document of the run (repeatable; config `labels:`).",
        ),
        click.option("--tag", "tags", multiple=True, help="A tag on every document of the run (repeatable)."),
        click.option("--agent-name", help="agent.name of the documents (default: this host's name)."),
        click.option("--setup/--no-setup", "do_setup", default=False, help="Install the templates first."),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on standard output."),
        click.option("--no-progress", is_flag=True, help="No progress bar even on a terminal."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def _resolve_config(ctx: click.Context, kw: dict[str, Any]) -> Any:
    from shipper.config import resolve
    from shipper.errors import SysmonError

    try:
        from shipper.envelope import parse_labels

        return resolve(
            kw.pop("config_file", None),
            agent_name=kw.pop("agent_name", None),
            labels=parse_labels(kw.pop("labels", ()), "--label"),
            tags=tuple(kw.pop("tags", ())),
            url=kw.pop("url", None),
            ca_certs=kw.pop("ca_certs", None),
            insecure=kw.pop("insecure", False),
            index_prefix=kw.pop("index_prefix", None),
            state_dir=kw.pop("state_dir", None),
            dead_letter=kw.pop("dead_letter", None),
            replicas=kw.pop("replicas", None),
            bulk={
                "max_bytes": kw.pop("bulk_bytes", None),
                "max_docs": kw.pop("bulk_docs", None),
                "in_flight": kw.pop("in_flight", None),
                "max_retries": kw.pop("max_retries", None),
            },
        )
    except (SysmonError, OSError) as exc:
        _fail(ctx, exc)


def _connect(ctx: click.Context, cfg: Any, **client_kwargs: Any) -> Any:
    from shipper.errors import SysmonError
    from shipper.es import check_cluster

    try:
        client = cfg.client(**client_kwargs)
        version = check_cluster(client, ", ".join(cfg.all_urls()))
    except SysmonError as exc:
        _fail(ctx, exc)
    return client, version


def _install_templates(cfg: Any, client: Any) -> list[str]:
    from shipper.templates import install

    return [
        f"{t.kind} template {t.name}: {change}"
        for t, change in install(client, cfg.index_prefix, shards=cfg.shards, replicas=cfg.replicas)
    ]


@main.command()
@_cluster_options
@click.option("--replicas", type=click.IntRange(min=0), help="Replicas of event indices (default 0).")
@click.pass_context
def setup(ctx: click.Context, /, **kw: Any) -> None:
    """Install or update the event index templates (idempotent; says what changed)."""
    from shipper.errors import SysmonError

    cfg = _resolve_config(ctx, kw)
    client, version = _connect(ctx, cfg)
    try:
        for line in _install_templates(cfg, client):
            click.echo(line)
    except SysmonError as exc:
        _fail(ctx, exc)
    click.echo(
        f"Elasticsearch {version}: read alias {cfg.index_prefix}-events, indices {cfg.index_prefix}-events-*"
    )


def _check_templates(cfg: Any, client: Any, do_setup: bool) -> None:
    """Install the event templates (``--setup``), or refuse to ship without them."""
    from shipper.templates import events_alias

    if do_setup:
        for line in _install_templates(cfg, client):
            click.echo(line, err=True)
        return
    alias = events_alias(cfg.index_prefix)
    found = client.options(ignore_status=(403, 404)).indices.exists_index_template(name=alias)
    # 403: these credentials may not read templates (a least-privilege writer); go on.
    if found.meta.status == 404:
        raise click.ClickException(
            f"index template {alias} is not installed: run `sysmon-ship setup` first, or pass --setup"
        )


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by the first SIGINT/SIGTERM (the run then stops cleanly); a second one
    gives up at once."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _report(shipper: Any, cfg: Any, as_json: bool) -> None:
    """The run's summary (JSON on stdout, or a line on stderr); exit 3 when some documents
    were dead-lettered."""
    import orjson

    summary = shipper.summary
    if as_json:
        click.echo(orjson.dumps(summary.as_dict()).decode())
    else:
        for sample in shipper.stats.error_samples[:10]:
            click.echo(f"read error: {sample}", err=True)
        click.echo(f"ship: {summary.line()}", err=True)
    if summary.dead_lettered:
        click.echo(
            f"ship: {summary.dead_lettered} documents were rejected by the cluster;"
            f" see {cfg.dead_letter_path}",
            err=True,
        )
        sys.exit(3)


def _run_shipping(
    ctx: click.Context, kw: dict[str, Any], inputs: tuple[str, ...], watch_folder: str | None
) -> None:
    from shipper.errors import SysmonError
    from shipper.inputs import SourceLabels
    from shipper.pipeline import expand_inputs
    from shipper.progress import for_terminal
    from shipper.ship import Shipper
    from shipper.stream import ReadOptions

    as_json, no_progress, do_setup = kw.pop("as_json"), kw.pop("no_progress"), kw.pop("do_setup")
    options = ReadOptions(
        fmt=kw.pop("fmt"),
        evtx_backend=kw.pop("evtx_backend"),
        host=kw.pop("host"),
        skip_errors=kw.pop("skip_errors"),
    )
    from_start, flush_interval = kw.pop("from_start", False), kw.pop("flush_interval", None)
    poll_interval, orphan_grace = kw.pop("poll_interval", 1.0), kw.pop("orphan_grace", 300.0)
    workers = kw.pop("workers", 1)
    cfg = _resolve_config(ctx, kw)
    if not inputs and watch_folder is None:
        inputs = cfg.inputs
        if not inputs:
            raise click.UsageError("give INPUT... or `inputs:` in the configuration file")
    # The sink retries by itself (bounded backoff with jitter); the client must not add its own.
    client, _version = _connect(ctx, cfg, max_retries=0, retry_on_timeout=False)
    try:
        _check_templates(cfg, client, do_setup)
        paths = expand_inputs(inputs) if watch_folder is None else []
        # a configured input's labels go to the sources it names, given again here or not
        named = list(inputs) if watch_folder is None else [watch_folder]
        source_labels = SourceLabels(named, cfg.input_labels) if cfg.input_labels else None
    except SysmonError as exc:
        _fail(ctx, exc)
    with _stop_on_signals() as stop:
        progress = for_terminal(not no_progress and not as_json)
        shipper = Shipper(
            cfg,
            client,
            options=options,
            from_start=from_start,
            flush_interval=flush_interval,
            progress=progress,
            stop=stop,
            source_labels=source_labels,
        )
        try:
            if watch_folder is None:
                shipper.run(paths, workers=workers or None)
            else:
                from shipper.watch import Watcher

                try:
                    Watcher(
                        shipper, watch_folder, poll_interval=poll_interval, orphan_grace=orphan_grace
                    ).run()
                finally:
                    shipper.close()
        except SysmonError as exc:
            click.echo(f"ship: {shipper.finish_summary().line()}", err=True)
            _fail(ctx, exc)
    _report(shipper, cfg, as_json)


@main.command()
@click.argument("inputs", nargs=-1)
@_cluster_options
@_ship_options
@click.option(
    "--from-start", is_flag=True, help="Ignore checkpoints and ship everything again (no duplicates)."
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Processes mapping sources in parallel (0: one per core when there are several sources; "
    "1: none). Documents and checkpoints are the same either way; standard input is read in-process.",
)
@click.pass_context
def ship(ctx: click.Context, /, inputs: tuple[str, ...], **kw: Any) -> None:
    """Ship Sysmon events in INPUTS (files, folders, globs, - for standard input) to Elasticsearch.

    Resumes where the last run stopped (checkpoints in --state-dir). Exit status: 0 when every
    document is in, 3 when some were dead-lettered, 1 on errors."""
    _run_shipping(ctx, kw, inputs, None)


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@_cluster_options
@_ship_options
@click.option(
    "--flush-interval",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds a document may wait in a partial bulk request.",
)
@click.option("--poll-interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True)
@click.option(
    "--orphan-grace",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Seconds a file that left FOLDER (rotated out, deleted) is still read through its open "
    "handle after it last grew.",
)
@click.pass_context
def watch(ctx: click.Context, /, folder: str, **kw: Any) -> None:
    """Ship new files in FOLDER as they appear and follow growing logs (rotation-safe) until
    SIGINT/SIGTERM, which flush and save the checkpoints."""
    _run_shipping(ctx, kw, (), folder)


@main.command()
@click.argument("dead_letter_file", type=click.Path(exists=True, dir_okay=False))
@_cluster_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on standard output.")
@click.pass_context
def replay(ctx: click.Context, /, dead_letter_file: str, **kw: Any) -> None:
    """Send the documents of DEAD_LETTER_FILE again, once the cause of their rejection is fixed.

    Each goes to the index and _id it was refused from; one already there counts as a duplicate.
    The file then keeps only what is still refused (with the new reason) and unreadable lines;
    it is removed when nothing is left. Exit status: 0 when every document is in, 3 when some
    are kept, 1 on errors (the file is left as it was)."""

    import orjson

    from shipper.errors import SysmonError
    from shipper.replay import replay as replay_file

    as_json = kw.pop("as_json")
    cfg = _resolve_config(ctx, kw)
    client, _version = _connect(ctx, cfg, max_retries=0, retry_on_timeout=False)
    try:
        summary = replay_file(client, dead_letter_file, cfg.bulk)
    except SysmonError as exc:
        _fail(ctx, exc)
    for problem in summary.problems:
        click.echo(f"replay: {problem} (kept in the file)", err=True)
    if as_json:
        click.echo(orjson.dumps(summary.as_dict()).decode())
    else:
        click.echo(summary.line(), err=True)
    if summary.rejected or summary.unreadable:
        sys.exit(3)


@main.group("config")
def config_group() -> None:
    """Inspect the effective configuration."""


@config_group.command("check")
@_cluster_options
@click.option("--state-dir", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def config_check(ctx: click.Context, /, **kw: Any) -> None:
    """Print the effective configuration (secrets masked) and test the connection."""
    import orjson

    as_json = kw.pop("as_json")
    cfg = _resolve_config(ctx, kw)
    masked = cfg.masked()
    if as_json:
        click.echo(orjson.dumps(masked, option=orjson.OPT_INDENT_2).decode())
    else:
        import yaml

        click.echo(yaml.safe_dump(masked, sort_keys=False).rstrip())
    _client, version = _connect(ctx, cfg)
    click.echo(f"connection: OK, Elasticsearch {version}", err=as_json)

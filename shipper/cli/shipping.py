"""``sysmon-ship ship`` and ``watch``, and what they share: the template check, the signals
that stop a run cleanly and the summary."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from shipper.cli.options import cluster_options, connect, resolve_config, ship_options, workers_option
from shipper.cli.setup_cmd import install_templates
from shipper.clifail import fail as _fail


def _check_templates(cfg: Any, client: Any, do_setup: bool) -> None:
    """Install the event templates (``--setup``), or refuse to ship without them."""
    from shipper.templates import events_alias

    if do_setup:
        for line in install_templates(cfg, client):
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


#: watch's (flush interval, poll interval) without and with --detect. An appended record waits
#: up to a poll, then up to a flush before its bulk request; its alert follows the answer (~0.1 s
#: on a local node: intel enrichment, ancestry, a refreshing bulk). At 0.1 + 0.1 the demo's alert
#: is searchable ~0.3-0.4 s after the append (0.25 + 0.25 gave 0.8-1.1 s); 1.0 + 1.0 (fewer,
#: fuller requests) stays the default without detection.
WATCH_DEFAULTS: dict[bool, tuple[float, float]] = {False: (1.0, 1.0), True: (0.1, 0.1)}


def _detect_stage(cfg: Any) -> Any:
    """The stream detection stage (``--detect``): ``detectors`` is imported only here. Alerts
    get a client of their own, with the client's retries (the events' client has none: the sink
    retries by itself)."""
    from detectors.stream.build import build_stage

    d = cfg.detect
    return build_stage(
        cfg.client(),
        cfg.index_prefix,
        rules_dirs=d.rules_dirs,
        builtin=d.builtin,
        config=d.config,
        intel_poll=d.intel_poll,
        process_cache=d.process_cache,
        warn=lambda line: click.echo(line, err=True),
    )


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
    poll_interval, orphan_grace = kw.pop("poll_interval", None), kw.pop("orphan_grace", 300.0)
    workers = kw.pop("workers", 1)
    cfg = resolve_config(ctx, kw)
    if watch_folder is not None:  # an alert searchable within a second: see WATCH_DEFAULTS
        flush_default, poll_default = WATCH_DEFAULTS[cfg.detect.enabled]
        flush_interval = flush_default if flush_interval is None else flush_interval
        poll_interval = poll_default if poll_interval is None else poll_interval
    if not inputs and watch_folder is None:
        inputs = cfg.inputs
        if not inputs:
            raise click.UsageError("give INPUT... or `inputs:` in the configuration file")
    # The sink retries by itself (bounded backoff with jitter); the client must not add its own.
    client, _version = connect(ctx, cfg, max_retries=0, retry_on_timeout=False)
    try:
        _check_templates(cfg, client, do_setup)
        found: dict[str, str] = {}  # source → the input that named it
        paths = expand_inputs(inputs, found) if watch_folder is None else []
        # a configured input's labels go to the sources it names, given again here or not
        given = list(inputs) if watch_folder is None else [watch_folder]
        source_labels = SourceLabels(given, cfg.input_labels, found) if cfg.input_labels else None
    except SysmonError as exc:
        _fail(ctx, exc)
    detect = _detect_stage(cfg) if cfg.detect.enabled else None
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
            detect=detect,
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


@click.command()
@click.argument("inputs", nargs=-1)
@cluster_options
@ship_options
@click.option(
    "--from-start", is_flag=True, help="Ignore checkpoints and ship everything again (no duplicates)."
)
@workers_option
@click.pass_context
def ship(ctx: click.Context, /, inputs: tuple[str, ...], **kw: Any) -> None:
    """Ship Sysmon events in INPUTS (files, folders, globs, - for standard input) to Elasticsearch.

    Resumes where the last run stopped (checkpoints in --state-dir). Exit status: 0 when every
    document is in, 3 when some were dead-lettered, 1 on errors."""
    _run_shipping(ctx, kw, inputs, None)


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@cluster_options
@ship_options
@click.option(
    "--flush-interval",
    type=click.FloatRange(min=0.05),
    help="Seconds a document may wait in a partial bulk request [1.0; 0.25 with --detect].",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.05),
    help="Seconds between looks at the folder [1.0; 0.25 with --detect].",
)
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

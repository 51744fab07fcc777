"""``sysmon-ship convert``: ECS NDJSON to stdout or a file, no cluster involved."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from shipper.cli.options import read_options, workers_option
from shipper.redact import echo_masked_traceback, mask_text

if TYPE_CHECKING:
    from shipper.stats import Stats


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write here instead of stdout."
)
@read_options
@click.option("--json-summary", is_flag=True, help="Print the summary on stderr as JSON.")
@workers_option
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
        _print_summary(stats)


def _print_summary(stats: Stats) -> None:
    """The first error samples, errors by kind, skipped providers and the counts, on stderr."""
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

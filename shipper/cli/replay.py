"""``sysmon-ship replay``: send a dead-letter file's documents again."""

from __future__ import annotations

import sys
from typing import Any

import click

from shipper.cli.options import cluster_options, connect, resolve_config
from shipper.clifail import fail as _fail


@click.command()
@click.argument("dead_letter_file", type=click.Path(exists=True, dir_okay=False))
@cluster_options
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
    cfg = resolve_config(ctx, kw)
    client, _version = connect(ctx, cfg, max_retries=0, retry_on_timeout=False)
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

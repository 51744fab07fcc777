"""``sysmon-ship setup``: install or update the event index templates."""

from __future__ import annotations

from typing import Any

import click

from shipper.cli.options import cluster_options, connect, resolve_config
from shipper.clifail import fail as _fail


def install_templates(cfg: Any, client: Any) -> list[str]:
    """Install the event templates; one line per template saying what changed."""
    from shipper.templates import install

    return [
        f"{t.kind} template {t.name}: {change}"
        for t, change in install(client, cfg.index_prefix, shards=cfg.shards, replicas=cfg.replicas)
    ]


@click.command()
@cluster_options
@click.option("--replicas", type=click.IntRange(min=0), help="Replicas of event indices (default 0).")
@click.pass_context
def setup(ctx: click.Context, /, **kw: Any) -> None:
    """Install or update the event index templates (idempotent; says what changed)."""
    from shipper.errors import SysmonError

    cfg = resolve_config(ctx, kw)
    client, version = connect(ctx, cfg)
    try:
        for line in install_templates(cfg, client):
            click.echo(line)
    except SysmonError as exc:
        _fail(ctx, exc)
    click.echo(
        f"Elasticsearch {version}: read alias {cfg.index_prefix}-events, indices {cfg.index_prefix}-events-*"
    )

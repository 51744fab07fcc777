"""``sysmon-ship config check``: the effective configuration and a connection test."""

from __future__ import annotations

from typing import Any

import click

from shipper.cli.options import cluster_options, connect, resolve_config


@click.group("config")
def config_group() -> None:
    """Inspect the effective configuration."""


@config_group.command("check")
@cluster_options
@click.option("--state-dir", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def config_check(ctx: click.Context, /, **kw: Any) -> None:
    """Print the effective configuration (secrets masked) and test the connection."""
    import orjson

    as_json = kw.pop("as_json")
    cfg = resolve_config(ctx, kw)
    masked = cfg.masked()
    if as_json:
        click.echo(orjson.dumps(masked, option=orjson.OPT_INDENT_2).decode())
    else:
        import yaml

        click.echo(yaml.safe_dump(masked, sort_keys=False).rstrip())
    _client, version = connect(ctx, cfg)
    click.echo(f"connection: OK, Elasticsearch {version}", err=as_json)

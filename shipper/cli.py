"""``sysmon-ship``: read Sysmon events, map them to ECS, ship them to Elasticsearch."""

from __future__ import annotations

import click

from shipper import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sysmon-ship")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Ship Microsoft Sysmon events (EVTX, event XML, winlogbeat/NXLog JSON, rendered text) to
    Elasticsearch as Elastic Common Schema documents."""
    ctx.obj = {"debug": debug}

"""``sysmon-ship``: read Sysmon events, map them to ECS, ship them to Elasticsearch.

The group lives here; each command lives in the module named after it and is registered below.
"""

from __future__ import annotations

import click

from shipper import __version__
from shipper.cli import config_cmd, convert, replay, setup_cmd, shipping


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sysmon-ship")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Ship Microsoft Sysmon events (EVTX, event XML, winlogbeat/NXLog JSON, rendered text) to
    Elasticsearch as Elastic Common Schema documents."""
    ctx.obj = {"debug": debug}


main.add_command(convert.convert)
main.add_command(setup_cmd.setup)
main.add_command(shipping.ship)
main.add_command(shipping.watch)
main.add_command(replay.replay)
main.add_command(config_cmd.config_group)

__all__ = ["main"]

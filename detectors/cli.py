"""``sysmon-detect``: threat intel, detection rules and their scheduler."""

from __future__ import annotations

import click

from shipper import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sysmon-detect")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Load threat intel and allowlists, and run detection rules over Sysmon events in
    Elasticsearch."""
    ctx.obj = {"debug": debug}


from detectors.intel.cli import intel  # noqa: E402

main.add_command(intel)

from detectors.intel.enrich.cli import enrich_cmd  # noqa: E402

intel.add_command(enrich_cmd)

from detectors.commands import register as _register_detector_commands  # noqa: E402

_register_detector_commands(main)

from detectors.kibana.cli import kibana  # noqa: E402

main.add_command(kibana)

from detectors.sigma.cli import sigma_group  # noqa: E402

main.add_command(sigma_group)

from detectors.hunt.cli import hunt  # noqa: E402

main.add_command(hunt)

"""``sysmon-detect kibana export|import``: the saved objects with the index prefix filled in,
written out or posted to Kibana."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from detectors.prefix import prefix_option
from shipper.clifail import fail as _fail
from shipper.errors import SysmonError

from .client import KibanaAuth, import_objects
from .objects import export, load_objects, with_prefix


@click.group("kibana")
def kibana() -> None:
    """Kibana 9 saved objects: data views, saved searches, Lens visualisations, dashboards."""


@kibana.command("export")
@prefix_option
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write one NDJSON file per dashboard (and the data views) into DIR; default: all to stdout.",
)
@click.pass_context
def export_cmd(ctx: click.Context, prefix: str, out: Path | None) -> None:
    """Write the saved objects with the index prefix filled in (Kibana: Stack Management → Saved
    objects → Import, data-views.ndjson first)."""
    try:
        objects = with_prefix(load_objects(), prefix)
        if out is None:
            click.echo(objects.ndjson().decode("utf-8"), nl=False)
            return
        for path in export(objects, out):
            click.echo(f"wrote {path}", err=True)
        click.echo(f"summary: files={len(objects.files)} objects={len(objects.all())}", err=True)
    except SysmonError as exc:
        _fail(ctx, exc)


@kibana.command("import")
@click.option(
    "--kibana-url", envvar="KIBANA_URL", required=True, help="e.g. https://kibana:5601 (or KIBANA_URL)."
)
@prefix_option
@click.option("--space", help="Kibana space id (default: the default space).")
@click.option(
    "--ca-certs",
    envvar="KIBANA_CA_CERTS",
    type=click.Path(dir_okay=False),
    help="CA file for Kibana's certificate (or KIBANA_CA_CERTS); certificates are always verified.",
)
@click.pass_context
def import_cmd(
    ctx: click.Context, kibana_url: str, prefix: str, space: str | None, ca_certs: str | None
) -> None:
    """Import (overwrite) the saved objects into Kibana. Auth: KIBANA_API_KEY, else
    ES_USERNAME/ES_PASSWORD (each also as *_FILE)."""
    try:
        objects = with_prefix(load_objects(), prefix)
        res = import_objects(objects, kibana_url, KibanaAuth.from_env(), space=space, ca_certs=ca_certs)
    except SysmonError as exc:
        _fail(ctx, exc)
    for err in res.errors:
        click.echo(f"error: {err}", err=True)
    click.echo(f"summary: imported={res.success_count} errors={len(res.errors)}", err=True)
    if res.errors:
        sys.exit(1)

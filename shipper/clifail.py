"""How every command line of the project ends on an error: one line naming what and where,
secrets masked, and with ``--debug`` the traceback too (masked as well)."""

from __future__ import annotations

from typing import NoReturn

import click

from shipper.redact import echo_masked_traceback, mask_text


def fail(ctx: click.Context, exc: BaseException) -> NoReturn:
    if (ctx.obj or {}).get("debug"):
        echo_masked_traceback(exc)
    raise click.ClickException(mask_text(str(exc))) from exc

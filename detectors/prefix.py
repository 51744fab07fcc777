"""The ``--prefix`` option of every ``sysmon-detect`` command: the flag, else
``SYSMON_INDEX_PREFIX``, else ``sysmon``, checked as the shipper checks it (one place for all
three command groups)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from shipper.config import DEFAULT_PREFIX, check_prefix
from shipper.errors import ConfigError

ENV = "SYSMON_INDEX_PREFIX"
F = TypeVar("F", bound=Callable[..., Any])


def resolve(flag: str | None) -> str:
    """The prefix to use; a ConfigError naming where a bad one came from."""
    if flag:
        return check_prefix(flag, "--prefix")
    from_env = os.environ.get(ENV)
    if from_env:
        return check_prefix(from_env, ENV)
    return DEFAULT_PREFIX


def _callback(_ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    try:
        return resolve(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param=param) from None


def prefix_option(func: F) -> F:
    """``--prefix``, resolved and checked before the command runs."""
    option = click.option(
        "--prefix", callback=_callback, help=f"Index prefix (default: {ENV} or {DEFAULT_PREFIX})."
    )
    return option(func)

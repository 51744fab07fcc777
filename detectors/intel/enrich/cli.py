"""``sysmon-detect intel enrich``: look hashes up in VirusTotal, MalwareBazaar and CIRCL
hashlookup; malicious verdicts become intel feeds, known-good ones allowlists.

Prints one line per service and a ``summary:`` line (or, with ``--json``, one JSON object).
Exit 0 when every service ran or stopped on its quota (a later run resumes), 1 when a service
failed (a rejected key, unreachable) or a feed could not be loaded. Keys are never printed.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from detectors.intel.cli import _client, _guard
from detectors.intel.indices import setup_intel
from detectors.intel.model import normalise_hash
from detectors.prefix import prefix_option
from shipper.durations import parse_duration
from shipper.errors import ConfigError

from .hashes import DEFAULT_FIELDS, unknown_hashes
from .options import select
from .run import RunOptions, RunReport, ServiceReport, enrich
from .services import SERVICES

_COUNTS = ("requests", "looked_up", "cached", "malicious", "known_good", "unknown", "skipped_quota",
           "skipped_known", "errors")  # fmt: skip
_OUTCOMES = ("hashes", "malicious", "known_good", "unknown", "pending")


def _seconds(value: str, option: str, *, zero: bool = False) -> int:
    if zero and value.strip() == "0":
        return 0
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _hashes(values: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for value in values:
        try:
            out.append(normalise_hash(value)[1])
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="HASHES") from None
    return list(dict.fromkeys(out))


def _line(rep: ServiceReport) -> str:
    counts = " ".join(f"{k}={getattr(rep, k)}" for k in _COUNTS)
    feeds = ",".join(f"{f}@{g}" for f, g in sorted(rep.feeds.items()))
    today = f" today={rep.used_today}" + (f"/{rep.per_day}" if rep.per_day is not None else "")
    text = f"{rep.service}: {rep.status} {counts}" + (today if rep.status != "disabled" else "")
    text += f" feeds={feeds}" if feeds else ""
    return text + (f"\n  {rep.status}: {rep.reason}" if rep.reason else "")


def _summary(report: RunReport) -> str:
    reps = list(report.services.values())
    outcomes = " ".join(f"{k}={getattr(report, k)}" for k in _OUTCOMES)
    totals = " ".join(f"{k}={sum(getattr(r, k) for r in reps)}" for k in ("requests", "looked_up", "cached"))
    stopped = ",".join(r.service for r in reps if r.status in ("quota", "failed")) or "-"
    return f"summary: {outcomes} {totals} stopped={stopped} feed_errors={len(report.feed_errors)}"


@click.command("enrich")
@click.argument("hashes", nargs=-1)
@click.option(
    "--unknown",
    is_flag=True,
    help="Every distinct hash in the events that no feed or allowlist lists.",
)
@click.option(
    "--field",
    "fields",
    multiple=True,
    default=DEFAULT_FIELDS,
    show_default=True,
    help="With --unknown: event hash fields to read.",
)
@click.option(
    "--since",
    default="30d",
    show_default=True,
    help="With --unknown: events of this last period (30d, 12h, …; 0: all).",
)
@click.option(
    "--service",
    "services",
    multiple=True,
    type=click.Choice(list(SERVICES)),
    help="Services to ask [every one whose key is set].",
)
@click.option(
    "--vt-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="VirusTotal API key file (else env VT_API_KEY).",
)
@click.option(
    "--malwarebazaar-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="MalwareBazaar Auth-Key file (else env MALWAREBAZAAR_API_KEY).",
)
@click.option("--url", "urls", multiple=True, metavar="SERVICE=URL", help="A service's base URL.")
@click.option(
    "--limit",
    "limits",
    multiple=True,
    metavar="SERVICE=PER_MIN[/PER_DAY]",
    help="A service's request budget [virustotal=4/500 malwarebazaar=60 circl=60].",
)
@click.option(
    "--min-detections",
    type=click.IntRange(1),
    default=3,
    show_default=True,
    help="VirusTotal engines that must detect a file for a malicious verdict.",
)
@click.option("--max-age", default="7d", show_default=True, help="Look a cached verdict up again after this.")
@click.option(
    "--unknown-max-age", default="1d", show_default=True, help="The same for 'the service does not know it'."
)
@click.option(
    "--max-wait",
    default="10m",
    show_default=True,
    help="Longest a run waits for rate limits in all; the rest is left for the next run.",
)
@click.option("--timeout", type=click.FloatRange(1), default=30.0, show_default=True, help="Per request (s).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@prefix_option
def enrich_cmd(
    hashes: tuple[str, ...],
    unknown: bool,
    fields: tuple[str, ...],
    since: str,
    services: tuple[str, ...],
    vt_key_file: Path | None,
    malwarebazaar_key_file: Path | None,
    urls: tuple[str, ...],
    limits: tuple[str, ...],
    min_detections: int,
    max_age: str,
    unknown_max_age: str,
    max_wait: str,
    timeout: float,
    as_json: bool,
    prefix: str,
) -> None:
    """Look HASHES, or with --unknown the events' unknown hashes, up in external services."""
    if unknown == bool(hashes):
        raise click.UsageError("give HASHES or --unknown (not both)")
    given = _hashes(hashes)
    options = RunOptions(
        max_age=timedelta(seconds=_seconds(max_age, "--max-age")),
        unknown_max_age=timedelta(seconds=_seconds(unknown_max_age, "--unknown-max-age")),
        max_wait=float(_seconds(max_wait, "--max-wait", zero=True)),
    )
    span = _seconds(since, "--since", zero=True)
    key_files = {"virustotal": vt_key_file, "malwarebazaar": malwarebazaar_key_file}
    try:
        chosen = select(services, key_files=key_files, urls=urls, limits=limits,
                        min_detections=min_detections, timeout=timeout)  # fmt: skip
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    es = _client()
    _guard(lambda: setup_intel(es, prefix))
    now = datetime.now(UTC)
    source = given or unknown_hashes(
        es, prefix, fields=fields, since=timedelta(seconds=span) if span else None, now=now
    )
    report: RunReport = _guard(
        lambda: enrich(es, prefix, source, chosen.settings, options, disabled=chosen.disabled)
    )
    if as_json:
        body: dict[str, object] = {k: getattr(report, k) for k in _OUTCOMES}
        body |= {
            "services": {k: v.to_dict() for k, v in report.services.items()},
            "feed_errors": report.feed_errors,
        }
        click.echo(json.dumps(body, sort_keys=True))
    else:
        for rep in report.services.values():
            click.echo(_line(rep))
        for error in report.feed_errors:
            click.echo(f"feed error: {error}", err=True)
        click.echo(_summary(report))
    if report.feed_errors or any(r.status == "failed" for r in report.services.values()):
        sys.exit(1)

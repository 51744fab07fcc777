"""``sysmon-detect intel …``: set up the intel indices, load, refresh, list, remove and check feeds.

Cluster from the environment (``ES_URL``, ``ES_API_KEY``, …; see ``shipper.es``), index prefix from
``--prefix`` / ``SYSMON_INDEX_PREFIX``. ``load`` and ``refresh`` end with one ``summary:`` line a
script can parse; ``refresh`` exits 1 if any feed failed (after trying every other one); ``check``
exits 0 when the value is listed and 1 when it is not.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from elasticsearch import Elasticsearch

from detectors.prefix import prefix_option
from detectors.retro.cli import hunt_now, hunt_rules_options, hunt_summary, rules_for_hunt
from shipper.durations import parse_duration
from shipper.errors import SysmonError
from shipper.es import ClusterSettings, make_client
from shipper.redact import echo_masked_traceback, mask_text

from .config import FeedConfig, FeedKind, load_feeds
from .formats import format_names
from .indices import DEFAULT_CHUNK_SIZE, MAX_TERMS_COUNT, setup_intel
from .loader import (
    LoadResult,
    default_cache_dir,
    feed_from_location,
    list_states,
    load_feed,
    refresh_feeds,
    remove_feed,
)
from .lookup import is_listed
from .model import INDICATOR_TYPES, IndicatorType

F = TypeVar("F", bound=Callable[..., Any])


def _client() -> Elasticsearch:
    try:
        return make_client(ClusterSettings.from_env())
    except (OSError, SysmonError) as exc:
        raise click.ClickException(str(exc)) from None


def _common(func: F) -> F:
    return prefix_option(func)


def _cache_option(func: F) -> F:
    return click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Download cache (env SYSMON_INTEL_CACHE; default ~/.cache/sysmon-detect/intel).",
    )(func)


def _chunk_option(func: F) -> F:
    return click.option(
        "--chunk-size",
        type=click.IntRange(1, MAX_TERMS_COUNT),
        default=DEFAULT_CHUNK_SIZE,
        show_default=True,
        help="Values per lookup document (at most index.max_terms_count).",
    )(func)


def _guard(func: Callable[[], Any]) -> Any:
    """Run ``func``; project errors become ClickExceptions (tracebacks with --debug)."""
    ctx = click.get_current_context()
    debug = bool((ctx.find_root().obj or {}).get("debug"))
    try:
        return func()
    except click.ClickException:
        raise
    except SysmonError as exc:
        if debug:
            echo_masked_traceback(exc)
        raise click.ClickException(mask_text(str(exc))) from None
    except Exception as exc:
        if debug:
            echo_masked_traceback(exc)
        raise click.ClickException(mask_text(f"{type(exc).__name__}: {exc}")) from None


def _echo_result(res: LoadResult) -> None:
    if res.status == "failed":
        click.echo(f"{res.feed}: FAILED: {res.error}", err=True)
    elif res.status == "skipped":
        click.echo(f"{res.feed}: not due")
    elif res.status == "not_modified":
        click.echo(f"{res.feed}: not modified (generation {res.generation} stays)")
    else:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(res.counts.items())) or "nothing"
        click.echo(f"{res.feed}: loaded generation {res.generation}: {counts} in {res.duration:.1f}s")
    for issue in res.issues[:20]:
        click.echo(f"  {issue}", err=True)
    if res.issue_count > 20:
        click.echo(f"  … {res.issue_count - 20} more issues", err=True)


def _summary(results: list[LoadResult], hunts: dict[str, int] | None = None) -> str:
    by: dict[str, int] = {}
    for r in results:
        by[r.status] = by.get(r.status, 0) + 1
    parts = " ".join(f"{k}={by.get(k, 0)}" for k in ("loaded", "not_modified", "skipped", "failed"))
    total = sum(r.total for r in results if r.status == "loaded")
    issues = sum(r.issue_count for r in results)
    seconds = sum(r.duration for r in results)
    added = sum(r.added or 0 for r in results if r.status == "loaded")
    text = f"summary: feeds={len(results)} {parts} indicators={total} issues={issues} seconds={seconds:.2f}"
    text += f" added={added}"
    return text + "".join(f" {k}={v}" for k, v in (hunts or {}).items())


def _retro_window(func: F) -> F:
    return click.option(
        "--retro-window",
        metavar="DURATION",
        default=None,
        help="Retro-hunt the indicators a load adds only over events this far back from the load "
        "(30d, 12h, …; default: every retained event; overrides the feed's retro_window).",
    )(func)


def _window_seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(parse_duration(text))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--retro-window") from None


def _hunt(es: Elasticsearch, prefix: str, results: list[LoadResult], opts: dict[str, Any]) -> dict[str, int]:
    """Hunt what the loads queued (unless --no-hunt): the summary's hunt figures."""
    if opts["no_hunt"] or not any(r.status == "loaded" for r in results):
        return {}  # an allowlist load may have queued a hunt too (entries removed)
    rules = rules_for_hunt(opts["rules_dirs"], opts["no_builtin"])
    hunts = _guard(lambda: hunt_now(es, prefix, rules))
    return hunt_summary(hunts) if hunts else {}


@click.group("intel")
def intel() -> None:
    """Threat-intel feeds and allowlists in Elasticsearch."""


@intel.command("setup")
@_common
def setup_cmd(prefix: str) -> None:
    """Install the intel index templates and create the indices."""
    es = _client()
    names = _guard(lambda: setup_intel(es, prefix))
    click.echo("ready: " + ", ".join(names))


@intel.command("load")
@click.argument("feed_name", required=False)
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="Feed YAML.")
@click.option("--file", "file_", type=click.Path(exists=True, path_type=Path), help="A local feed file.")
@click.option("--url", help="An http(s) feed URL.")
@click.option(
    "--format", "fmt", default="auto", show_default=True, help="Feed format, or auto (from content)."
)
@click.option(
    "--type",
    "types",
    multiple=True,
    type=click.Choice(sorted(INDICATOR_TYPES)),
    help="Keep only these types.",
)
@click.option("--name", help="Feed name (default: the file name stem).")
@click.option("--kind", type=click.Choice(["intel", "allow"]), default="intel", show_default=True)
@click.option("--confidence", type=click.IntRange(0, 100), help="Default confidence 0-100.")
@click.option(
    "--force",
    is_flag=True,
    help="Reload even when the server says not modified, and accept a load the coverage guard "
    "refuses (empty, mostly invalid, or under min_ratio of the last good generation).",
)
@click.option(
    "--min-ratio",
    type=click.FloatRange(0, 1),
    default=None,
    help="With --file/--url: refuse a load smaller than this share of the last good one [0.1].",
)
@_retro_window
@hunt_rules_options
@_chunk_option
@_cache_option
@_common
def load_cmd(
    feed_name: str | None,
    config_path: Path | None,
    file_: Path | None,
    url: str | None,
    fmt: str,
    types: tuple[str, ...],
    name: str | None,
    kind: str,
    confidence: int | None,
    force: bool,
    min_ratio: float | None,
    chunk_size: int,
    cache_dir: Path | None,
    prefix: str,
    retro_window: str | None,
    **hunt: Any,
) -> None:
    """Load one feed: FEED_NAME from --config, or --file/--url; then retro-hunt the indicators
    it added over the retained events (unless --no-hunt)."""
    window = _window_seconds(retro_window)
    if sum(x is not None for x in (file_, url)) + (feed_name is not None) != 1:
        raise click.UsageError("give exactly one of FEED_NAME (with --config), --file or --url")
    if fmt != "auto" and fmt not in format_names():
        raise click.BadParameter(
            f"unknown format {fmt!r} (known: auto, {', '.join(format_names())})", param_hint="--format"
        )
    if feed_name is not None:
        if config_path is None:
            raise click.UsageError("FEED_NAME needs --config FILE")
        feeds = _guard(lambda: load_feeds(config_path))
        match = [f for f in feeds if f.name == feed_name]
        if not match:
            raise click.ClickException(f"no feed {feed_name!r} in {config_path}")
        feed: FeedConfig = match[0]
    else:
        location = str(file_.resolve()) if file_ is not None else str(url)
        feed = _guard(
            lambda: feed_from_location(
                location,
                name=name,
                format=fmt,
                kind=cast(FeedKind, kind),
                types=cast(tuple[IndicatorType, ...], types),
                confidence=confidence,
                min_ratio=min_ratio,
            )
        )
    if window is not None:
        feed = replace(feed, retro_window=timedelta(seconds=window))
    es = _client()
    _guard(lambda: setup_intel(es, prefix))
    res = load_feed(es, feed, prefix=prefix, chunk_size=chunk_size, cache_dir=cache_dir, force=force)
    _echo_result(res)
    hunts = _hunt(es, prefix, [res], hunt)
    click.echo(_summary([res], hunts))
    if res.status == "failed" or hunts.get("hunts_failed"):
        sys.exit(1)


@intel.command("refresh")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="SYSMON_INTEL_FEEDS",
    required=True,
    help="Feed YAML (env SYSMON_INTEL_FEEDS).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Every enabled feed, due or not, accepting loads the coverage guard refuses.",
)
@_retro_window
@hunt_rules_options
@_chunk_option
@_cache_option
@_common
def refresh_cmd(
    config_path: Path,
    force: bool,
    chunk_size: int,
    cache_dir: Path | None,
    prefix: str,
    retro_window: str | None,
    **hunt: Any,
) -> None:
    """Load every enabled feed that is due (cron-friendly), then retro-hunt what the loads added
    (unless --no-hunt). Exits 1 if any feed or hunt failed."""
    window = _window_seconds(retro_window)
    feeds = _guard(lambda: load_feeds(config_path))
    if window is not None:
        feeds = [replace(f, retro_window=timedelta(seconds=window)) for f in feeds]
    es = _client()
    _guard(lambda: setup_intel(es, prefix))
    results = refresh_feeds(
        es,
        feeds,
        prefix=prefix,
        cache_dir=cache_dir or default_cache_dir(),
        chunk_size=chunk_size,
        force=force,
        on_result=_echo_result,
    )
    hunts = _hunt(es, prefix, results, hunt)
    click.echo(_summary(results, hunts))
    if any(r.status == "failed" for r in results) or hunts.get("hunts_failed"):
        sys.exit(1)


@intel.command("list")
@_common
def list_cmd(prefix: str) -> None:
    """Feeds and allowlists: kind, counts by type, last refresh, last error."""
    es = _client()
    states = _guard(lambda: list_states(es, prefix=prefix))
    if not states:
        click.echo("no feeds loaded")
        return
    for s in states:
        counts = ", ".join(f"{k} {v}" for k, v in sorted((s.get("counts") or {}).items())) or "empty"
        click.echo(
            f"{s.get('feed')}\tkind={s.get('kind')}\tgeneration={s.get('generation')}\t"
            f"status={s.get('status')}\tlast_refresh={s.get('last_refresh') or '-'}\t"
            f"last_attempt={s.get('last_attempt') or '-'}\t"
            f"hunts_pending={len(s.get('retro_pending') or [])}\t{counts}"
        )
        if s.get("last_error"):
            click.echo(f"  last error: {s['last_error']}")


@intel.command("remove")
@click.argument("feed_name")
@_common
def remove_cmd(feed_name: str, prefix: str) -> None:
    """Remove a feed and everything it loaded."""
    es = _client()
    deleted = _guard(lambda: remove_feed(es, feed_name, prefix=prefix))
    if not deleted:
        raise click.ClickException(f"no feed {feed_name!r}")
    click.echo(f"removed {feed_name}: {deleted} documents deleted")


@intel.command("check")
@click.argument("value")
@_common
def check_cmd(value: str, prefix: str) -> None:
    """Which feeds and allowlists list VALUE (an IP inside a listed CIDR included).
    Exit status 0 when listed, 1 when not."""
    es = _client()
    docs = _guard(lambda: is_listed(es, value, prefix=prefix))
    if not docs:
        click.echo(f"{value}: not listed")
        sys.exit(1)
    for d in docs:
        i = d.get("intel", {})
        ind = d.get("threat", {}).get("indicator", {})
        extra = " ".join(
            f"{k}={ind[k]}" for k in ("confidence", "first_seen", "last_seen", "description") if ind.get(k)
        )
        click.echo(
            f"{value}: {i.get('kind')} feed={i.get('feed')} {i.get('type')}={i.get('value')} {extra}".rstrip()
        )

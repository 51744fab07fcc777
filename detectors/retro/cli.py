"""The retro-hunt on the command line: ``intel load`` / ``intel refresh`` hunt right after their
loads (unless ``--no-hunt``); ``run`` and ``daemon`` hunt whatever is still queued before the
rules run. Whichever comes first does it; the other finds the queue empty."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
import orjson
from elasticsearch import Elasticsearch

from detectors.loader import load_rules, rule_dirs
from detectors.model import Rule
from detectors.retro.hunt import HuntResult, RetroHunter

F = TypeVar("F", bound=Callable[..., Any])


def no_hunt_option(func: F) -> F:
    return click.option(
        "--no-hunt",
        is_flag=True,
        help="Leave the retro-hunt of newly listed indicators to the next detector run.",
    )(func)


def hunt_rules_options(func: F) -> F:
    """``--rules-dir`` / ``--no-builtin``: the rules a hunt runs (their ``intel_match`` ones)."""
    func = click.option(
        "--rules-dir",
        "rules_dirs",
        multiple=True,
        type=click.Path(file_okay=False),
        help="A folder of your own rules whose intel_match rules also hunt (repeatable; also "
        "SYSMON_RULES_DIRS).",
    )(func)
    func = click.option("--no-builtin", is_flag=True, help="Leave out the built-in rules.")(func)
    return no_hunt_option(func)


def rules_for_hunt(rules_dirs: Sequence[str], no_builtin: bool) -> list[Rule]:
    """The rules from the usual folders; a broken rule file is reported and left out."""
    res = load_rules(rule_dirs(rules_dirs, builtin=not no_builtin))
    for e in res.errors:
        click.echo(f"rule error (not hunted): {e}", err=True)
    return list(res.rules)


def hunt_now(
    es: Elasticsearch, prefix: str, rules: Sequence[Rule], *, as_json: bool = False
) -> list[HuntResult]:
    """Run every queued hunt and print one line each (a JSON object with ``as_json``)."""
    from detectors.setup import setup_alerts

    if not es.indices.exists_index_template(name=f"{prefix}-alerts"):
        setup_alerts(es, prefix)  # alerts must never get dynamic mappings
    results = RetroHunter(es, prefix, rules).run()
    for r in results:
        click.echo(orjson.dumps(r.to_json()).decode() if as_json else r.line())
    return results


def hunt_summary(results: Sequence[HuntResult]) -> dict[str, int]:
    return {
        "hunts": len(results),
        "hunts_failed": sum(r.status == "failed" for r in results),
        "hunt_alerts": sum(r.alerts for r in results),
    }

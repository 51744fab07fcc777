"""What the cluster commands share: their click options, the resolved configuration and the
connection."""

from __future__ import annotations

from typing import Any

import click

from shipper.clifail import fail as _fail

#: the input forms (the readers registry's keys; not imported here, to keep --help fast)
FORMATS = ["evtx", "xml", "json", "text"]


def cluster_options(func: Any) -> Any:
    """Options every cluster command shares; each overrides the file and the environment."""
    opts = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False),
            envvar="SYSMON_CONFIG",
            help="YAML configuration file (also SYSMON_CONFIG).",
        ),
        click.option("--url", help="Elasticsearch URL (overrides ES_URL and the file)."),
        click.option(
            "--ca-certs", type=click.Path(dir_okay=False), help="CA file to verify the cluster with."
        ),
        click.option(
            "--insecure", is_flag=True, help="Do not verify TLS certificates (throwaway test clusters only)."
        ),
        click.option("--index-prefix", help="Index name prefix (default sysmon; also SYSMON_INDEX_PREFIX)."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def ship_options(func: Any) -> Any:
    """Options of ``ship`` and ``watch``: state, bulk sizing, reading, envelope, output."""
    opts = [
        click.option("--state-dir", type=click.Path(file_okay=False), help="Where checkpoints are kept."),
        click.option("--dead-letter", type=click.Path(dir_okay=False), help="Dead-letter NDJSON file."),
        click.option("--bulk-bytes", type=click.IntRange(min=1024), help="Max bytes per bulk request."),
        click.option("--bulk-docs", type=click.IntRange(min=1), help="Max documents per bulk request."),
        click.option("--in-flight", type=click.IntRange(min=1), help="Bulk requests in flight at once."),
        click.option("--max-retries", type=click.IntRange(min=0), help="Retries of a failing bulk request."),
        click.option(
            "--label",
            "labels",
            multiple=True,
            metavar="KEY=VALUE",
            help="labels.KEY on every document of the run (repeatable; config `labels:`).",
        ),
        click.option("--tag", "tags", multiple=True, help="A tag on every document of the run (repeatable)."),
        click.option("--agent-name", help="agent.name of the documents (default: this host's name)."),
        click.option("--setup/--no-setup", "do_setup", default=False, help="Install the templates first."),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on standard output."),
        click.option("--no-progress", is_flag=True, help="No progress bar even on a terminal."),
        click.option(
            "--detect",
            is_flag=True,
            help="Check every document against the intel lists and the rules the stream can run, "
            "and write their alerts as the scheduled engine would (config `detect:`).",
        ),
        click.option(
            "--detect-config",
            type=click.Path(dir_okay=False),
            help="With --detect: the detectors' configuration file (its Sigma rules).",
        ),
        click.option(
            "--detect-rules-dir",
            "detect_rules_dirs",
            multiple=True,
            type=click.Path(file_okay=False),
            help="With --detect: a folder of your own rules (repeatable).",
        ),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return read_options(func)


def read_options(func: Any) -> Any:
    """How sources are read (what becomes ``ReadOptions``): ``convert``, ``ship`` and ``watch``."""
    opts = [
        click.option(
            "--format", "fmt", type=click.Choice(FORMATS), help="Input form (default: detected from content)."
        ),
        click.option(
            "--evtx-backend",
            type=click.Choice(["auto", "rust", "python"]),
            default="auto",
            show_default=True,
            help="EVTX parser: the Rust-backed evtx package, python-evtx, or auto (Rust, python-evtx as "
            "fallback).",
        ),
        click.option("--host", help="Computer name for forms that lack one (rendered text)."),
        click.option(
            "--skip-errors", is_flag=True, help="Skip and count bad records instead of keeping them tagged."
        ),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


workers_option = click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Processes mapping sources in parallel (0: one per core when there are several sources; "
    "1: none, the fastest on a busy or 2-vCPU machine). Documents, ids and checkpoints are the same "
    "either way; standard input is read in-process.",
)


def resolve_config(ctx: click.Context, kw: dict[str, Any]) -> Any:
    """The effective configuration: file < environment < the flags popped from ``kw``."""
    from shipper.config import resolve
    from shipper.errors import SysmonError

    try:
        from shipper.envelope import parse_labels

        return resolve(
            kw.pop("config_file", None),
            agent_name=kw.pop("agent_name", None),
            labels=parse_labels(kw.pop("labels", ()), "--label"),
            tags=tuple(kw.pop("tags", ())),
            url=kw.pop("url", None),
            ca_certs=kw.pop("ca_certs", None),
            insecure=kw.pop("insecure", False),
            index_prefix=kw.pop("index_prefix", None),
            state_dir=kw.pop("state_dir", None),
            dead_letter=kw.pop("dead_letter", None),
            replicas=kw.pop("replicas", None),
            bulk={
                "max_bytes": kw.pop("bulk_bytes", None),
                "max_docs": kw.pop("bulk_docs", None),
                "in_flight": kw.pop("in_flight", None),
                "max_retries": kw.pop("max_retries", None),
            },
            detect={
                "enabled": kw.pop("detect", False),
                "config": kw.pop("detect_config", None),
                "rules_dirs": tuple(kw.pop("detect_rules_dirs", ())),
            },
        )
    except (SysmonError, OSError) as exc:
        _fail(ctx, exc)


def connect(ctx: click.Context, cfg: Any, **client_kwargs: Any) -> Any:
    """A client checked against the cluster, and the cluster's version."""
    from shipper.errors import SysmonError
    from shipper.es import check_cluster

    try:
        client = cfg.client(**client_kwargs)
        version = check_cluster(client, ", ".join(cfg.all_urls()))
    except SysmonError as exc:
        _fail(ctx, exc)
    return client, version

"""``python -m samples generate --out DIR --events N`` — write a sample Sysmon day."""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import click

from samples.day import DEFAULT_START, generate
from samples.truth import TruthCollector, write_intel
from samples.writers import FORMS, Writer

PROGRESS_EVERY = 100_000


def _parse_forms(value: str) -> list[str]:
    forms = [f.strip() for f in value.split(",") if f.strip()]
    unknown = [f for f in forms if f not in FORMS]
    if unknown or not forms:
        raise click.BadParameter(f"unknown form(s) {unknown}; choose from {','.join(FORMS)}")
    return list(dict.fromkeys(forms))


@click.group()
def main() -> None:
    """Deterministic sample-data generator for sysmon-detect."""


@main.command("generate")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--events", required=True, type=click.IntRange(min=1), help="Total events to write.")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--hosts", default=6, show_default=True, type=click.IntRange(min=2))
@click.option("--forms", default=",".join(FORMS), show_default=True, help="Comma-separated output forms.")
@click.option(
    "--start",
    default=DEFAULT_START.strftime("%Y-%m-%d"),
    show_default=True,
    help="The day (UTC) to generate, YYYY-MM-DD.",
)
def generate_cmd(out_dir: Path, events: int, seed: int, hosts: int, forms: str, start: str) -> None:
    """Write DIR/sysmon.xml, winlogbeat.ndjson, nxlog.ndjson, sysmon.txt, truth.json, intel/."""
    chosen = _parse_forms(forms)
    try:
        day = datetime.strptime(start, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise click.BadParameter(f"--start must be YYYY-MM-DD: {exc}") from exc
    began = time.monotonic()
    try:
        stream = generate(events, seed, hosts=hosts, start=day)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    truth = TruthCollector(events=events, seed=seed, hosts=hosts, start=day)
    progress = sys.stderr.isatty()
    with ExitStack() as stack:
        writers: list[Writer] = []
        for form in chosen:
            name, factory = FORMS[form]
            fp = stack.enter_context((out_dir / name).open("wb", buffering=1 << 20))
            writers.append(factory(fp))
        n = 0
        for ev in stream:
            for w in writers:
                w.write(ev)
            truth.observe(ev)
            n += 1
            if progress and n % PROGRESS_EVERY == 0:
                click.echo(f"\r{n:,}/{events:,} events", nl=False, err=True)
        for w in writers:
            w.close()
    if progress and n >= PROGRESS_EVERY:
        click.echo("", err=True)
    truth.write(out_dir)
    write_intel(out_dir, day)
    elapsed = time.monotonic() - began
    click.echo(
        f"samples: events={n} hosts={hosts} seed={seed} forms={','.join(chosen)} "
        f"malicious={len(truth.malicious)} out={out_dir} seconds={elapsed:.2f}"
    )


if __name__ == "__main__":
    main()

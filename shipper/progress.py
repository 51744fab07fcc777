"""Feedback for long runs: a rich progress bar on a terminal (sources, events/s), nothing
otherwise; the summary line and ``--json`` are printed by the command."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from shipper.summary import Progress as ProgressBase


class RichProgress(ProgressBase):
    """Sources done of total, documents sent, events/s; refreshed at most 4 times a second."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._console = Console(file=stream or sys.stderr)
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[docs]:>10,} events  {task.fields[rate]:>8,.0f}/s"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[name]}"),
            console=self._console,
            transient=False,
            refresh_per_second=4,
        )
        self._task: TaskID | None = None
        self._docs = 0
        self._began = time.monotonic()
        self._last = 0.0

    def source_started(self, path: str, index: int, total: int) -> None:
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task("sources", total=total, docs=0, rate=0.0, name="")
        name = path if len(path) <= 50 else "…" + path[-49:]
        self._bar.update(self._task, completed=index - 1, name=name)

    def advance(self, documents: int) -> None:
        self._docs += documents
        now = time.monotonic()
        if self._task is not None and now - self._last >= 0.25:
            self._last = now
            rate = self._docs / max(now - self._began, 1e-6)
            self._bar.update(self._task, docs=self._docs, rate=rate)

    def close(self) -> None:
        if self._task is not None:
            task = self._bar.tasks[0]
            rate = self._docs / max(time.monotonic() - self._began, 1e-6)
            self._bar.update(self._task, completed=task.total, docs=self._docs, rate=rate, name="")
            self._bar.stop()
            self._task = None


def for_terminal(enabled: bool = True) -> ProgressBase:
    """A rich bar when standard error is a terminal, else the silent default."""
    if enabled and sys.stderr.isatty():
        return RichProgress()
    return ProgressBase()

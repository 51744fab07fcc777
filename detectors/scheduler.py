"""The detector daemon: each rule at its own interval with the ``schedule`` package.

Every rule runs once at start-up (catching up on whatever was shipped while the daemon was
down), then every ``interval``. The rules that can be batched (Sigma ``query`` rules,
:func:`detectors.batch.batchable`) and share an interval are one job, run as batches
(:func:`detectors.batch.run_batched`); each still logs its own line. The retro-hunt
(``hunter``), when given, runs first at start-up and then every ``HUNT_INTERVAL`` seconds (an
empty queue costs one search). SIGTERM/SIGINT stop the loop cleanly after the rule (or batch)
that is running finishes (its lease is released, its
state written). Each run is logged as one human line, or as one JSON object per line with
``json_lines``.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, TextIO

import orjson
import schedule

from detectors.batch import batchable, run_batched
from detectors.engine import Engine, RunResult
from detectors.model import Rule

HUNT_INTERVAL = 60


class Daemon:
    def __init__(
        self,
        engine: Engine,
        rules: Sequence[Rule],
        *,
        json_lines: bool = False,
        out: TextIO | None = None,
        tick: float = 1.0,
        hunter: Callable[[], object] | None = None,
    ) -> None:
        self.engine = engine
        self.rules = [r for r in rules if r.enabled]
        self.json_lines = json_lines
        self.out = out or sys.stdout
        self.tick = tick
        self.stop_event = threading.Event()
        self.scheduler = schedule.Scheduler()
        self.results: list[RunResult] = []
        self.hunter = hunter

    def log(self, result: RunResult) -> None:
        self.results.append(result)
        if self.json_lines:
            self.out.write(orjson.dumps(result.to_json()).decode() + "\n")
        else:
            self.out.write(result.line() + "\n")
        self.out.flush()

    def _job(self, rule: Rule) -> Callable[[], None]:
        def job() -> None:
            if self.stop_event.is_set():
                return
            try:
                result = self.engine.run_rule(rule)
            except Exception as exc:  # cluster down: log it, try again next time
                result = RunResult(rule.id, "failed", error=f"{type(exc).__name__}: {exc}")
            self.log(result)

        return job

    def _hunt(self) -> None:
        if self.hunter is None or self.stop_event.is_set():
            return
        try:
            self.hunter()  # prints its own lines; a failed hunt stays queued
        except Exception as exc:  # cluster down: try again next time
            self.out.write(f"retro-hunt: failed: {type(exc).__name__}: {exc}\n")
            self.out.flush()

    def _batch_job(self, rules: Sequence[Rule]) -> Callable[[], None]:
        def job() -> None:
            if self.stop_event.is_set():
                return
            try:
                results = run_batched(self.engine, rules)
            except Exception as exc:  # cluster down: log it, try again next time
                error = f"{type(exc).__name__}: {exc}"
                results = [RunResult(r.id, "failed", error=error) for r in rules]
            for result in results:
                self.log(result)

        return job

    def jobs(self) -> list[tuple[int, Callable[[], None]]]:
        """(interval, job): one per rule, and one per interval for the batchable rules."""
        batched = self.engine.options.batch_size > 1
        groups: dict[int, list[Rule]] = {}
        out: list[tuple[int, Callable[[], None]]] = []
        for rule in self.rules:
            if batched and batchable(rule):
                groups.setdefault(rule.interval, []).append(rule)
            else:
                out.append((rule.interval, self._job(rule)))
        for interval, group in groups.items():
            job = self._job(group[0]) if len(group) == 1 else self._batch_job(group)
            out.append((interval, job))
        return out

    def install_signals(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.stop_event.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self, max_loops: int | None = None) -> None:
        """Run until stopped (or ``max_loops`` ticks, for tests)."""
        jobs = self.jobs()
        for interval, job in jobs:
            self.scheduler.every(interval).seconds.do(job)
        if self.hunter is not None:
            self.scheduler.every(HUNT_INTERVAL).seconds.do(self._hunt)
        self._hunt()
        for _, job in jobs:  # catch up at start
            if self.stop_event.is_set():
                break
            job()
        loops = 0
        while not self.stop_event.is_set():
            self.scheduler.run_pending()
            loops += 1
            if max_loops is not None and loops >= max_loops:
                break
            self.stop_event.wait(self.tick)
        self.scheduler.clear()

    def stop(self, *_: Any) -> None:
        self.stop_event.set()

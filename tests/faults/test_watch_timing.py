"""`sysmon-ship watch` under rotation at random timing, as a logger and logrotate do it: lines
appended with random pauses, files renamed in the folder, moved out or deleted right after an
append while the logger still writes to its handle (a line half written across the move), and
copytruncate with more written at once than the file held. The watcher polls every 50 ms in its
own process. Every line arrives exactly once: nothing lost, nothing duplicated.

Two things no tailer can do are left out, and said so: a file created and gone before any poll
saw it, and what copytruncate takes away that was appended after the last look (so each new file
is first seen in the index before it rotates, and copytruncate waits until everything was read)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

from elasticsearch import Elasticsearch

from shipper.es import ClusterSettings
from tests.shipping import SHIP, count, env_for, wait_for

SEED = 20261204
ROUNDS = 16


class _Writer:
    """A logger writing the day's lines, in order, to whatever its handle is."""

    def __init__(self, lines: list[bytes], rng: random.Random) -> None:
        self.lines, self.rng, self.written = lines, rng, 0

    def lines_to(self, fh: IO[bytes], n: int, pause: float = 0.02) -> None:
        for _ in range(n):
            fh.write(self.lines[self.written])
            fh.flush()
            self.written += 1
            if self.rng.random() < 0.3:
                time.sleep(self.rng.uniform(0, pause))

    def half_to(self, fh: IO[bytes]) -> bytes:
        half = self.lines[self.written][: self.rng.randint(1, 60)]
        fh.write(half)
        fh.flush()
        return half

    def rest_to(self, fh: IO[bytes], half: bytes) -> None:
        fh.write(self.lines[self.written][len(half) :])
        fh.flush()
        self.written += 1


class _Watching:
    """The watcher's process, and what it said on stderr (for a failure's message)."""

    def __init__(self, args: list[str], url: str, err: Path) -> None:
        self.err = err
        with open(err, "w") as fh:
            self.proc = subprocess.Popen(args, env=env_for(url), stdout=subprocess.PIPE, stderr=fh, text=True)

    def caught_up(self, es: Elasticsearch, prefix: str, records: int, when: str) -> None:
        def arrived() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"{when}: the watcher exited {self.proc.returncode}:\n{self.said()}")
            return count(es, prefix) >= records

        try:
            wait_for(arrived, timeout=120)
        except AssertionError as exc:
            held = count(es, prefix)
            raise AssertionError(f"{when}: {held} of {records} indexed ({exc})\n{self.said()}") from None

    def said(self) -> str:
        return self.err.read_text(errors="replace")[-4000:]


def _rotate(how: str, log: Path, archive: Path, round_: int) -> None:
    if how == "renamed":
        os.rename(log, log.with_name(f"{log.name}.{round_}"))
    elif how == "moved":
        os.rename(log, archive / f"{log.name}.{round_}")
    else:
        os.unlink(log)


def test_watch_under_rotation_at_random_timing_ends_exact(
    es: Elasticsearch, es_settings: ClusterSettings, ready: str, day: Path, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    folder, archive = tmp_path / "watched", tmp_path / "archive"
    folder.mkdir()
    archive.mkdir()
    args = [*SHIP, "watch", str(folder), "--index-prefix", ready, "--state-dir", str(tmp_path / "state")]
    args += ["--json", "--poll-interval", "0.05", "--flush-interval", "0.1"]
    watching = _Watching(args, es_settings.url, tmp_path / "watcher.err")
    proc = watching.proc
    log = folder / "sysmon.ndjson"
    writer = _Writer(day.read_bytes().splitlines(keepends=True), rng)
    fates: dict[str, int] = {"renamed": 0, "moved": 0, "deleted": 0, "copytruncate": 0}
    try:
        for round_ in range(ROUNDS):
            how = sorted(fates)[round_ % len(fates)] if round_ < len(fates) else rng.choice(sorted(fates))
            fates[how] += 1
            with open(log, "ab") as fh:
                writer.lines_to(fh, rng.randint(5, 40))
                watching.caught_up(es, ready, writer.written, f"round {round_} ({how})")  # it knows this file
                writer.lines_to(fh, rng.randint(1, 30))
                if how == "copytruncate":
                    watching.caught_up(es, ready, writer.written, f"round {round_} before copytruncate")
                    size = log.stat().st_size
                    shutil.copyfile(log, archive / f"copy.{round_}")
                    fh.truncate(0)
                    fh.seek(0)
                    while fh.tell() <= size:  # more than it held, in one go
                        writer.lines_to(fh, 5, pause=0)
                    writer.lines_to(fh, rng.randint(0, 10))
                    continue
                half = writer.half_to(fh) if rng.random() < 0.5 else b""
                _rotate(how, log, archive, round_)  # right after the appends
                time.sleep(rng.uniform(0, 0.15))
                if half:
                    writer.rest_to(fh, half)
                writer.lines_to(fh, rng.randint(0, 15))  # the logger writes on before it reopens
        watching.caught_up(es, ready, writer.written, "the end")
        time.sleep(0.5)  # anything sent twice would be answered by now
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, watching.said()
    summary = json.loads(out)
    assert min(fates.values()) >= 2
    assert count(es, ready) == writer.written
    assert summary["duplicates"] == 0 and summary["errors"] == 0 and summary["dead_lettered"] == 0

"""Stream matcher benchmark: events per second through ``StreamRules.match`` over the documents
the shipper makes (the shared EVTX attack samples plus a generated sample day, mapped by the real
pipeline; no cluster), side by side in one run:

- no rules (the cost of the call and the prefilter's event-code lookup), one rule;
- the built-in rules; every applicable shared SigmaHQ rule plus the built-in ones, in the native
  core (the default: every rule that needs no intel) and by the Python predicates alone;
- the same full set without the literal prefilter (every rule of the event's code evaluated, in
  Python).

For each: events/s, the ratio to "no rules", rules evaluated per event on average (after the
prefilter) and matches. The intel lists are a stand-in set of ``--indicators`` values (the real
snapshot is ``detectors.stream.intel``). Prints figures and ratios only (no thresholds).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# bench/sigma.py is named like pySigma's package: this folder must not come first
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from sigma.collection import SigmaCollection  # noqa: E402

from detectors.loader import BUILTIN_DIR, load_rules  # noqa: E402
from detectors.model import Rule  # noqa: E402
from detectors.sigma.rules import convert  # noqa: E402
from detectors.stream.rules import StreamRules  # noqa: E402
from shipper.pipeline import iter_documents  # noqa: E402

SHARED = Path(REPO / ".." / "shared").resolve()


class SetIntel:
    """Every value in one set, whatever the field (a stand-in for the intel snapshot)."""

    def __init__(self, n: int, seed: int = 7) -> None:
        rnd = random.Random(seed)
        self.values = {f"{rnd.randrange(1 << 32):08x}{rnd.randrange(1 << 32):08x}" for _ in range(n)}

    def has(self, kind: str, field: str, value: str, feeds: Any, types: Any) -> bool:
        return value.lower() in self.values


def _documents(events: int) -> list[dict[str, Any]]:
    files = sorted(str(f) for f in (SHARED / "data" / "sysmon" / "evtx-attack-samples").rglob("*.evtx"))
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "samples", "generate", "--out", tmp, "--events", str(events)]
        subprocess.run(
            [*cmd, "--seed", "7", "--forms", "winlogbeat"], check=True, capture_output=True, cwd=REPO
        )
        return [item.doc for item in iter_documents([*files, str(Path(tmp) / "winlogbeat.ndjson")])]


def _sigma_rules() -> list[Rule]:
    col = SigmaCollection.load_ruleset(
        [str(SHARED / "data" / "sigma" / "rules" / "windows")], collect_errors=True
    )
    return [c.rule for c in convert(col) if c.rule is not None]


def _run(name: str, compiled: StreamRules, docs: Sequence[dict[str, Any]], intel: Any, base: float | None,
         min_seconds: float) -> float:  # fmt: skip
    evaluated = sum(len(compiled.candidates(d)) for d in docs)
    start = time.perf_counter()
    rounds = matches = 0
    while True:
        for d in docs:
            matches += len(compiled.match(d, intel))
        rounds += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            break
    rate = rounds * len(docs) / elapsed
    ratio = f"{rate / base:6.3f}x" if base else "  1.000x"
    print(f"{name:<38} {len(compiled.supported):>6} {rate:>12,.0f} {ratio:>9} "
          f"{evaluated / len(docs):>10.2f} {matches // rounds:>8}")  # fmt: skip
    return rate


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=5000, help="events in the generated day (default 5000)")
    ap.add_argument("--indicators", type=int, default=100_000, help="stand-in intel values")
    ap.add_argument("--seconds", type=float, default=3.0, help="minimum time per measurement")
    args = ap.parse_args(argv)
    docs = _documents(args.events)
    builtin = list(load_rules([BUILTIN_DIR]).rules)
    sigma = _sigma_rules()
    intel = SetIntel(args.indicators)
    t0 = time.perf_counter()
    full = StreamRules.compile([*builtin, *sigma])
    compile_s = time.perf_counter() - t0
    print(f"{len(docs):,} documents; {len(full.supported)} rules supported, {len(full.unsupported)} left")
    print(f"to the schedule; compiled in {compile_s:.1f}s; {args.indicators:,} stand-in indicators\n")
    print(f"{'rules':<38} {'count':>6} {'events/s':>12} {'vs none':>9} {'eval/event':>10} {'matches':>8}")
    base = _run("none", StreamRules.compile([]), docs, intel, None, args.seconds)
    one = [r for r in builtin if r.id == "office-spawns-shell"]
    _run("one (office-spawns-shell)", StreamRules.compile(one), docs, intel, base, args.seconds)
    _run("built-in", StreamRules.compile(builtin), docs, intel, base, args.seconds)
    print(f"{'':<38} ({full.native_count} rules in the native core)")
    _run("built-in + SigmaHQ, prefilter", full, docs, intel, base, args.seconds)
    python = StreamRules.compile([*builtin, *sigma], native=False)
    _run("built-in + SigmaHQ, Python predicates", python, docs, intel, base, args.seconds)
    bare = StreamRules.compile([*builtin, *sigma], prefilter=False)
    _run("built-in + SigmaHQ, event code only", bare, docs, intel, base, args.seconds)


if __name__ == "__main__":
    main()

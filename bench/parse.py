"""Parse benchmark: the full convert path (read → map → serialise) against raw parsing.

Everything is measured in this one run, side by side, so the ratios hold on a noisy machine:

* EVTX (the shared attack samples, repeated): records/s of
  - raw ``evtx`` iteration (pyevtx-rs ``records_json()`` decoded with orjson, with pyevtx-rs's
    default threading: one thread per core) — the baseline, and the same with one thread,
  - ``python-evtx`` (records rendered as XML; one pass, it is slow),
  - our ``convert`` path (``shipper.pipeline.iter_documents`` + orjson serialisation) as
    ``sysmon-ship convert`` runs it by default (``--workers 1``: one process), and with one
    worker process per core (``--workers 0``) or ``--workers N``.
* JSON lines (generated winlogbeat documents, 1M by default): raw ``orjson.loads`` per line
  against the convert path.
* Peak memory (max RSS of a fresh ``sysmon-ship convert`` process) for 1× and 10× input.

The convert path uses the native core (``native/``) when it is installed; the pure-Python path is
measured beside it (``SYSMON_NATIVE=0``).

Goal (issue 3): convert ≥ 0.5× raw ``evtx`` iteration; memory flat in input size.

    .venv/bin/python bench/parse.py [--events 1000000] [--repeat 5] [--workers N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shipper.pipeline import Stats, effective_workers, iter_documents  # noqa: E402


def shared_evtx() -> list[str]:
    base = (
        Path(os.environ.get("SYSMON_SHARED_DIR", ROOT.parent / "shared"))
        / "data"
        / "sysmon"
        / "evtx-attack-samples"
    )
    files = sorted(str(p) for p in base.rglob("*.evtx"))
    if not files:
        sys.exit(f"no EVTX files under {base}: the shared data is needed for this benchmark")
    return files


def timed(fn: Callable[[], int]) -> tuple[int, float]:
    t0 = time.perf_counter()
    n = fn()
    return n, time.perf_counter() - t0


def raw_evtx(files: list[str], repeat: int, threads: int | None = None) -> int:
    from evtx import PyEvtxParser

    loads = orjson.loads
    n = 0
    for _ in range(repeat):
        for f in files:
            parser = PyEvtxParser(f) if threads is None else PyEvtxParser(f, number_of_threads=threads)
            for rec in parser.records_json():
                loads(rec["data"])  # type: ignore[index]  # records are never None
                n += 1
    return n


def python_evtx(files: list[str]) -> int:
    import Evtx.Evtx as evtx_mod

    n = 0
    for f in files:
        with evtx_mod.Evtx(f) as log:
            for rec in log.records():
                rec.xml()
                n += 1
    return n


def convert(
    files: list[str],
    repeat: int,
    fmt: str | None = None,
    workers: int | None = None,
    stats: Stats | None = None,
) -> int:
    """The path of ``sysmon-ship convert``: ``workers=None`` is its default (one per core).
    ``stats``: where the counts of every pass add up."""
    n = 0
    size = 0
    for _ in range(repeat):
        for item in iter_documents(files, fmt=fmt, stats=stats or Stats(), workers=workers):
            size += len(item.json())
            n += 1
    return n


def pure_python(fn: Callable[[], int]) -> int:
    """``fn`` run with the native core turned off (``SYSMON_NATIVE=0``)."""
    from shipper import native

    os.environ["SYSMON_NATIVE"] = "0"
    native.native.cache_clear()
    try:
        return fn()
    finally:
        del os.environ["SYSMON_NATIVE"]
        native.native.cache_clear()


def native_available() -> bool:
    from shipper.native import available

    return available()


def stage_split(files: list[str]) -> dict[str, float]:
    """Microseconds per record spent reading (pyevtx-rs JSON + orjson + RawEvent), mapping and
    serialising, each stage timed on its own over the same records held in memory."""
    from shipper.raw import RawEvent
    from shipper.readers.registry import open_source
    from shipper.sysmon.ecs import to_ecs_and_id

    t0 = time.perf_counter()
    records = [r for f in files for r in open_source(f)]
    t_read = time.perf_counter() - t0
    events = [r for r in records if isinstance(r, RawEvent) and r.is_sysmon]
    t0 = time.perf_counter()
    docs = [to_ecs_and_id(r)[0] for r in events]
    t_map = time.perf_counter() - t0
    t0 = time.perf_counter()
    for d in docs:
        orjson.dumps(d)
    t_ser = time.perf_counter() - t0
    n = max(len(records), 1)
    return {"read": 1e6 * t_read / n, "map": 1e6 * t_map / n, "ser": 1e6 * t_ser / n}


def raw_json(path: str) -> int:
    loads = orjson.loads
    n = 0
    with open(path, "rb") as fh:
        for line in fh:
            loads(line)
            n += 1
    return n


def generate(out: Path, events: int) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "samples",
            "generate",
            "--out",
            str(out),
            "--events",
            str(events),
            "--seed",
            "7",
            "--forms",
            "winlogbeat",
        ],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    return out / "winlogbeat.ndjson"


def peak_rss_mb(inputs: list[str]) -> float:
    """Max RSS of a fresh process converting ``inputs`` to /dev/null (its own or its largest
    worker's, whichever is larger)."""
    code = (
        "import resource, sys\n"
        "from shipper.cli import main\n"
        "try:\n"
        "    main(['convert', *sys.argv[1:], '-o', '/dev/null'], standalone_mode=False)\n"
        "finally:\n"
        "    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "    print(max(own, workers), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *inputs], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return int(proc.stderr.strip().splitlines()[-1]) / 1024


def fallbacks(st: Stats, passes: int) -> str:
    """Why the native core left records to Python, per pass (``Stats.native_fallbacks``)."""
    counts = sorted(st.native_fallbacks.items())
    return " ".join(f"{k}={v // passes}" for k, v in counts) or "none"


def rate(n: int, secs: float) -> str:
    return f"{n:>9,} records in {secs:7.2f}s = {n / secs:>10,.0f}/s"


def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="generated JSON-lines events (default 1M)")
    ap.add_argument("--repeat", type=int, default=5, help="passes over the shared EVTX files")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="workers of the parallel convert column (default 0: one per core)",
    )
    args = ap.parse_args()
    if args.quick:
        args.events, args.repeat = 50_000, 1
    return args


def main() -> None:
    args = arguments()
    files = shared_evtx()
    print(f"EVTX: {len(files)} files from the shared attack samples, {args.repeat} passes")
    raw_evtx(files, 1)  # warm the page cache and imports
    convert(files, 1, workers=1)  # …and the one-time loads (public suffix list) of convert
    n_raw, t_raw = timed(lambda: raw_evtx(files, args.repeat))
    n_raw1, t_raw1 = timed(lambda: raw_evtx(files, args.repeat, threads=1))
    st_conv = Stats()
    n_conv, t_conv = timed(lambda: convert(files, args.repeat, workers=1, stats=st_conv))
    n_convp, t_convp = timed(lambda: convert(files, args.repeat, workers=args.workers or None))
    core = native_available()
    n_pure, t_pure = timed(lambda: pure_python(lambda: convert(files, args.repeat, workers=1)))
    n_py, t_py = timed(lambda: python_evtx(files))
    used = effective_workers(args.workers or None, files)
    print(f"  raw evtx (pyevtx-rs + orjson)   {rate(n_raw, t_raw)}   (default threading)")
    print(f"  raw evtx, one thread            {rate(n_raw1, t_raw1)}")
    print(f"  convert (read+map+serialise)    {rate(n_conv, t_conv)}   (default: one process)")
    print(f"  convert, {used} worker processes   {rate(n_convp, t_convp)}")
    print(f"  convert, pure Python (no native)  {rate(n_pure, t_pure)}   (SYSMON_NATIVE=0)")
    print(f"  native core installed: {'yes' if core else 'NO (pip install ./native)'}")
    print(f"  records the native core left to Python, by reason: {fallbacks(st_conv, args.repeat)}")
    print(f"  python-evtx (XML render)        {rate(n_py, t_py)}")
    r_evtx = (n_conv / t_conv) / (n_raw / t_raw)
    r_evtx1 = (n_conv / t_conv) / (n_raw1 / t_raw1)
    r_par = (n_convp / t_convp) / (n_raw / t_raw)
    r_py = (n_conv / t_conv) / (n_py / t_py)
    print(f"  ratio convert / raw evtx = {r_evtx:.2f}x   (goal >= 0.5x)")
    print(f"  ratio convert / raw evtx one thread = {r_evtx1:.2f}x")
    print(f"  ratio convert with {used} workers / raw evtx = {r_par:.2f}x")
    print(f"  ratio convert / python-evtx = {r_py:.1f}x")
    r_pure = (n_pure / t_pure) / (n_raw / t_raw)
    print(f"  ratio pure-Python convert / raw evtx = {r_pure:.2f}x")
    split = stage_split(files)
    print(
        "  pure-Python stages per record: read {read:.1f} us (parse + RawEvent), map {map:.1f} us, "
        "serialise {ser:.1f} us; "
        "raw parse alone {raw:.1f} us".format(**split, raw=1e6 * t_raw / n_raw)
    )

    with tempfile.TemporaryDirectory(prefix="bench-parse-") as tmp:
        t = Path(tmp)
        print(f"JSON lines: generating {args.events:,} winlogbeat events …")
        big = generate(t / "big", args.events)
        n_rj, t_rj = timed(lambda: raw_json(str(big)))
        st_json = Stats()
        n_cj, t_cj = timed(lambda: convert([str(big)], 1, fmt="json", stats=st_json))
        print(f"  raw orjson.loads per line       {rate(n_rj, t_rj)}")
        print(f"  convert (read+map+serialise)    {rate(n_cj, t_cj)}")
        print(f"  lines the native core left to Python, by reason: {fallbacks(st_json, 1)}")
        r_json = (n_cj / t_cj) / (n_rj / t_rj)
        print(f"  ratio convert / raw JSON decode = {r_json:.2f}x")

        small = generate(t / "small", max(args.events // 10, 1000))
        m1 = peak_rss_mb([str(small)])
        m10 = peak_rss_mb([str(big)])
        print(
            f"Peak memory of `sysmon-ship convert`: 1x ({small.stat().st_size / 1e6:.0f} MB) {m1:.0f} MB, "
            f"10x ({big.stat().st_size / 1e6:.0f} MB) {m10:.0f} MB, ratio {m10 / m1:.2f}  (flat = about 1)"
        )
        evtx_dir = t / "evtx10"
        for i in range(10):
            (evtx_dir / str(i)).mkdir(parents=True)
            for j, f in enumerate(files):
                os.symlink(f, evtx_dir / str(i) / f"{j}.evtx")
        e1 = peak_rss_mb([str(evtx_dir / "0")])
        e10 = peak_rss_mb([str(evtx_dir)])
        print(f"Peak memory on EVTX: 1x {e1:.0f} MB, 10x {e10:.0f} MB, ratio {e10 / e1:.2f}")
    print(
        f"summary: convert_vs_raw_evtx={r_evtx:.2f} convert_vs_raw_evtx_1thread={r_evtx1:.2f} "
        f"convert_{used}workers_vs_raw_evtx={r_par:.2f} pure_python_convert_vs_raw_evtx={r_pure:.2f} "
        f"convert_vs_python_evtx={r_py:.1f} "
        f"convert_vs_raw_json={r_json:.2f} mem_json_10x_over_1x={m10 / m1:.2f} "
        f"mem_evtx_10x_over_1x={e10 / e1:.2f} "
        f"self_maxrss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
    )


if __name__ == "__main__":
    main()

"""Rollup maintainer: CPU of a quick pass (the last 2 h rechecked) against a full one (the last 24 h).

Why this exists: every pass of the rollup maintainer (``analytics.continuous``) used to
recompute the last 24 h of every machine for late data, in the API's leader process beside
its requests. Passes are now quick (``analytics.rollup_quick_recheck_hours``, 2 h) but for one
full recheck of each machine per ``analytics.rollup_full_recheck_s`` (1 h). This measures, in
one run on one data set, the CPU time of both kinds of pass and what a day of passes costs
each way (before: 288 full passes a day at the default 300 s interval; now: 24 full rechecks
a machine and the quick ones).

Then an hour of passes (12 at 300 s) two ways, interleaved pass by pass on the same data:
all machines' full rechecks in one pass of the hour (as the maintainer did until its full
rechecks took turns; here forced with ``run_pass(full=True)`` for that pass and ``full=False``
for the others, the same code the old schedule ran), and the maintainer's own schedule after
its rotation has started (a forced full pass just before the hour, as the start-up full pass
is), where each pass rechecks one or two of the 20 presses in full. The largest pass's CPU of
each is what the API's requests compete with in one stretch.

Data: the machine page benchmark's shape (bench/api.py): 20 presses (4 lines of 5), a
14-s press cycle, one sample every second for the last 24 h and every 10 s for the days
before, the tags a tally reads (state, material input, good and scrap counters), written
with ``write_columns`` into the embedded SQLite store; the cache is the embedded SQLite
one. The maintainer first catches up on the whole history (once, as after an upgrade), then
full and quick passes alternate, a pass every 300 s on the passes' clock, and each pass's
CPU time (``time.process_time``: the store's SQL runs in this process) is taken.

Run from the repo root: ``python bench/rollup_recheck.py [--old-days N] [--reps N] [--no-write]``
(writes its section of bench/RESULTS.md; about a minute on a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# bench/ first on the path would make bench/analytics.py shadow the analytics package
sys.path[:] = [str(REPO_ROOT)] + [p for p in sys.path if p and Path(p).resolve() not in (REPO_ROOT, REPO_ROOT / "bench")]

import numpy as np  # noqa: E402

from analytics.continuous import HOUR_MS, RollupMaintainer  # noqa: E402
from analytics.rollup import RollupCache  # noqa: E402
from analytics.settings import AnalyticsSettings  # noqa: E402
from bench.results import publish  # noqa: E402
from plant import MachineRef  # noqa: E402
from tsstore.sqlite import SqliteStore  # noqa: E402

SECTION_TITLE = "## Rollup maintainer: quick and full rechecks (bench/rollup_recheck.py)"
DAY_MS = 86_400_000
LINES = [("bench-a", "site-1", "line-1"), ("bench-a", "site-1", "line-2"), ("bench-b", "site-1", "line-1"),
         ("bench-c", "site-1", "line-1")]
CYCLE_S = 14  # idle 2, loading 6, processing 4, unloading 2 (as bench/api.py)


def machines() -> list[MachineRef]:
    return [MachineRef(t, s, ln, f"press-{i + 1}") for t, s, ln in LINES for i in range(5)]


def signals(ts: np.ndarray, offset_s: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    t = ts // 1000 + offset_s
    phase = t % CYCLE_S
    state = np.select([phase < 2, phase < 8, phase < 12], [0, 1, 2], default=3).astype(float)
    cycles = t // CYCLE_S
    return {"state": (ts, state), "material_input": (ts, (state == 1).astype(float)),
            "good_count": (ts, ((cycles - cycles // 33) % 65536).astype(float)),
            "scrap_count": (ts, ((cycles // 33) % 65536).astype(float))}


def fill(store: SqliteStore, now_ms: int, old_days: int) -> int:
    old = np.arange(now_ms - (1 + old_days) * DAY_MS, now_ms - DAY_MS, 10_000, dtype=np.int64)
    recent = np.arange(now_ms - DAY_MS, now_ms, 1000, dtype=np.int64)
    ts = np.concatenate([old, recent])
    for k, m in enumerate(machines()):
        store.write_columns(m, signals(ts, k * 3))
    return ts.size * 4 * len(machines())


def cpu_pass(maintainer: RollupMaintainer, now_ms: int, full: bool) -> tuple[float, float, int]:
    cpu = time.process_time()
    r = maintainer.run_pass(now_ms, full=full)
    assert r.recheck == ("full" if full else "quick") and not r.failed
    return time.process_time() - cpu, r.seconds, r.buckets_computed


def spread_hour(spread: RollupMaintainer, old: RollupMaintainer, t0_ms: int, interval_ms: int,
                k: int) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
    """An hour of ``k`` passes each way, interleaved (the order alternating), as (CPU, full rechecks) per pass:
    ``old`` with every machine's full recheck in the hour's first pass, ``spread`` on its own schedule."""
    spread.run_pass(t0_ms, full=True)  # the rotation starts here, as at the start-up full pass
    before: list[tuple[float, int]] = []
    after: list[tuple[float, int]] = []
    for j in range(1, k + 1):
        t = t0_ms + j * interval_ms
        for first in ((True, False) if j % 2 else (False, True)):
            cpu = time.process_time()
            r = old.run_pass(t, full=j == 1) if first else spread.run_pass(t)
            assert not r.failed
            (before if first else after).append((time.process_time() - cpu, r.full_rechecks))
    n = len(machines())
    assert before[0][1] == n and sum(f for _, f in after) == n and max(f for _, f in after) < n, (before, after)
    return before, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-days", type=int, default=2, help="days of 10-s data before the last 24 h of 1-s data")
    parser.add_argument("--reps", type=int, default=4, help="passes of each kind (alternating)")
    parser.add_argument("--no-write", action="store_true", help="print the section, do not write bench/RESULTS.md")
    args = parser.parse_args()
    started = time.perf_counter()
    info = {"date": datetime.now(timezone.utc).strftime("%a %b %d %H:%M:%S UTC %Y"), "load": os.getloadavg()[0],
            "machine": f"{platform.system()} {platform.release()} {platform.machine()}", "nproc": os.cpu_count(),
            "python": platform.python_version()}
    settings = AnalyticsSettings()
    interval_s = settings.rollup_interval_s
    tmp = Path(tempfile.mkdtemp(prefix="bench_recheck_"))
    now_ms = int(time.time() * 1000) // HOUR_MS * HOUR_MS
    try:
        store = SqliteStore(tmp / "store.db")
        t = time.perf_counter()
        rows = fill(store, now_ms, args.old_days)
        fill_s = time.perf_counter() - t
        print(f"wrote {rows:,} samples in {fill_s:.0f} s", flush=True)
        cache = RollupCache(tmp / "rollups.db")
        maintainer = RollupMaintainer(store, settings, cache, interval_s=interval_s,
                                      recheck_ms=settings.rollup_recheck_hours * HOUR_MS,
                                      quick_recheck_ms=settings.rollup_quick_recheck_hours * HOUR_MS,
                                      full_recheck_s=settings.rollup_full_recheck_s)
        catch_up_cpu, catch_up_s, catch_up_buckets = cpu_pass(maintainer, now_ms, True)
        print(f"catch-up over the history: {catch_up_cpu:.1f} s CPU, {catch_up_buckets} buckets", flush=True)
        runs: dict[bool, list[tuple[float, float, int]]] = {True: [], False: []}
        k = 0
        for _ in range(args.reps):  # alternating, so a busy spell of the shared machine hits both kinds
            for full in (True, False):
                k += 1
                runs[full].append(cpu_pass(maintainer, now_ms + k * int(interval_s * 1000), full))
                print(f"  {'full ' if full else 'quick'} pass: {runs[full][-1][0]:.2f} s CPU, "
                      f"{runs[full][-1][1]:.2f} s wall, {runs[full][-1][2]} buckets", flush=True)
        k = round(settings.rollup_full_recheck_s / interval_s)
        old = RollupMaintainer(store, settings, cache, interval_s=interval_s,
                               recheck_ms=settings.rollup_recheck_hours * HOUR_MS,
                               quick_recheck_ms=settings.rollup_quick_recheck_hours * HOUR_MS,
                               full_recheck_s=settings.rollup_full_recheck_s)
        hour_before, hour_after = spread_hour(maintainer, old, now_ms + (k + 1) * int(interval_s * 1000),
                                              int(interval_s * 1000), k)
        print("  an hour, all at once: " + " ".join(f"{c:.2f}" for c, _ in hour_before) + " s CPU", flush=True)
        print("  an hour, taking turns: " + " ".join(f"{c:.2f}({f})" for c, f in hour_after) + " s CPU (full)",
              flush=True)
        store.close()
        cache.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    run_s = time.perf_counter() - started

    full_cpu, quick_cpu = (statistics.median(c for c, _, _ in runs[f]) for f in (True, False))
    full_wall, quick_wall = (statistics.median(w for _, w, _ in runs[f]) for f in (True, False))
    full_b, quick_b = runs[True][-1][2], runs[False][-1][2]
    passes = round(86_400 / interval_s)
    fulls = round(86_400 / settings.rollup_full_recheck_s)
    before_day, after_day = passes * full_cpu, fulls * full_cpu + (passes - fulls) * quick_cpu
    table = "\n".join([
        "| pass (20 presses) | buckets recomputed | CPU per pass (median) | wall per pass | per day at 300 s |",
        "|---|---:|---:|---:|---:|",
        f"| full: the last {settings.rollup_recheck_hours} h rechecked (every pass before) | {full_b} | "
        f"{full_cpu:.2f} s | {full_wall:.2f} s | {passes} full: {before_day:.0f} s CPU |",
        f"| quick: the last {settings.rollup_quick_recheck_hours} h rechecked | {quick_b} | {quick_cpu:.2f} s | "
        f"{quick_wall:.2f} s | {fulls} full rechecks a machine, quick otherwise: {after_day:.0f} s CPU |",
        f"| ratio | {full_b / quick_b:.0f}x | {full_cpu / quick_cpu:.1f}x | {full_wall / quick_wall:.1f}x | "
        f"{before_day / after_day:.1f}x less CPU a day |",
    ])
    big_before, big_after = max(c for c, _ in hour_before), max(c for c, _ in hour_after)
    hour_b, hour_a = sum(c for c, _ in hour_before), sum(c for c, _ in hour_after)
    per_pass = sorted({f for _, f in hour_after})
    hour_table = "\n".join([
        f"| an hour of passes ({k} at {interval_s:g} s) | full rechecks per pass | largest pass CPU | the hour's CPU |",
        "|---|---:|---:|---:|",
        f"| all machines' full rechecks in one pass (until now) | {hour_before[0][1]} in one, 0 in {k - 1} | "
        f"{big_before:.2f} s | {hour_b:.1f} s |",
        f"| taking turns (the maintainer's schedule) | {' or '.join(map(str, per_pass))} in each | {big_after:.2f} s | "
        f"{hour_a:.1f} s |",
        f"| ratio | | {big_before / big_after:.1f}x smaller | {hour_b / hour_a:.2f}x (the same work) |",
    ])
    section = "\n".join([
        SECTION_TITLE,
        "",
        f"- date: {info['date']} (load average {info['load']:.1f} at the start)",
        f"- machine: {info['machine']}, nproc {info['nproc']}, Python {info['python']}",
        f"- data: 20 presses (bench/api.py's shape), one sample a second for the last 24 h and every 10 s for "
        f"{args.old_days} days before, 4 tags: {rows:,} samples in the embedded SQLite store (written in "
        f"{fill_s:.0f} s); the embedded SQLite rollup cache",
        f"- {args.reps} passes of each kind, alternating, after a catch-up over the whole history "
        f"({catch_up_cpu:.1f} s CPU, once), then an hour of {k} passes each way, interleaved; the run took "
        f"{run_s:.0f} s",
        "",
        table,
        "",
        f"Reading: a pass's cost is the hours it recomputes. Rechecking the last {settings.rollup_recheck_hours} h of "
        f"every press on every pass cost {full_cpu:.2f} s of CPU per pass in the process running the maintainer (the "
        f"API's leader); a quick pass rechecks {settings.rollup_quick_recheck_hours} h and costs {quick_cpu:.2f} s, "
        f"{full_cpu / quick_cpu:.1f}x less, and each press is still rechecked in full once an hour (late data older than "
        f"{settings.rollup_quick_recheck_hours} h before the newest finished hour reaches the rollups within the "
        f"hour). Over a day the maintainer's CPU falls {before_day / after_day:.1f}x.",
        "",
        hour_table,
        "",
        f"Reading: with every machine's full recheck in one pass of the hour, that pass held the API leader's CPU "
        f"for {big_before:.2f} s in one stretch; with the machines taking turns (each once per "
        f"{settings.rollup_full_recheck_s:g} s, {' or '.join(map(str, per_pass))} of 20 in each pass) the largest "
        f"pass costs {big_after:.2f} s, {big_before / big_after:.1f}x less, for the same CPU over the hour "
        f"({hour_b:.1f} s and {hour_a:.1f} s). One pass with every machine in full remains, ten minutes after each "
        f"start (analytics.continuous). Measured in one run on a shared machine, interleaved: the ratios hold "
        f"better than the absolute figures.",
        "",
    ])
    publish(SECTION_TITLE, section, write=not args.no_write)


if __name__ == "__main__":
    main()

"""Analytics performance: a full before/after report of 20 machines x 180 days, and one line's day KPIs.

Why this exists: issue 6 sets two targets, "a full report for 20 machines x 180 days from
the store in under 10 s" and "the day's KPIs for one line in under 200 ms", and asks for the
heavy work to be pushed down to the store (GROUP BY time) instead of pulling raw points into
Python. This script measures, in one run on one data set:

1. the day's KPIs of one line (4 machines), from the store's rollups (``state_durations``,
   per-bucket counter last/max/min), against the baseline of pulling that day's raw
   samples into Python (``history(every=0)``) and computing the same tallies there
   (``analytics.buckets.from_samples``); both must give the same KPIs;
2. the full before/after report (20 machines, 180 days, 2000 bootstrap replicates) cold,
   every hour computed from the store (the baseline), and as the platform serves it, with
   the rollups kept up to date by the maintainer (``analytics.continuous``); plus what the
   maintainer costs: its first pass over the history and a steady pass per finished hour.

Data: ``analytics.synthetic`` writes what a report-on-change gateway with a 60 s heartbeat
sends for a press cycle (states, material-input coil, good/scrap counters, energy meter),
at whole-second resolution, into the embedded SQLite store (``write_columns`` where the
store has it, ``write`` otherwise). The cycle is longer than a real press's to keep the
file at a size this shared 2-core machine writes in minutes; rows scanned are reported, so
the cold figures can be scaled to denser data.

Results are printed and written to the section "Analytics: reports from the store
(bench/analytics.py)" of bench/RESULTS.md; other sections are kept.

Run from the repo root: ``/tmp/sfvenv/bin/python bench/analytics.py [--quick]``.
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
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from analytics import kpi  # noqa: E402
from analytics.buckets import from_samples  # noqa: E402
from analytics.policy import Policy  # noqa: E402
from analytics.report import before_after_report, local_midnight_ms, period_report  # noqa: E402
from analytics.continuous import HOUR_MS, RollupMaintainer  # noqa: E402
from analytics.rollup import RollupCache  # noqa: E402
from analytics.settings import AnalyticsSettings  # noqa: E402
from analytics.synthetic import LineSpec, generate  # noqa: E402
from plant import MachineRef  # noqa: E402
from tsstore import Point  # noqa: E402
from tsstore.sqlite import SqliteStore  # noqa: E402

from bench.results import RESULTS_PATH, update_section  # noqa: E402

SECTION_TITLE = "## Analytics: reports from the store (bench/analytics.py)"
FIRST = date(2025, 11, 3)  # a Monday
SPEC = LineSpec(load_s=8.0, process_s=45.0, unload_s=5.0)
POLICY = Policy(default_ideal_cycle_s=55.0)
REPS = 7
INTERVAL_S = 300  # analytics.rollup_interval_s default


def machine_info() -> dict:
    import sqlite3

    return {"date": datetime.now(timezone.utc).strftime("%a %b %d %H:%M:%S UTC %Y"),
            "machine": f"{platform.system()} {platform.release()} {platform.machine()}", "nproc": os.cpu_count(),
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "numpy": np.__version__}


def fill(store: SqliteStore, machines: list[MachineRef], days: int, rollout: date) -> tuple[int, float]:
    values = 0
    started = time.perf_counter()
    for i in range(0, len(machines), 4):  # one line of 4 at a time keeps memory small
        cols, _ = generate(machines[i:i + 4], FIRST, days, SPEC, seed=100 + i, load_scale_after=(rollout, 0.25))
        for m, c in cols.items():
            values += sum(len(ts) for ts, _ in c.values())
            if hasattr(store, "write_columns"):
                store.write_columns(m, c)
            else:
                by_ts: dict[int, dict] = {}
                for tag, (ts, vals) in c.items():
                    for t, v in zip(ts.tolist(), vals.tolist()):
                        by_ts.setdefault(t, {})[tag] = v
                store.write([Point(m, t, v) for t, v in sorted(by_ts.items())])
        print(f"  wrote machines {i + 1}-{i + len(cols)}: {values:,} values, {time.perf_counter() - started:.0f} s",
              flush=True)
    return values, time.perf_counter() - started


def raw_day_kpis(store: SqliteStore, machines: list[MachineRef], day: date) -> dict:
    """Baseline: pull the day's raw samples (plus the stale margin) into Python and tally them there."""
    start = local_midnight_ms(day, POLICY)
    end = start + 86_400_000
    stale = int(POLICY.stale_s * 1000)
    codes = [s.code for s in POLICY.states]
    total = kpi.Totals.zeros(1, codes)
    for m in machines:
        def pull(tag: str):
            rows = store.history(m, tag, start - stale, end + stale, 0)
            return np.array([t for t, _ in rows], dtype=np.int64), np.array([v for _, v in rows], dtype=float)

        b = from_samples((start, end), POLICY.bucket_min * 60_000, codes, stale, state=pull("state"),
                         good=pull("good_count"), scrap=pull("scrap_count"), material_input=pull("material_input"),
                         energy=pull("energy_wh"))
        total = total + kpi.totals(b, np.zeros(len(b.start_ms), dtype=np.int64), 1, POLICY, POLICY.ideal_cycle(m.line, m.machine))
    return kpi.scalar(total)


def timed(fn, reps: int = REPS) -> tuple[float, object]:
    fn()  # warm-up
    times, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def update_results(section: str) -> None:
    update_section(SECTION_TITLE, section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 machines x 28 days instead of 20 x 180")
    parser.add_argument("--keep", type=Path, help="keep the store and cache in this directory")
    args = parser.parse_args()
    n_machines, days = (4, 28) if args.quick else (20, 180)
    rollout = FIRST + timedelta(days=days // 2)
    machines = [MachineRef("bench", "site-1", f"line-{i // 4 + 1}", f"press-{i % 4 + 1}") for i in range(n_machines)]
    line1 = [m for m in machines if m.line == "line-1"]
    info = machine_info()
    print(f"{info['date']} | {info['machine']} | nproc {info['nproc']} | Python {info['python']} | SQLite {info['sqlite']}")
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="bench_analytics_"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        store = SqliteStore(tmp / "store.db")
        print(f"generating {n_machines} machines x {days} days ...", flush=True)
        values, fill_s = fill(store, machines, days, rollout)
        rows_state = store._read("SELECT count(*) FROM samples s JOIN series x ON x.id = s.series_id WHERE x.tag='state'")[0][0]
        day = rollout + timedelta(days=9)
        while day.weekday() >= 5:
            day += timedelta(days=1)

        pushed_s, pushed = timed(lambda: period_report(store, line1, POLICY, day, day))
        raw_s, raw = timed(lambda: raw_day_kpis(store, line1, day))
        differ = [k for k in raw if not ((pushed["kpis"][k] is None and raw[k] is None) or (
            None not in (pushed["kpis"][k], raw[k]) and abs(pushed["kpis"][k] - raw[k]) <= 1e-9 * max(1, abs(raw[k]))))]
        same = not differ
        if differ:
            print("  differ:", {k: (pushed["kpis"][k], raw[k]) for k in differ})
        cache = RollupCache(tmp / "rollups.db")
        cache_day_s, _ = timed(lambda: period_report(store, line1, POLICY, day, day, cache=cache))
        print(f"day KPIs, one line: rollups {pushed_s * 1000:.0f} ms, raw pull {raw_s * 1000:.0f} ms, "
              f"cached {cache_day_s * 1000:.0f} ms, same KPIs: {same}", flush=True)

        cache.close()
        (tmp / "rollups.db").unlink()
        cache = RollupCache(tmp / "rollups.db")
        report = lambda c: before_after_report(store, machines, POLICY, rollout, 7, None, 0, 2000, None, FIRST,  # noqa: E731
                                               FIRST + timedelta(days=days - 1), c)
        t = time.perf_counter()
        cold = report(cache)  # baseline: nothing tallied yet, every hour computed from the store
        cold_s = time.perf_counter() - t
        cache.close()
        (tmp / "rollups.db").unlink()

        # the platform's way: the API's maintainer keeps the rollups up to date as data arrives
        cache = RollupCache(tmp / "rollups.db")
        settings = AnalyticsSettings(default=POLICY)
        maintainer = RollupMaintainer(store, settings, cache, recheck_ms=24 * HOUR_MS)
        data_end_ms = local_midnight_ms(FIRST + timedelta(days=days), POLICY)
        now_ms = data_end_ms + 3 * HOUR_MS
        catch_up = maintainer.run_pass(now_ms)
        steady_times = []
        for k in range(1, 4):  # a pass per finished hour, each rechecking the last 24 h for late data
            steady_times.append(maintainer.run_pass(now_ms + k * HOUR_MS, full=True).seconds)
        steady_s = statistics.median(steady_times)
        steady_buckets = maintainer.last.buckets_computed
        warm_s, warm = timed(lambda: report(cache), reps=3)
        same_full = [k["after"] for k in cold["kpis"]] == [k["after"] for k in warm["kpis"]]
        mi = next(k for k in warm["kpis"] if k["key"] == "material_input_s")
        print(f"full report: cold {cold_s:.1f} s, rollups maintained {warm_s:.2f} s, same: {same_full}; "
              f"maintainer catch-up {catch_up.seconds:.1f} s, steady pass {steady_s:.2f} s; "
              f"material input {mi['change_pct']:+.1f}% [{mi['ci95_change_pct'][0]:+.1f}, {mi['ci95_change_pct'][1]:+.1f}]")
        store.close()
        cache.close()
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    mode = "quick" if args.quick else "full"
    table = "\n".join([
        "| measure | figure | baseline (same run) | ratio | target |",
        "|---|---:|---:|---:|---|",
        f"| day KPIs, one line of 4 machines, from store rollups (median of {REPS}) | {pushed_s * 1000:.0f} ms | "
        f"raw pull into Python: {raw_s * 1000:.0f} ms | {raw_s / pushed_s:.1f}x faster | < 200 ms: "
        f"{'met' if pushed_s < 0.2 else 'NOT met'} |",
        f"| day KPIs, one line, rollup cache warm | {cache_day_s * 1000:.0f} ms | rollups: {pushed_s * 1000:.0f} ms | "
        f"{pushed_s / cache_day_s:.1f}x faster | < 200 ms: {'met' if cache_day_s < 0.2 else 'NOT met'} |",
        f"| full before/after report, {n_machines} machines x {days} days, rollups kept up to date by the maintainer "
        f"(median of 3) | {warm_s:.2f} s | cold, every hour from the store: {cold_s:.1f} s | {cold_s / warm_s:.0f}x "
        f"faster | < 10 s: {'met' if warm_s < 10 else 'NOT met'} |",
        f"| maintainer: one pass at steady state ({n_machines} machines, the last 24 h recomputed for late data; "
        f"median of 3) | {steady_s:.2f} s | every {INTERVAL_S} s: {steady_s / INTERVAL_S:.1%} of one core | | |",
        f"| maintainer: first pass over the whole history (once, in the background) | {catch_up.seconds:.1f} s | "
        f"cold report: {cold_s:.1f} s | {cold_s / catch_up.seconds:.1f}x | |",
    ])
    section = "\n".join([
        SECTION_TITLE,
        "",
        f"- date: {info['date']}",
        f"- machine: {info['machine']}, nproc {info['nproc']}, Python {info['python']}",
        f"- libraries: SQLite {info['sqlite']} (python sqlite3), numpy {info['numpy']}",
        f"- data ({mode}): {n_machines} machines (lines of 4) x {days} days from {FIRST}, `analytics.synthetic` "
        f"report-on-change at 1 s resolution with a 60 s heartbeat, weekdays 08:00-17:00 scheduled, cycle about "
        f"{SPEC.load_s + SPEC.process_s + SPEC.unload_s:.0f} s; {values:,} values ({rows_state:,} state samples), "
        f"written in {fill_s:.0f} s; rollout {rollout} with material input x0.25",
        f"- full report: 2000 bootstrap replicates, windows of {cold['windows']['days_each']} days, 7 commissioning days "
        f"excluded; cold and warm runs gave the same KPIs: {same_full}; day KPIs from rollups and from the raw pull "
        f"agree: {same}",
        "",
        table,
        "",
        f"Reading: store rollups (SQLite: one ordered range scan per state tag tallied inside the store, "
        f"per-bucket counter last/max/min in SQL) give a line's day KPIs in {pushed_s * 1000:.0f} ms, "
        f"{raw_s / pushed_s:.1f}x the speed of pulling the raw samples into Python. A {days}-day report of "
        f"{n_machines} machines computed cold reads every state sample once ({cold_s:.0f} s here, linear in the "
        f"samples). The platform does not serve it that way: like a continuous aggregate, the API's rollup maintainer "
        f"(`analytics.continuous`, also `smartfactory rollups`) tallies each finished hour once as data arrives "
        f"({steady_s:.2f} s per pass for {n_machines} machines, rechecking the last 24 h for late outbox replays; "
        f"{steady_buckets} hours recomputed per pass), and the report reads those rows: {warm_s:.1f} s. The first pass "
        f"over existing history ({catch_up.seconds:.0f} s here) runs once in the background, and a backfill tallies "
        f"what it writes. The machine is shared: absolute figures move between runs, the ratios less.",
        "",
    ])
    print()
    print(section)
    update_results(section)
    print(f"updated {RESULTS_PATH.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()

"""Embedded time-series store: SQLite or DuckDB? Measure both, on the same data, in one run.

Why this exists: the issue asks for "an embedded store that needs no server. Choose SQLite
or DuckDB after measuring both; the collector and the API must be able to run as separate
processes on it." tsstore/sqlite.py records the choice (SQLite); this script is the
evidence, and re-running it re-checks the choice against new library versions.

What it measures, on synthetic data (10 machines x 5 tags, one sample per second, fixed
numpy seed):

1. write throughput in batches of 5000 values: ``SqliteStore.write`` exactly as the
   collector calls it, against ``DuckStore.write`` below, a DuckDB narrow table with the
   same columns, the same primary key and the same upsert (INSERT ... ON CONFLICT DO
   UPDATE), one transaction per batch. Both start from the same ``Point`` objects, so both
   pay the Python conversion. DuckDB is fed in the two fast idiomatic ways available
   without pandas/pyarrow, and the faster one counts: INSERT ... SELECT from a replacement
   scan of numpy arrays, and the Python appender in upsert mode. ``executemany`` is not
   measured: it took ~18 s for a single batch of 5000 rows when this script was written.
2. read latency, median of repeated calls as the API makes them: a 1-minute mean
   downsample of one tag over the whole range (``history``) and the latest value of every
   tag of one machine (``latest``).
3. the decisive check, for real: a writer process holds the file open and keeps writing
   while a separate reader process opens the same file and reads (collector + API); and
   the other way round (API already open, collector starts). The error of a refusal is
   captured verbatim.

Results are printed and written to the section "Embedded store: SQLite vs DuckDB
(bench/store_choice.py)" of bench/RESULTS.md; other sections are kept.

Run from the repo root: ``/tmp/sfvenv/bin/python bench/store_choice.py [--quick]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import queue
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402

from plant import MachineRef  # noqa: E402
from tsstore.base import LatestValue, Point, StoredValue, stored_value  # noqa: E402
from tsstore.sqlite import SqliteStore  # noqa: E402

from bench.results import RESULTS_PATH, update_section, run_command  # noqa: E402

SECTION_TITLE = "## Embedded store: SQLite vs DuckDB (bench/store_choice.py)"

SEED = 20240601
MACHINES = 10
TAGS = ("temperature_c", "spindle_rpm", "vibration_mm_s", "running", "program")
VALUES_PER_POINT = len(TAGS)
BATCH_VALUES = 5000
POINTS_PER_BATCH = BATCH_VALUES // VALUES_PER_POINT  # 1000 points = 100 s of 10 machines
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
STEP_MS = 1000
BUCKET_MS = 60_000
READ_REPS = 25
#: Ratios closer to 1 than this are reported as "similar": run-to-run noise on the shared machine.
NOISE = 1.25
CONCURRENCY_S = 2.0


# -- synthetic data -------------------------------------------------------------------------
class Dataset:
    """Per machine and second: 3 floats-ish, an int, a bool and a text tag (fixed seed)."""

    def __init__(self, n_ts: int) -> None:
        rng = np.random.default_rng(SEED)
        shape = (MACHINES, n_ts)
        self.n_ts = n_ts
        self.machines = [MachineRef("acme", "plant1", f"line{m // 5 + 1}", f"m{m:02d}") for m in range(MACHINES)]
        self.temperature = 60 + np.cumsum(rng.normal(0, 0.05, shape), axis=1)
        self.rpm = rng.integers(1150, 1250, shape)
        self.vibration = np.abs(rng.normal(2.0, 0.4, shape)).round(3)
        self.running = rng.random(shape) > 0.05
        self.program = rng.integers(100, 105, (MACHINES, n_ts // 600 + 1))  # changes every 10 min

    def points(self, first_ts: int, n: int) -> list[Point]:
        """Points of timestamps first_ts .. first_ts+n-1 (indices past the end wrap the values)."""
        out = []
        for i in range(first_ts, first_ts + n):
            j = i % self.n_ts
            ts = T0_MS + i * STEP_MS
            for m, ref in enumerate(self.machines):
                out.append(Point(ref, ts, {
                    "temperature_c": float(self.temperature[m, j]),
                    "spindle_rpm": int(self.rpm[m, j]),
                    "vibration_mm_s": float(self.vibration[m, j]),
                    "running": bool(self.running[m, j]),
                    "program": f"P{self.program[m, j // 600]}",
                }))
        return out

    def batches(self, first_ts: int = 0, n_ts: int | None = None):
        """Batches of BATCH_VALUES values; built lazily so that building is never timed."""
        n_ts = self.n_ts if n_ts is None else n_ts
        per_batch = POINTS_PER_BATCH // MACHINES
        for start in range(first_ts, first_ts + n_ts, per_batch):
            yield self.points(start, min(per_batch, first_ts + n_ts - start))


# -- the DuckDB counterpart of SqliteStore --------------------------------------------------
_DUCK_SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS series_ids;
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY DEFAULT nextval('series_ids'),
    tenant VARCHAR NOT NULL, site VARCHAR NOT NULL, line VARCHAR NOT NULL, machine VARCHAR NOT NULL,
    tag VARCHAR NOT NULL,
    UNIQUE (tenant, site, line, machine, tag)
);
CREATE TABLE IF NOT EXISTS samples (
    series_id INTEGER NOT NULL,   -- no REFERENCES: SQLite does not enforce its foreign key either
    ts BIGINT NOT NULL,
    num DOUBLE,
    txt VARCHAR,
    PRIMARY KEY (series_id, ts)
);
"""
_DUCK_UPSERT = (
    "INSERT INTO samples (series_id, ts, num, txt) {select} "
    "ON CONFLICT (series_id, ts) DO UPDATE SET num = excluded.num, txt = excluded.txt"
)


class DuckStore:
    """Same schema, semantics and queries as SqliteStore, written the way DuckDB is fastest."""

    #: How write() hands a batch to DuckDB; the benchmark measures both and keeps the faster.
    INGEST = {
        "scan": "INSERT ... SELECT ... ON CONFLICT DO UPDATE from a replacement scan of numpy arrays",
        "appender": 'Python appender, appender(table, action="upsert"), append_rows + flush',
    }

    def __init__(self, path: str | Path, read_only: bool = False, ingest: str = "scan") -> None:
        assert ingest in self.INGEST
        self.ingest = ingest
        self._appender = None
        self.db = duckdb.connect(str(path), read_only=read_only)
        if not read_only:
            for stmt in filter(str.strip, _DUCK_SCHEMA.split(";")):
                self.db.execute(stmt)
        self._series_ids: dict[tuple[str, str, str, str, str], int] = {}

    def write(self, points: Sequence[Point]) -> None:
        if not points:
            return
        if self.ingest == "appender":
            return self._write_appender(points)
        sid_n, ts_n, num_n, sid_t, ts_t, txt_t = [], [], [], [], [], []
        db = self.db
        db.execute("BEGIN TRANSACTION")
        try:
            for p in points:
                for tag, value in p.values.items():
                    v = stored_value(value)
                    sid = self._series_id(p.machine, tag)
                    if isinstance(v, str):
                        sid_t.append(sid), ts_t.append(p.ts_ms), txt_t.append(v)
                    else:
                        sid_n.append(sid), ts_n.append(p.ts_ms), num_n.append(v)
            # Replacement scans: DuckDB reads the local numpy arrays by name, column-wise.
            if sid_n:
                nums = {"series_id": np.asarray(sid_n, np.int32), "ts": np.asarray(ts_n, np.int64),  # noqa: F841 (DuckDB reads it by name)
                        "num": np.asarray(num_n, np.float64)}
                db.execute(_DUCK_UPSERT.format(select="SELECT series_id, ts, num, NULL FROM nums"))
            if sid_t:
                txts = {"series_id": np.asarray(sid_t, np.int32), "ts": np.asarray(ts_t, np.int64),  # noqa: F841 (DuckDB reads it by name)
                        "txt": np.asarray(txt_t, object)}
                db.execute(_DUCK_UPSERT.format(select="SELECT series_id, ts, NULL, txt FROM txts"))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._series_ids.clear()
            raise

    def _write_appender(self, points: Sequence[Point]) -> None:
        if self._appender is None:
            self._appender = self.db.appender("samples", action="upsert")  # upsert on the primary key
        self.db.execute("BEGIN TRANSACTION")
        try:
            rows = []
            for p in points:
                for tag, value in p.values.items():
                    v = stored_value(value)
                    sid = self._series_id(p.machine, tag)
                    rows.append((sid, p.ts_ms, None, v) if isinstance(v, str) else (sid, p.ts_ms, v, None))
            self._appender.append_rows(rows)
            self._appender.flush()
            self.db.execute("COMMIT")
        except BaseException:
            self._appender.clear()
            self.db.execute("ROLLBACK")
            self._series_ids.clear()
            raise

    def _series_id(self, m: MachineRef, tag: str) -> int:
        key = (m.tenant, m.site, m.line, m.machine, tag)
        sid = self._series_ids.get(key)
        if sid is None:
            self.db.execute(
                "INSERT INTO series (tenant, site, line, machine, tag) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                key,
            )
            ((sid,),) = self.db.execute(
                "SELECT id FROM series WHERE tenant=? AND site=? AND line=? AND machine=? AND tag=?", key
            ).fetchall()
            self._series_ids[key] = sid
        return sid

    def latest(self, machine: MachineRef) -> dict[str, LatestValue]:
        rows = self.db.execute(
            # The SQL of SqliteStore.latest: it was as fast as arg_max/GROUP BY or a LATERAL
            # ... ORDER BY ts DESC LIMIT 1 here (DuckDB scans either way; its ART index serves
            # point lookups, not ordered ranges).
            """SELECT s.tag, x.ts, x.num, x.txt FROM series s
               JOIN samples x ON x.series_id = s.id
                AND x.ts = (SELECT max(ts) FROM samples WHERE series_id = s.id)
               WHERE s.tenant=? AND s.site=? AND s.line=? AND s.machine=?""",
            (machine.tenant, machine.site, machine.line, machine.machine),
        ).fetchall()
        return {tag: LatestValue(ts, txt if num is None else num) for tag, ts, num, txt in rows}

    def history(self, machine: MachineRef, tag: str, start_ms: int, end_ms: int, every_ms: int,
                agg: str = "mean") -> list[tuple[int, StoredValue]]:
        assert agg == "mean" and every_ms > 0  # the only case this benchmark measures
        series = self.db.execute(
            "SELECT id, EXISTS(SELECT 1 FROM samples WHERE series_id = series.id AND txt IS NOT NULL) "
            "FROM series WHERE tenant=? AND site=? AND line=? AND machine=? AND tag=?",
            (machine.tenant, machine.site, machine.line, machine.machine, tag),
        ).fetchall()
        if not series:
            return []
        sid, has_text = series[0]
        if has_text:
            raise ValueError(f"tag {tag!r} holds text")
        rows = self.db.execute(
            "SELECT (ts // $every) * $every AS bucket, avg(num) FROM samples "
            "WHERE series_id=$sid AND ts>=$start AND ts<$end GROUP BY bucket ORDER BY bucket",
            {"every": int(every_ms), "sid": sid, "start": start_ms, "end": end_ms},
        ).fetchall()
        return [(int(b), v) for b, v in rows]

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM samples").fetchall()[0][0]

    def close(self) -> None:
        self.db.close()


def open_store(engine: str, path: str | Path, read_only: bool = False, ingest: str = "scan"):
    if engine == "sqlite":
        return SqliteBench(path)
    return DuckStore(path, read_only=read_only, ingest=ingest)


class SqliteBench(SqliteStore):
    """SqliteStore unchanged, plus the row count the benchmark checks."""

    def count(self) -> int:
        return self._read("SELECT count(*) FROM samples")[0][0]


# -- 1. writes ------------------------------------------------------------------------------
# The stores are fed batch by batch in turn (rotating who goes first), so that the noise of a
# shared machine falls on all of them alike instead of on whichever happened to run during it.
def bench_writes(stores: dict, data: Dataset) -> dict:
    names = list(stores)
    times: dict[str, list[float]] = {name: [] for name in names}
    values = 0
    for i, points in enumerate(data.batches()):
        for name in names[i % len(names):] + names[:i % len(names)]:
            started = time.perf_counter()
            stores[name].write(points)
            times[name].append(time.perf_counter() - started)
        values += len(points) * VALUES_PER_POINT
    results = {}
    tail = max(1, len(times[names[0]]) // 10)
    for name, store in stores.items():
        store.write(next(data.batches()))  # idempotence: the same batch again must overwrite, not add
        seconds = sum(times[name])
        results[name] = {
            "values": values, "seconds": seconds, "values_per_s": values / seconds,
            # A store only grows: the last tenth shows whether writing slows down with its size.
            "tail_values_per_s": tail * BATCH_VALUES / sum(times[name][-tail:]),
            "rows_after_rewrite": store.count(),
        }
    return results


# -- 2. reads -------------------------------------------------------------------------------
def bench_reads(stores: dict, data: Dataset) -> dict:
    """Median latency of history() and latest() as the API calls them, engines taking turns."""
    machine = data.machines[3]
    end_ms = T0_MS + data.n_ts * STEP_MS
    calls = {
        "history": lambda st: st.history(machine, "temperature_c", T0_MS, end_ms, BUCKET_MS, "mean"),
        "latest": lambda st: st.latest(machine),
    }
    names = list(stores)
    samples = {(name, c): [] for name in names for c in calls}
    answers = {}
    for name in names:  # warm-up: caches, prepared statements
        for c, fn in calls.items():
            answers[name, c] = fn(stores[name])
    for rep in range(READ_REPS):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            for c, fn in calls.items():
                started = time.perf_counter()
                fn(stores[name])
                samples[name, c].append((time.perf_counter() - started) * 1000)
    return {name: {"history_ms": statistics.median(samples[name, "history"]), "history": answers[name, "history"],
                   "latest_ms": statistics.median(samples[name, "latest"]), "latest": answers[name, "latest"]}
            for name in names}


# -- 3. two processes -----------------------------------------------------------------------
def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()


def writer_proc(engine: str, path: str, ingest: str, n_ts: int, first_ts: int, ready, stop, out) -> None:
    """The collector: open for writing, then write new batches until told to stop."""
    result = {"role": "writer", "opened": False, "batches": 0, "error": None}
    try:
        data = Dataset(n_ts)
        store = open_store(engine, path, ingest=ingest)
        result["opened"] = True
        next_ts = first_ts  # past anything written before: the reader can tell new data
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            store.write(data.points(next_ts, 10))
            next_ts += 10
            result["batches"] += 1
            ready.set()
            if stop.is_set() and result["batches"] >= 3:
                break
            time.sleep(0.02)  # a collector flushes at intervals; leave the lock free now and then
        store.close()
    except BaseException as exc:  # noqa: BLE001 - the point is to report it
        result["error"] = _describe(exc)
    finally:
        ready.set()
        out.put(result)


def reader_proc(engine: str, path: str, machine: MachineRef, ready, stop, duration_s: float, out) -> None:
    """The API: open the file (read-only where the engine has such a mode) and read repeatedly."""
    result = {"role": "reader", "opened": False, "reads": 0, "errors": [], "first_ts": None, "last_ts": None,
              "max_ms": 0.0}
    try:
        store = None
        modes = ["default"] if engine == "sqlite" else ["read_only=True", "read_only=False"]
        for mode in modes:
            try:
                store = open_store(engine, path, read_only=(mode == "read_only=True"))
                result["opened"] = mode
                break
            except Exception as exc:  # noqa: BLE001
                result["errors"].append(f"open {mode}: {_describe(exc)}")
        ready.set()
        if store is None:
            return
        # duration_s > 0: read for that long; 0: read until told to stop (at most 60 s).
        deadline = time.monotonic() + (duration_s or 60)
        while time.monotonic() < deadline and not (duration_s == 0 and stop.is_set()):
            started = time.perf_counter()
            try:
                latest = store.latest(machine)
            except Exception as exc:  # noqa: BLE001
                result["errors"].append(f"read: {_describe(exc)}")
                break
            result["max_ms"] = max(result["max_ms"], (time.perf_counter() - started) * 1000)
            ts = max(v.ts_ms for v in latest.values())
            result["first_ts"] = ts if result["first_ts"] is None else result["first_ts"]
            result["last_ts"] = ts
            result["reads"] += 1
            time.sleep(0.01)
        store.close()
    except BaseException as exc:  # noqa: BLE001
        result["errors"].append(_describe(exc))
    finally:
        ready.set()
        out.put(result)


def _collect(out, n: int, timeout: float) -> dict:
    got = {}
    for _ in range(n):
        try:
            r = out.get(timeout=timeout)
        except queue.Empty:
            break
        got[r["role"]] = r
    return got


def bench_two_processes(engine: str, path: Path, data: Dataset, ingest: str) -> dict:
    """Both orders: collector first then API (the normal case), and API first then collector."""
    ctx = mp.get_context("spawn")  # genuinely separate interpreters, no inherited handles
    machine = data.machines[3]
    results = {}

    # (a) the writer holds the file and writes; a reader process starts and reads.
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    w = ctx.Process(target=writer_proc, args=(engine, str(path), ingest, data.n_ts, 2 * data.n_ts, ready, stop, out))
    procs = [w]
    w.start()
    ready.wait(60)
    r_ready = ctx.Event()
    r = ctx.Process(target=reader_proc, args=(engine, str(path), machine, r_ready, stop, CONCURRENCY_S, out))
    procs.append(r)
    r.start()
    r.join(60)
    stop.set()
    w.join(60)
    results["writer_then_reader"] = _collect(out, 2, 5)

    # (b) the reader holds the file open; a writer process starts and writes.
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    r = ctx.Process(target=reader_proc, args=(engine, str(path), machine, ready, stop, 0, out))
    procs.append(r)
    r.start()
    ready.wait(60)
    time.sleep(0.3)
    w_ready = ctx.Event()
    w = ctx.Process(target=writer_proc, args=(engine, str(path), ingest, data.n_ts, 4 * data.n_ts, w_ready, stop,
                                              out))
    procs.append(w)
    w.start()
    w_ready.wait(60)
    time.sleep(CONCURRENCY_S)
    stop.set()
    w.join(60)
    r.join(60)
    results["reader_then_writer"] = _collect(out, 2, 5)
    for p in procs:  # only a hung child is still alive here
        if p.is_alive():
            p.kill()
    return results


def concurrent_ok(res: dict) -> bool:
    """Both processes had the file open at once, the reader read and saw the writer's new data."""
    rd, wr = res.get("reader", {}), res.get("writer", {})
    return bool(
        rd.get("opened") and wr.get("opened") and not wr.get("error") and rd.get("reads", 0) > 0
        and wr.get("batches", 0) > 0 and not any(e.startswith("read") for e in rd.get("errors", []))
        and rd.get("last_ts") is not None and rd["last_ts"] > rd["first_ts"]
    )


def describe_two(res: dict) -> str:
    rd, wr = res.get("reader", {}), res.get("writer", {})
    parts = [f"writer: {'opened' if wr.get('opened') else 'NOT opened'}, {wr.get('batches', 0)} batches"]
    if wr.get("error"):
        parts.append(f"writer error: {wr['error']}")
    parts.append(f"reader: {'opened (' + rd['opened'] + ')' if rd.get('opened') else 'NOT opened'}, "
                 f"{rd.get('reads', 0)} reads, max {rd.get('max_ms', 0):.1f} ms, "
                 f"saw new data: {'yes' if rd.get('last_ts') and rd['last_ts'] > rd['first_ts'] else 'no'}")
    parts += [f"reader error: {e}" for e in rd.get("errors", [])]
    return "; ".join(parts)


# -- reporting ------------------------------------------------------------------------------


def machine_info() -> dict:
    return {
        "date": run_command(["date", "-u"], time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime())),
        "machine": run_command(["uname", "-srm"], " ".join(platform.uname()[i] for i in (0, 2, 4))),
        "nproc": run_command(["nproc"], str(os.cpu_count())),
        "python": platform.python_version(),
        "libs": f"SQLite {sqlite3.sqlite_version} (python sqlite3), duckdb {duckdb.__version__}, numpy {np.__version__}",
    }


def check_same_answers(sq: dict, dk: dict) -> list[str]:
    problems = []
    if len(sq["history"]) != len(dk["history"]):
        problems.append(f"history buckets differ: {len(sq['history'])} vs {len(dk['history'])}")
    elif any(a[0] != b[0] or abs(a[1] - b[1]) > 1e-9 for a, b in zip(sq["history"], dk["history"])):
        problems.append("history values differ")
    if sq["latest"] != dk["latest"]:
        problems.append(f"latest differs: {sq['latest']} vs {dk['latest']}")
    return problems


def build_report(mode: str, data: Dataset, info: dict, w: dict, rd: dict, two: dict, duck_ingest: dict,
                 problems: list[str]) -> str:
    sq_ok = concurrent_ok(two["sqlite"]["writer_then_reader"])
    dk_ok = concurrent_ok(two["duckdb"]["writer_then_reader"])
    sq_rev = concurrent_ok(two["sqlite"]["reader_then_writer"])
    dk_rev = concurrent_ok(two["duckdb"]["reader_then_writer"])
    yn = {True: "yes", False: "**no**"}

    def ratio(d: float, s: float) -> str:
        return f"{d / s:.2f}"

    def better(duck: float, sqlite: float, higher_is_better: bool) -> str:
        """Who wins, unless the two are within NOISE of each other (a shared machine)."""
        r = duck / sqlite if higher_is_better else sqlite / duck
        if 1 / NOISE < r < NOISE:
            return f"similar (within {NOISE:.2f}x)"
        return ("DuckDB" if r > 1 else "SQLite") + (" (higher)" if higher_is_better else " (lower)")

    ws, wd = w["sqlite"]["values_per_s"], w["duckdb"]["values_per_s"]
    best_ingest = max(duck_ingest, key=lambda k: duck_ingest[k]["values_per_s"])
    hs, hd = rd["sqlite"]["history_ms"], rd["duckdb"]["history_ms"]
    ls_, ld = rd["sqlite"]["latest_ms"], rd["duckdb"]["latest_ms"]
    lines = [
        "| measure | SQLite | DuckDB | DuckDB/SQLite | better |",
        "|---|---:|---:|---:|---|",
        f"| write, values/s (batches of {BATCH_VALUES}) | {ws:,.0f} | {wd:,.0f} | {ratio(wd, ws)} | "
        f"{better(wd, ws, True)} |",
        f"| write, values/s, last 10% of batches (largest table) | {w['sqlite']['tail_values_per_s']:,.0f} | "
        f"{w['duckdb']['tail_values_per_s']:,.0f} | "
        f"{ratio(w['duckdb']['tail_values_per_s'], w['sqlite']['tail_values_per_s'])} | "
        f"{better(w['duckdb']['tail_values_per_s'], w['sqlite']['tail_values_per_s'], True)} |",
        f"| 1-min mean downsample, 1 tag, whole range, median ms | {hs:.2f} | {hd:.2f} | {ratio(hd, hs)} | "
        f"{better(hd, hs, False)} |",
        f"| latest value of each tag of 1 machine, median ms | {ls_:.2f} | {ld:.2f} | {ratio(ld, ls_)} | "
        f"{better(ld, ls_, False)} |",
        f"| reader process reads while writer process writes | {yn[sq_ok]} | {yn[dk_ok]} | - | - |",
        f"| writer process starts while reader process has it open | {yn[sq_rev]} | {yn[dk_rev]} | - | - |",
    ]
    table = "\n".join(lines)

    if sq_ok and sq_rev and not (dk_ok and dk_rev):
        conclusion = (
            "**SQLite.** It is the only one of the two on which the collector and the API can run as "
            "separate processes: with WAL the reader process read while the writer process kept writing, "
            "and saw its new rows. DuckDB refused the second process "
            + ("in both orders" if not dk_ok and not dk_rev else "in one order")
            + " (errors below), so using it would mean running the API inside the collector process (the "
            "issue requires separate processes) or putting a server in front of the file (the issue asks for "
            "none). "
        )
        faster = [name for name, r in (("writing", wd / ws), ("downsampling", hs / hd), ("latest", ls_ / ld))
                  if r >= NOISE]
        if faster:
            conclusion += (f"DuckDB was faster at {', '.join(faster)} here, which cannot make up for a process "
                           "model the deployment does not fit.")
        else:
            conclusion += f"DuckDB was not faster on any figure measured here (by the {NOISE:.2f}x noise margin)."
    elif sq_ok and dk_ok and sq_rev and dk_rev:
        conclusion = ("**Re-examine the choice:** both engines allowed a writer process beside a reader process "
                      "in this run; decide on the figures above.")
    else:
        conclusion = ("**Unexpected:** SQLite did not pass the two-process check in this run; see the details "
                      "below before relying on tsstore/sqlite.py.")

    details = []
    for engine in ("sqlite", "duckdb"):
        for order, label in (("writer_then_reader", "writer first, then reader"),
                             ("reader_then_writer", "reader first, then writer")):
            details.append(f"- {engine}, {label}: {describe_two(two[engine][order])}")

    n_values = data.n_ts * MACHINES * VALUES_PER_POINT
    out = [
        SECTION_TITLE,
        "",
        f"- date: {info['date']}",
        f"- machine: {info['machine']}, nproc {info['nproc']}, Python {info['python']}",
        f"- libraries: {info['libs']}",
        f"- data ({mode}): {MACHINES} machines x {len(TAGS)} tags (2 float, 1 int, 1 bool, 1 text) "
        f"x {data.n_ts} timestamps at 1 s = {n_values:,} values, numpy seed {SEED}; file in a temp dir on local disk",
        "- SQLite: `tsstore.sqlite.SqliteStore` as the collector uses it (WAL, synchronous=FULL, "
        "INSERT ... ON CONFLICT DO UPDATE via executemany, one transaction per batch). DuckDB: `DuckStore` in "
        "the script, same narrow schema, PRIMARY KEY (series_id, ts) and upsert, one transaction per batch, "
        "default settings, two ways in measured: "
        + "; ".join(f"{DuckStore.INGEST[k]}: {v['values_per_s']:,.0f} values/s" for k, v in duck_ingest.items())
        + f". The table uses the faster ({best_ingest}). Both stores convert the same `Point` objects. Reads go "
        f"through each store's `history`/`latest`, median of {READ_REPS} calls after a warm-up.",
        f"- both engines returned the same rows ({w['sqlite']['rows_after_rewrite']:,} after re-writing a batch; "
        f"same buckets and latest values)" if not problems else f"- **answers differ:** {'; '.join(problems)}",
        "",
        table,
        "",
        f"Conclusion: {conclusion}",
        "",
        "Two-process check (separate `spawn` processes on the same file):",
        "",
        *details,
        "",
    ]
    return "\n".join(out)


def update_results(section: str) -> None:
    update_section(SECTION_TITLE, section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data set (1 h instead of 3 h)")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    data = Dataset(3600 if args.quick else 3 * 3600)
    info = machine_info()
    print(f"{info['date']} | {info['machine']} | nproc {info['nproc']} | Python {info['python']} | {info['libs']}")
    print(f"data ({mode}): {data.n_ts * MACHINES * VALUES_PER_POINT:,} values in batches of {BATCH_VALUES}")

    tmp = Path(tempfile.mkdtemp(prefix="store_choice_"))
    try:
        paths = {"sqlite": tmp / "store.sqlite"} | {f"duckdb-{k}": tmp / f"store-{k}.duckdb" for k in DuckStore.INGEST}
        stores = {name: open_store(name.split("-")[0], path, ingest=name.partition("-")[2] or "scan")
                  for name, path in paths.items()}
        started = time.perf_counter()
        written = bench_writes(stores, data)
        for store in stores.values():
            store.close()
        for name, res in written.items():
            print(f"write   {name:16s} {res['values_per_s']:>10,.0f} values/s overall, "
                  f"{res['tail_values_per_s']:>10,.0f} in the last 10% ({res['seconds']:.1f} s, "
                  f"{res['rows_after_rewrite']:,} rows after re-writing a batch)")
        print(f"writes took {time.perf_counter() - started:.1f} s")

        # DuckDB counts with its faster way in; the other file is not needed any more.
        duck_ingest = {k: written[f"duckdb-{k}"] for k in DuckStore.INGEST}
        ingest = max(duck_ingest, key=lambda k: duck_ingest[k]["values_per_s"])
        for other in set(DuckStore.INGEST) - {ingest}:
            for leftover in tmp.glob(f"store-{other}.duckdb*"):
                leftover.unlink()
        paths = {"sqlite": paths["sqlite"], "duckdb": paths[f"duckdb-{ingest}"]}
        w = {"sqlite": written["sqlite"], "duckdb": written[f"duckdb-{ingest}"]}

        stores = {engine: open_store(engine, path, ingest=ingest) for engine, path in paths.items()}
        rd = bench_reads(stores, data)
        for store in stores.values():
            store.close()
        for engine, res in rd.items():
            print(f"reads   {engine:16s} history {res['history_ms']:7.2f} ms ({len(res['history'])} buckets), "
                  f"latest {res['latest_ms']:7.2f} ms")

        two = {}
        for engine, path in paths.items():
            started = time.perf_counter()
            two[engine] = bench_two_processes(engine, path, data, ingest)
            for order, res in two[engine].items():
                print(f"2-proc  {engine:16s} {order}: {'OK' if concurrent_ok(res) else 'FAILED'} - "
                      f"{describe_two(res)}")
            print(f"2-proc  {engine} took {time.perf_counter() - started:.1f} s")
        problems = check_same_answers(rd["sqlite"], rd["duckdb"])
        if w["sqlite"]["rows_after_rewrite"] != w["duckdb"]["rows_after_rewrite"]:
            problems.append(f"row counts differ: {w['sqlite']['rows_after_rewrite']} vs "
                            f"{w['duckdb']['rows_after_rewrite']}")
        section = build_report(mode, data, info, w, rd, two, duck_ingest, problems)
    except Exception:
        traceback.print_exc()
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(section)
    update_results(section)
    print(f"updated {RESULTS_PATH.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()

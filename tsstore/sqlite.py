"""Embedded store on SQLite (WAL): no server, and several processes may share one file.

Chosen over DuckDB because the collector writes while the API reads from another
process: DuckDB allows one writing process and no concurrent readers, SQLite's WAL
allows one writer beside many readers (measured in bench/store_choice.py).
"""

from __future__ import annotations

import math
import sqlite3
import threading
from itertools import repeat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from plant import MachineRef
from tsstore.base import (
    AGGREGATES,
    LatestValue,
    Point,
    StoredValue,
    StoreRejected,
    StoreUnavailable,
    ValueCount,
    fold_runs,
    stored_value,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL, site TEXT NOT NULL, line TEXT NOT NULL, machine TEXT NOT NULL,
    tag TEXT NOT NULL,
    UNIQUE (tenant, site, line, machine, tag)
);
CREATE TABLE IF NOT EXISTS samples (
    series_id INTEGER NOT NULL REFERENCES series(id),
    ts INTEGER NOT NULL,          -- epoch ms, source time
    num REAL,                     -- numbers and booleans (0/1)
    txt TEXT,                     -- text values
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
"""

_AGG_SQL = {"mean": "avg(num)", "min": "min(num)", "max": "max(num)", "count": "count(*)"}


class SqliteStore:
    def __init__(self, path: str | Path, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection per thread: FastAPI runs sync endpoints in a thread pool.
        self._local = threading.local()
        self._busy_timeout_s = busy_timeout_s
        self._series_ids: dict[tuple[str, str, str, str, str], int] = {}
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                # FULL: a batch the collector acknowledges must survive a power cut.
                db.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"cannot open SQLite store {self.path}: {exc}") from exc
            self._local.db = db
        return db

    # -- writing -----------------------------------------------------------------------
    def write(self, points: Sequence[Point]) -> None:
        if not points:
            return
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            rows = []
            for p in points:
                for tag, value in p.values.items():
                    v = stored_value(value)
                    sid = self._series_id(db, p.machine, tag)
                    rows.append((sid, p.ts_ms, None, v) if isinstance(v, str) else (sid, p.ts_ms, v, None))
            db.executemany(
                "INSERT INTO samples (series_id, ts, num, txt) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (series_id, ts) DO UPDATE SET num = excluded.num, txt = excluded.txt",
                rows,
            )
            db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            _rollback(db)
            self._series_ids.clear()  # ids created in the rolled-back transaction are gone
            raise StoreUnavailable(f"SQLite store {self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            _rollback(db)
            self._series_ids.clear()
            raise StoreRejected(f"SQLite store {self.path} refused the batch: {exc}") from exc

    def write_columns(self, machine: MachineRef, columns: Mapping[str, tuple[Sequence[int], Sequence[float]]]) -> None:
        """Bulk path for history backfill: per tag, parallel arrays of epoch ms and numbers.

        Same rows, upsert and errors as ``write``, without building a Point per instant;
        non-finite numbers are dropped, as the line protocol must drop them.
        """
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            for tag, (ts, values) in columns.items():
                ts_list = ts.tolist() if hasattr(ts, "tolist") else list(ts)
                vals = values.astype(float).tolist() if hasattr(values, "astype") else [float(v) for v in values]
                if len(ts_list) != len(vals):
                    raise StoreRejected(f"tag {tag!r}: {len(ts_list)} timestamps but {len(vals)} values")
                if not ts_list:
                    continue
                if not all(map(math.isfinite, vals)):
                    finite = [math.isfinite(v) for v in vals]
                    ts_list = [t for t, ok in zip(ts_list, finite) if ok]
                    vals = [v for v, ok in zip(vals, finite) if ok]
                sid = self._series_id(db, machine, tag)
                db.executemany(
                    "INSERT INTO samples (series_id, ts, num, txt) VALUES (?, ?, ?, NULL) "
                    "ON CONFLICT (series_id, ts) DO UPDATE SET num = excluded.num, txt = NULL",
                    zip(repeat(sid), ts_list, vals),
                )
            db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            _rollback(db)
            self._series_ids.clear()
            raise StoreUnavailable(f"SQLite store {self.path}: {exc}") from exc
        except (sqlite3.Error, StoreRejected) as exc:
            _rollback(db)
            self._series_ids.clear()
            if isinstance(exc, StoreRejected):
                raise
            raise StoreRejected(f"SQLite store {self.path} refused the batch: {exc}") from exc

    def _series_id(self, db: sqlite3.Connection, m: MachineRef, tag: str) -> int:
        key = (m.tenant, m.site, m.line, m.machine, tag)
        sid = self._series_ids.get(key)
        if sid is None:
            db.execute(
                "INSERT OR IGNORE INTO series (tenant, site, line, machine, tag) VALUES (?, ?, ?, ?, ?)", key
            )
            (sid,) = db.execute(
                "SELECT id FROM series WHERE tenant=? AND site=? AND line=? AND machine=? AND tag=?", key
            ).fetchone()
            self._series_ids[key] = sid
        return sid

    # -- reading -----------------------------------------------------------------------
    def machines(self) -> list[MachineRef]:
        rows = self._read("SELECT DISTINCT tenant, site, line, machine FROM series ORDER BY 1, 2, 3, 4")
        return [MachineRef(*row) for row in rows]

    def latest(self, machine: MachineRef) -> dict[str, LatestValue]:
        rows = self._read(
            """SELECT s.tag, x.ts, x.num, x.txt FROM series s
               JOIN samples x ON x.series_id = s.id
                AND x.ts = (SELECT max(ts) FROM samples WHERE series_id = s.id)
               WHERE s.tenant=? AND s.site=? AND s.line=? AND s.machine=?""",
            (machine.tenant, machine.site, machine.line, machine.machine),
        )
        return {tag: LatestValue(ts, txt if num is None else num) for tag, ts, num, txt in rows}

    def history(
        self, machine: MachineRef, tag: str, start_ms: int, end_ms: int, every_ms: int, agg: str = "mean"
    ) -> list[tuple[int, StoredValue]]:
        if agg not in AGGREGATES:
            raise ValueError(f"unknown aggregate {agg!r}; use one of {AGGREGATES}")
        series = self._read(
            "SELECT id FROM series WHERE tenant=? AND site=? AND line=? AND machine=? AND tag=?",
            (machine.tenant, machine.site, machine.line, machine.machine, tag),
        )
        if not series:
            return []
        (sid,) = series[0]
        if every_ms <= 0:
            rows = self._read(
                "SELECT ts, coalesce(num, txt) FROM samples WHERE series_id=? AND ts>=? AND ts<? ORDER BY ts",
                (sid, start_ms, end_ms),
            )
            return [(ts, v) for ts, v in rows]
        if agg == "last":
            # Bare columns with max() take their values from the row holding the maximum.
            sql = (
                "SELECT (ts / :every) * :every AS bucket, coalesce(num, txt), max(ts) FROM samples "
                "WHERE series_id=:sid AND ts>=:start AND ts<:end GROUP BY bucket ORDER BY bucket"
            )
        else:
            # The text check rides along in the same grouped scan (count(txt) per bucket): a separate
            # EXISTS query scanned the range a second time on every call.
            sql = (
                f"SELECT (ts / :every) * :every AS bucket, {_AGG_SQL[agg]}, count(txt) FROM samples "
                "WHERE series_id=:sid AND ts>=:start AND ts<:end GROUP BY bucket ORDER BY bucket"
            )
        rows = self._read(sql, {"every": int(every_ms), "sid": sid, "start": start_ms, "end": end_ms})
        if agg != "last" and any(row[2] for row in rows):
            raise StoreRejected(f"tag {tag!r} holds text; only agg=last applies to it")
        return [(row[0], row[1]) for row in rows]

    def value_buckets(
        self, machine: MachineRef, tag: str, start_ms: int, end_ms: int, every_ms: int
    ) -> list[tuple[int, float, float, float]]:
        """mean, min and max per bucket in one grouped range scan (the text check in the same scan)."""
        if every_ms <= 0:
            raise ValueError("value_buckets needs a bucket size every_ms > 0")
        series = self._read("SELECT id FROM series WHERE tenant=? AND site=? AND line=? AND machine=? AND tag=?",
                            (machine.tenant, machine.site, machine.line, machine.machine, tag))
        if not series:
            return []
        rows = self._read(
            "SELECT (ts / :every) * :every AS bucket, avg(num), min(num), max(num), count(txt) FROM samples "
            "WHERE series_id=:sid AND ts>=:start AND ts<:end GROUP BY bucket ORDER BY bucket",
            {"every": int(every_ms), "sid": series[0][0], "start": start_ms, "end": end_ms},
        )
        if any(row[4] for row in rows):
            raise StoreRejected(f"tag {tag!r} holds text; mean, min and max need numbers")
        return [(int(b), float(mean), float(lo), float(hi)) for b, mean, lo, hi, _ in rows if mean is not None]

    def counter_buckets(
        self, machine: MachineRef, tag: str, start_ms: int, end_ms: int, every_ms: int
    ) -> list[tuple[int, float, float, float]]:
        """One grouped range scan for max, min and the newest row's time; the last values by key lookups."""
        if every_ms <= 0:
            raise ValueError("counter_buckets needs a bucket size every_ms > 0")
        series = self._read("SELECT id FROM series WHERE tenant=? AND site=? AND line=? AND machine=? AND tag=?",
                            (machine.tenant, machine.site, machine.line, machine.machine, tag))
        if not series:
            return []
        rows = self._read(
            """WITH b AS (SELECT (ts / :every) * :every AS bucket, max(ts) AS last_ts, max(num) AS hi, min(num) AS lo
                          FROM samples WHERE series_id = :sid AND ts >= :start AND ts < :end AND num IS NOT NULL
                          GROUP BY bucket)
               SELECT b.bucket, s.num, b.hi, b.lo FROM b JOIN samples s ON s.series_id = :sid AND s.ts = b.last_ts
               ORDER BY b.bucket""",
            {"every": int(every_ms), "sid": series[0][0], "start": start_ms, "end": end_ms},
        )
        return [(int(b), float(last), float(hi), float(lo)) for b, last, hi, lo in rows]

    def state_durations(
        self, machine: MachineRef, tag: str, start_ms: int, end_ms: int, every_ms: int, values: Sequence[float],
        stale_ms: int,
    ) -> list[ValueCount]:
        """One ordered range scan of the primary key, tallied with numpy inside the store.

        The same rules written as SQL (lag() window functions, GROUP BY) ran about twice as
        slow on SQLite 3.40; the rows never leave this method.
        """
        import numpy as np

        if every_ms <= 0:
            raise ValueError("state_durations needs a bucket size every_ms > 0")
        wanted = np.array([float(v) for v in values])
        if not len(wanted):
            return []
        series = self._read("SELECT id FROM series WHERE tenant=? AND site=? AND line=? AND machine=? AND tag=?",
                            (machine.tenant, machine.site, machine.line, machine.machine, tag))
        if not series:
            return []
        every, stale = int(every_ms), int(stale_ms)
        try:
            cur = self._connect().execute(
                "SELECT ts, num FROM samples WHERE series_id=? AND ts>=? AND ts<=? ORDER BY ts",
                (series[0][0], start_ms - stale, end_ms),
            )
            parts = []
            while rows := cur.fetchmany(250_000):
                parts.append(np.array(rows, dtype=np.float64))
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store {self.path}: {exc}") from exc
        if not parts or sum(len(p) for p in parts) < 2:
            return []
        a = np.concatenate(parts)
        ts, v = a[:, 0].astype(np.int64), a[:, 1]  # text rows have num NULL -> nan: matches no value
        prev_v, t = v[:-1], ts[1:]
        wanted = np.unique(wanted)
        first_bucket = ((start_ms - stale) // every) * every
        n_buckets = (end_ms - first_bucket) // every + 2
        # One integer key per (bucket, value) so a bincount does the grouping (a 2-D np.unique
        # sorts, and was the slowest step of a cold report).
        held_ok = (t > start_ms) & np.isin(prev_v, wanted)
        held = np.minimum(t - ts[:-1], stale)[held_ok]
        held_key = ((t[held_ok] - 1) // every * every - first_bucket) // every * len(wanted) + np.searchsorted(
            wanted, prev_v[held_ok])
        cur_v = v[1:]
        run_ok = (cur_v != prev_v) & (t >= start_ms) & (t < end_ms) & np.isin(cur_v, wanted)
        run_key = (t[run_ok] // every * every - first_bucket) // every * len(wanted) + np.searchsorted(
            wanted, cur_v[run_ok])
        size = n_buckets * len(wanted)
        held_sum = np.bincount(held_key, weights=held, minlength=size)
        run_sum = np.bincount(run_key, minlength=size)
        keys = np.flatnonzero((held_sum > 0) | (run_sum > 0) | (np.bincount(held_key, minlength=size) > 0))
        return [
            ValueCount(int(first_bucket + (k // len(wanted)) * every), float(wanted[k % len(wanted)]),
                       int(round(held_sum[k])), int(run_sum[k]))
            for k in keys.tolist()
        ]

    def state_runs(
        self, machine: MachineRef, tag: str, start_ms: int, end_ms: int, stale_ms: int
    ) -> list[tuple[int, int, int]]:
        """One ordered range scan fetched in blocks into numpy and folded there (``fold_runs``).

        Written as SQL (lag() and a running sum) it took three times as long on SQLite 3.40.
        """
        import numpy as np

        series = self._read("SELECT id FROM series WHERE tenant=? AND site=? AND line=? AND machine=? AND tag=?",
                            (machine.tenant, machine.site, machine.line, machine.machine, tag))
        if not series:
            return []
        try:
            cur = self._connect().execute(
                "SELECT ts, num FROM samples WHERE series_id=? AND ts>=? AND ts<? AND num IS NOT NULL ORDER BY ts",
                (series[0][0], int(start_ms), int(end_ms)))
            parts = []
            while rows := cur.fetchmany(250_000):
                parts.append(np.array(rows, dtype=np.float64))
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store {self.path}: {exc}") from exc
        if not parts:
            return []
        a = np.concatenate(parts)
        return fold_runs(a[:, 0], a[:, 1], int(stale_ms))

    def edge_samples(
        self, machine: MachineRef, tag: str, edges_ms: Sequence[int], stale_ms: int
    ) -> list[tuple[tuple[int, float] | None, int | None]]:
        """Two primary-key lookups per edge."""
        series = self._read("SELECT id FROM series WHERE tenant=? AND site=? AND line=? AND machine=? AND tag=?",
                            (machine.tenant, machine.site, machine.line, machine.machine, tag))
        if not series:
            return [(None, None) for _ in edges_ms]
        sid, out = series[0][0], []
        for a in edges_ms:
            before = self._read("SELECT ts, num FROM samples WHERE series_id=? AND ts>=? AND ts<? AND num IS NOT NULL "
                                "ORDER BY ts DESC LIMIT 1", (sid, int(a) - stale_ms, int(a)))
            after = self._read("SELECT ts FROM samples WHERE series_id=? AND ts>=? AND ts<=? AND num IS NOT NULL "
                               "ORDER BY ts LIMIT 1", (sid, int(a), int(a) + stale_ms))
            out.append(((int(before[0][0]), float(before[0][1])) if before else None, int(after[0][0]) if after else None))
        return out

    def ping(self) -> None:
        self._read("SELECT 1")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _read(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._connect().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store {self.path}: {exc}") from exc


def _rollback(db: sqlite3.Connection) -> None:
    try:
        db.execute("ROLLBACK")
    except sqlite3.Error:
        pass

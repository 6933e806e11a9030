"""Bucket tallies straight from the store's own aggregates (GROUP BY time), not from raw points.

Per machine and window: time held and runs started of each state code
(``state_durations``: SQL window functions or InfluxQL elapsed/difference), the
material-input signal the same way (its runs are the cycles), and each counter's
per-bucket ``last`` and ``max``. A value holds until the next sample, at most the
policy's staleness limit, so fixed-rate polling and report-on-change both work.

Counters: a bucket that only rose needs its last reading and the previous bucket's; the
rare bucket with a wrap, a PLC reset, a backward step or a data gap is recounted from its raw
readings (see ``_counter``), so corrections are exact and flagged without pulling every sample,
and parts made while no data came are counted apart, never as the next hour's output.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analytics import deadline
from analytics.buckets import Buckets
from analytics.counters import counter_deltas
from analytics.policy import Policy
from plant import MachineRef
from tsstore import TimeSeriesStore

log = logging.getLogger(__name__)

#: How far back to look for the counter reading that precedes a window.
LOOKBACK_MS = 7 * 86_400_000
#: Layout of a cached bucket row; a new layout gets a new shape, so old rows are recomputed, never misread.
ROW_VERSION = 2


def machine_buckets(store: TimeSeriesStore, machine: MachineRef, policy: Policy, start_ms: int, end_ms: int,
                    now_ms: int | None = None) -> Buckets:
    """The tallies of [start, end); ``now_ms``: the bucket holding it has had data only up to then (see ``_counter``)."""
    bucket_ms = policy.bucket_min * 60_000
    codes = [s.code for s in policy.states]
    b = Buckets.empty(start_ms, end_ms, bucket_ms, codes)
    stale_ms = int(policy.stale_s * 1000)
    tags = policy.tags
    for c in store.state_durations(machine, tags.state, start_ms, end_ms, bucket_ms, codes, stale_ms):
        i = (c.bucket_ms - start_ms) // bucket_ms
        b.state_ms[int(c.value)][i] = c.held_ms
        b.state_runs[int(c.value)][i] = c.runs
    if tags.material_input:
        on = [float(v) for v in tags.material_input_on]
        for c in store.state_durations(machine, tags.material_input, start_ms, end_ms, bucket_ms, on, stale_ms):
            i = (c.bucket_ms - start_ms) // bucket_ms
            b.mi_ms[i] += c.held_ms
            b.mi_runs[i] += c.runs
        b.mi_ms[:] = np.minimum(b.mi_ms, bucket_ms)
    rate = policy.max_rate_per_s(machine.line, machine.machine)
    b.good[:], b.gap_good[:] = _counter(store, machine, tags.good, tags.good_bits, b, "good", stale_ms, rate,
                                          now_ms=now_ms)
    b.scrap[:], b.gap_scrap[:] = _counter(store, machine, tags.scrap, tags.scrap_bits, b, "scrap", stale_ms,
                                            rate, now_ms=now_ms)
    if tags.energy:
        energy, _ = _counter(store, machine, tags.energy, tags.energy_bits, b, "energy", stale_ms, None, missing=np.nan,
                             now_ms=now_ms)
        b.energy_wh[:] = energy
    if tags.product and policy.ideal_cycle_by_product:
        # the product at the end of each bucket; a changeover inside a bucket is booked to the new product
        for ts, code in store.history(machine, tags.product, start_ms, end_ms, bucket_ms, "last"):
            ideal = policy.product_ideal(code)
            if ideal is None:
                log.warning("product_without_ideal_cycle machine=%s product=%r fix=add it to ideal_cycle_by_product",
                            machine.machine, code)
            b.ideal_s[(ts - start_ms) // bucket_ms] = np.nan if ideal is None else ideal
    return b


def label_edges(labels: np.ndarray) -> list[int]:
    """Bucket indices where a report's grouping changes (shift or day edges), with both window ends."""
    lab = np.asarray(labels)
    return [0, *(np.flatnonzero(lab[1:] != lab[:-1]) + 1).tolist(), len(lab)]


def correct_edges(store: TimeSeriesStore, machine: MachineRef, policy: Policy, b: Buckets, edges: list[int]) -> None:
    """Split the state holds that cross the given bucket edges, so each side gets its own time.

    The store books each hold (a state lasting until the next sample, at most the staleness
    limit) to the bucket it ends in, so an hour can hold seconds of the hour before. Inside a
    shift that moves nothing (every KPI is a ratio of sums over the shift or day), and buckets
    are not capped at their length (capping lost that time: complete data read 99.73%
    coverage). Where the grouping changes (a shift's start and end, a day, the window's ends)
    the hold crossing the edge is split here, from the two samples around it, so complete data
    reads exactly 100%. Applied by the report to its own grouping, so cached hours stay the
    same however they were computed.
    """
    tag, stale_ms = policy.tags.state, int(policy.stale_s * 1000)
    every, n = b.bucket_ms, len(b.start_ms)
    edges = sorted(set(e for e in edges if 0 <= e <= n))
    at = [int(b.start_ms[0]) + e * every for e in edges]
    for e, a, (last, first) in zip(edges, at, store.edge_samples(machine, tag, at, stale_ms)):
        if last is None or first == a:
            continue  # nothing held across the edge, or a sample right on it
        t_last, code = last[0], int(last[1])
        if code not in b.state_ms:
            continue
        before = min(a, t_last + stale_ms) - t_last  # the hold's part on the earlier side
        held = b.state_ms[code]
        if e < n:  # the store booked the whole hold to the bucket after the edge (or to the next sample's)
            before = min(before, held[e])
            held[e] -= before
        if e > 0:
            held[e - 1] += before


def _counter(store: TimeSeriesStore, machine: MachineRef, tag: str, bits: int, b: Buckets, name: str, stale_ms: int,
             max_rate_per_s: float | None, missing: float = 0.0,
             now_ms: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Increments per bucket from the store's per-bucket last/max/min (``counter_buckets``), and the
    increments across data gaps (booked to the bucket where data resumes, kept apart).

    A bucket whose readings never went below the previous bucket's last (min >= prev), ended at
    their top (last == max), follows a bucket with readings and had data all the time only
    rose: its increment is last - prev ("all the time": within one staleness limit, as holds
    move seconds across hour edges; a gap shorter than that stays in its hour). Any other
    bucket held a wrap, a reset, a correction or a gap (or starts the window with nothing
    before it); only its raw readings are fetched, and ``counter_deltas`` counts and flags them
    exactly, judging a drop by the rate it implies (``max_rate_per_s``). An increment between
    readings further apart than the staleness limit is not any hour's output: it goes to the
    gap tally and ``b.gaps``, never into the first bucket after the gap. The bucket holding
    ``now_ms`` (the current hour) can have had data only until then: "all the time" is up to now,
    so a live hour that only rose is not recounted from its raw readings on every read.
    """
    start, every = int(b.start_ms[0]), b.bucket_ms
    end = int(b.start_ms[-1]) + every
    # one pass: last, max, min per bucket, and the bucket before the window (its last is the baseline)
    stats = store.counter_buckets(machine, tag, start - every, end, every)
    before = [(ts, v) for ts, v, _, _ in stats[:1] if ts < start]
    stats = stats[len(before):]
    out = np.full(len(b.start_ms), missing)
    across = np.zeros(len(b.start_ms))
    if not stats:
        return out, across
    known = b.known_ms()
    last = [(ts, v) for ts, v, _, _ in stats]
    peak = {ts: hi for ts, _, hi, _ in stats}
    low = {ts: lo for ts, _, _, lo in stats}
    # the heartbeat puts a reading in the last hours; look further back only when there is none
    before = before or store.history(machine, tag, start - 2 * every, start, every, "last") or store.history(
        machine, tag, start - LOOKBACK_MS, start, every, "last")
    prev = before[-1][1] if before and isinstance(before[-1][1], float) else None
    prev_bucket = before[-1][0] if prev is not None else None
    for ts, v in last:
        deadline.check()
        if not isinstance(v, float):
            continue
        i = int((ts - start) // every)
        follows = prev is not None and prev_bucket == ts - every
        span = now_ms - ts if now_ms is not None and ts <= now_ms < ts + every else every
        if follows and known[i] >= span - stale_ms and low.get(ts, v) >= prev and peak.get(ts, v) == v:
            out[i] = v - prev
        else:
            lo = prev_bucket if follows else ts
            raw = [(t, x) for t, x in store.history(machine, tag, lo, ts + every, 0) if isinstance(x, float)]
            seq = [(t, x) for t, x in raw if t >= ts]
            earlier = [(t, x) for t, x in raw if t < ts]
            if earlier:
                seq.insert(0, earlier[-1])
            elif prev is not None:  # the last reading is hours back: somewhere in its bucket, at the latest its end
                seq.insert(0, (prev_bucket + every - 1, prev))
            t_arr = np.array([t for t, _ in seq], dtype=np.int64)
            d = counter_deltas(np.array([x for _, x in seq], dtype=np.int64), bits=bits, ts_ms=t_arr,
                               max_rate_per_s=max_rate_per_s, stale_ms=stale_ms)
            gap = np.diff(t_arr) > stale_ms
            out[i] = float(d.deltas[~gap].sum())
            across[i] = float(d.deltas[gap].sum())
            b.gaps += [{"ts": int(ts), "tag": name, "from_ms": int(t_arr[k]), "to_ms": int(t_arr[k + 1]),
                        "parts": int(d.deltas[k])} for k in np.flatnonzero(gap).tolist() if d.deltas[k] > 0]
            b.corrections += [{"ts": int(ts), "tag": name, "kind": kind.value} for _, kind in d.corrections]
        prev, prev_bucket = v, ts
    return out, across


@dataclass
class Tally:
    """A machine's freshly computed final hours, not yet written.

    The maintainer collects them and writes them with the machine's watermark in one
    transaction (``RollupCache.save_tally``), so an hour is never kept without the watermark
    that says it was tallied, nor the watermark moved past an hour that was not kept.
    """

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    corrections: list[tuple[Any, ...]] = field(default_factory=list)
    gaps: list[tuple[Any, ...]] = field(default_factory=list)
    computed: int = 0  # buckets computed from the store (kept or not)


class RollupCache:
    """Finished hours of bucket tallies, kept in a SQLite file so reports do not recompute history.

    Like a continuous aggregate: an hour that ended more than ``settle_ms`` ago is computed
    once from the store and then read back (a 180-day report of 20 machines reads 86,400
    small rows instead of scanning every sample again). Hours without any data are not
    kept, so a later backfill is picked up; ``refresh=True`` recomputes everything (after a
    late replay into hours that had data, for instance). Rows are keyed by the settings that
    shape them (tags, state codes, staleness, bucket size); the tenant's classification is
    applied later and can change freely.
    """

    #: Whether processes on other hosts read the same rows (PostgreSQL tables, not this host's file).
    shared = False

    def __init__(self, path, settle_ms: int = 2 * 3_600_000) -> None:
        import sqlite3
        from pathlib import Path

        self.path: Path | str = Path(path)  # a PostgreSQL cache names its database here instead
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.settle_ms = settle_ms
        # one connection per thread: API request threads and the maintainer share the cache
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._db.executescript(
            """CREATE TABLE IF NOT EXISTS buckets (
                   machine TEXT NOT NULL, shape TEXT NOT NULL, bucket INTEGER NOT NULL, v BLOB NOT NULL,
                   PRIMARY KEY (machine, shape, bucket)) WITHOUT ROWID;
               CREATE TABLE IF NOT EXISTS corrections (
                   machine TEXT NOT NULL, shape TEXT NOT NULL, ts INTEGER NOT NULL, tag TEXT NOT NULL, kind TEXT NOT NULL,
                   PRIMARY KEY (machine, shape, ts, tag));
               CREATE TABLE IF NOT EXISTS gaps (
                   machine TEXT NOT NULL, shape TEXT NOT NULL, ts INTEGER NOT NULL, tag TEXT NOT NULL,
                   from_ms INTEGER NOT NULL, to_ms INTEGER NOT NULL, parts INTEGER NOT NULL,
                   PRIMARY KEY (machine, shape, ts, tag, from_ms));
               CREATE TABLE IF NOT EXISTS coverage (
                   machine TEXT NOT NULL, shape TEXT NOT NULL, until_ms INTEGER NOT NULL,
                   PRIMARY KEY (machine, shape)) WITHOUT ROWID;
               CREATE TABLE IF NOT EXISTS summaries (
                   kind TEXT NOT NULL, tenant TEXT NOT NULL, as_of_ms INTEGER NOT NULL, body TEXT NOT NULL,
                   PRIMARY KEY (kind, tenant)) WITHOUT ROWID;"""
        )
        self.hits = 0
        self.computed = 0

    @staticmethod
    def shape(policy: Policy) -> str:
        import hashlib
        import json

        key = {"v": ROW_VERSION, "tags": policy.tags.model_dump(), "codes": sorted(s.code for s in policy.states),
               "max_rate": policy.counter_max_rate_per_s, "ideal": policy.ideal_cycle_s,
               "default_ideal": policy.default_ideal_cycle_s,
               "stale_s": policy.stale_s, "bucket_min": policy.bucket_min, "products": policy.ideal_cycle_by_product}
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]

    def machine_buckets(self, store: TimeSeriesStore, machine: MachineRef, policy: Policy, start_ms: int, end_ms: int,
                        now_ms: int, refresh: bool = False, pending: Tally | None = None) -> Buckets:
        """The tallies of [start, end): cached hours read back, the others computed and kept (with
        ``pending``, collected there instead of written, for ``save_tally``)."""
        shape, key = self.shape(policy), _key(machine)
        codes = [s.code for s in policy.states]
        every = policy.bucket_min * 60_000
        out = Buckets.empty(start_ms, end_ms, every, codes)
        have: dict[int, np.ndarray] = {}
        if not refresh:
            for bucket, blob in self._cached_rows(key, shape, start_ms, end_ms):
                have[bucket] = np.frombuffer(blob, dtype=np.float64)
        missing = np.array([b not in have for b in out.start_ms.tolist()])
        # compute each run of missing buckets in one store pass
        edges = np.flatnonzero(np.diff(np.concatenate([[0], missing.astype(np.int8), [0]])))
        fresh_rows, fresh_corr, fresh_gaps = [], [], []
        for a, b in zip(edges[::2], edges[1::2]):
            deadline.check()
            part = machine_buckets(store, machine, policy, int(out.start_ms[a]), int(out.start_ms[b - 1]) + every,
                                   now_ms)
            known = part.known_ms()  # once: per bucket it made this loop quadratic (minutes for a long range)
            for j in range(b - a):
                if not j & 4095:
                    deadline.check()
                vec = _pack(part, j, codes)
                _unpack_into(out, a + j, vec, codes)
                final = part.start_ms[j] + every <= now_ms - self.settle_ms
                if final and (known[j] > 0 or part.good[j] or part.scrap[j] or part.gap_good[j] or part.gap_scrap[j]):
                    fresh_rows.append((key, shape, int(part.start_ms[j]), vec.tobytes()))
            for c in part.corrections:
                out.corrections.append(c)
                if c["ts"] + every <= now_ms - self.settle_ms:
                    fresh_corr.append((key, shape, c["ts"], c["tag"], c["kind"]))
            for g in part.gaps:
                out.gaps.append(g)
                if g["ts"] + every <= now_ms - self.settle_ms:
                    fresh_gaps.append((key, shape, g["ts"], g["tag"], g["from_ms"], g["to_ms"], g["parts"]))
            self.computed += b - a
            if pending is not None:
                pending.computed += b - a
        if have:  # all cached rows at once: one matrix, one column per tally
            keys = np.fromiter(have, dtype=np.int64, count=len(have))
            rows = (keys - out.start_ms[0]) // every
            _unpack_rows(out, rows, np.vstack([have[k] for k in keys.tolist()]), codes)
            self.hits += len(have)
        if have:
            hit_lo, hit_hi = min(have), max(have) + every
            out.corrections += [
                {"ts": ts, "tag": tag, "kind": kind}
                for ts, tag, kind in self._cached_corrections(key, shape, hit_lo, hit_hi)
                if ts in have
            ]
            out.gaps += [
                {"ts": ts, "tag": tag, "from_ms": a, "to_ms": z, "parts": n}
                for ts, tag, a, z, n in self._cached_gaps(key, shape, hit_lo, hit_hi)
                if ts in have
            ]
        if pending is not None:
            pending.rows += fresh_rows
            pending.corrections += fresh_corr
            pending.gaps += fresh_gaps
        elif fresh_rows or fresh_corr or fresh_gaps:
            self._save(fresh_rows, fresh_corr, fresh_gaps)
        out.corrections.sort(key=lambda c: (c["ts"], c["tag"]))
        out.gaps.sort(key=lambda g: (g["from_ms"], g["tag"]))
        return out

    # -- storage: the SQLite file; analytics.rollup_pg keeps the same rows in PostgreSQL --------
    def _cached_rows(self, key: str, shape: str, start_ms: int, end_ms: int):
        return self._db.execute("SELECT bucket, v FROM buckets WHERE machine=? AND shape=? AND bucket>=? AND bucket<?",
                                (key, shape, start_ms, end_ms))

    def _cached_corrections(self, key: str, shape: str, start_ms: int, end_ms: int):
        return self._db.execute("SELECT ts, tag, kind FROM corrections WHERE machine=? AND shape=? AND ts>=? AND ts<?",
                                (key, shape, start_ms, end_ms))

    def _cached_gaps(self, key: str, shape: str, start_ms: int, end_ms: int):
        return self._db.execute(
            "SELECT ts, tag, from_ms, to_ms, parts FROM gaps WHERE machine=? AND shape=? AND ts>=? AND ts<?",
            (key, shape, start_ms, end_ms))

    def _save(self, rows: list[tuple], corrections: list[tuple], gaps: list[tuple]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        self._db.executemany("INSERT OR REPLACE INTO buckets VALUES (?, ?, ?, ?)", rows)
        self._db.executemany("INSERT OR REPLACE INTO corrections VALUES (?, ?, ?, ?, ?)", corrections)
        self._db.executemany("INSERT OR REPLACE INTO gaps VALUES (?, ?, ?, ?, ?, ?, ?)", gaps)
        self._db.execute("COMMIT")

    def save_tally(self, machine: MachineRef, policy: Policy, tally: Tally, until_ms: int) -> None:
        """The tallied hours and the machine's new watermark, in one transaction."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT OR REPLACE INTO buckets VALUES (?, ?, ?, ?)", tally.rows)
            db.executemany("INSERT OR REPLACE INTO corrections VALUES (?, ?, ?, ?, ?)", tally.corrections)
            db.executemany("INSERT OR REPLACE INTO gaps VALUES (?, ?, ?, ?, ?, ?, ?)", tally.gaps)
            db.execute("INSERT OR REPLACE INTO coverage VALUES (?, ?, ?)", (_key(machine), self.shape(policy), until_ms))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- per-tenant summaries (api.centre): what the centre overview and portfolio read ----------
    def put_summaries(self, kind: str, items: dict[str, tuple[int, str]]) -> None:
        """``items``: tenant -> (as of, epoch ms; JSON body). Upserts: the newest write wins."""
        self._db.executemany("INSERT OR REPLACE INTO summaries VALUES (?, ?, ?, ?)",
                             [(kind, t, as_of, body) for t, (as_of, body) in items.items()])

    def summaries(self, kind: str) -> dict[str, tuple[int, str]]:
        return {t: (int(a), b) for t, a, b in
                self._db.execute("SELECT tenant, as_of_ms, body FROM summaries WHERE kind=?", (kind,))}

    def covered_until(self, machine: MachineRef, policy: Policy) -> int | None:
        """Up to where ``analytics.continuous`` has kept this machine's rollups (epoch ms), if it has."""
        row = self._db.execute("SELECT until_ms FROM coverage WHERE machine=? AND shape=?",
                               (_key(machine), self.shape(policy))).fetchone()
        return None if row is None else int(row[0])

    def set_covered_until(self, machine: MachineRef, policy: Policy, until_ms: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO coverage VALUES (?, ?, ?)", (_key(machine), self.shape(policy), until_ms))

    @property
    def _db(self):
        import sqlite3

        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            self._local.db = db
            with self._guard:
                self._all.append(db)
        return db

    def close(self) -> None:
        with self._guard:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()


def _key(m: MachineRef) -> str:
    return "/".join((m.tenant, m.site, m.line, m.machine))


def _pack(b: Buckets, j: int, codes: list[int]) -> np.ndarray:
    return np.array([*(b.state_ms[c][j] for c in codes), *(b.state_runs[c][j] for c in codes),
                     b.good[j], b.scrap[j], b.mi_ms[j], b.mi_runs[j], b.energy_wh[j], b.ideal_s[j], b.gap_good[j],
                     b.gap_scrap[j]], dtype=np.float64)


def _unpack_into(b: Buckets, i: int, v: np.ndarray, codes: list[int]) -> None:
    n = len(codes)
    for k, c in enumerate(codes):
        b.state_ms[c][i] = v[k]
        b.state_runs[c][i] = v[n + k]
    b.good[i], b.scrap[i], b.mi_ms[i], b.mi_runs[i], b.energy_wh[i], b.ideal_s[i], b.gap_good[i], b.gap_scrap[i] = \
        v[2 * n : 2 * n + 8]


def _unpack_rows(b: Buckets, rows: np.ndarray, m: np.ndarray, codes: list[int]) -> None:
    n = len(codes)
    for k, c in enumerate(codes):
        b.state_ms[c][rows] = m[:, k]
        b.state_runs[c][rows] = m[:, n + k]
    (b.good[rows], b.scrap[rows], b.mi_ms[rows], b.mi_runs[rows], b.energy_wh[rows], b.ideal_s[rows], b.gap_good[rows],
     b.gap_scrap[rows]) = m[:, 2 * n : 2 * n + 8].T

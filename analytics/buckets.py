"""Per-bucket tallies of one machine: the meeting point of raw signals and store rollups.

Every KPI is a ratio of sums, so a KPI for a shift, a day, a line or a whole window is the
same ratio over more buckets. Two paths fill the table: ``from_samples`` from raw signals
(state intervals, counter deltas, material-input intervals; exact, for tests and short
spans) and ``analytics.rollup`` from the store's own GROUP BY time() aggregates (fast).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analytics.counters import counter_deltas
from analytics.states import Interval, state_intervals


@dataclass
class Buckets:
    """Tallies per bucket for one machine; all arrays have one entry per bucket start."""

    start_ms: np.ndarray  # int64, consecutive bucket starts
    bucket_ms: int
    state_ms: dict[int, np.ndarray]  # time in each state code
    state_runs: dict[int, np.ndarray]  # episodes of each state starting in the bucket
    good: np.ndarray
    scrap: np.ndarray
    mi_ms: np.ndarray  # time the material-input signal was on
    mi_runs: np.ndarray  # material-input phases starting in the bucket (one per cycle)
    energy_wh: np.ndarray  # nan where no energy meter
    corrections: list[dict] = field(default_factory=list)  # counter wraps/resets: {"ts", "tag", "kind"}
    ideal_s: np.ndarray | None = None  # ideal cycle of the product made in the bucket; nan: the machine's
    # parts counted across a data gap (readings further apart than the staleness limit): booked to
    # the bucket where data resumes, but kept out of good/scrap, so no hour gets a gap's output
    gap_good: np.ndarray | None = None
    gap_scrap: np.ndarray | None = None
    gaps: list[dict] = field(default_factory=list)  # {"tag", "from_ms", "to_ms", "parts"} per counter gap

    @classmethod
    def empty(cls, start_ms: int, end_ms: int, bucket_ms: int, codes: list[int]) -> Buckets:
        if start_ms % bucket_ms or end_ms % bucket_ms or end_ms <= start_ms:
            raise ValueError(f"window [{start_ms}, {end_ms}) must be whole buckets of {bucket_ms} ms")
        starts = np.arange(start_ms, end_ms, bucket_ms, dtype=np.int64)
        z = lambda: np.zeros(len(starts))  # noqa: E731
        return cls(starts, bucket_ms, {c: z() for c in codes}, {c: z() for c in codes}, z(), z(), z(), z(),
                   np.full(len(starts), np.nan), [], np.full(len(starts), np.nan), z(), z(), [])

    def index(self, ts_ms: np.ndarray) -> np.ndarray:
        """Bucket index of each timestamp, -1 outside the table."""
        idx = (np.asarray(ts_ms, dtype=np.int64) - self.start_ms[0]) // self.bucket_ms
        return np.where((idx >= 0) & (idx < len(self.start_ms)), idx, -1)

    def known_ms(self) -> np.ndarray:
        """Time with data. Not capped at the bucket's length: the store books a hold to the hour it
        ends in, so an hour may hold a few seconds of its neighbour's; sums over hours are exact."""
        return sum(self.state_ms.values(), np.zeros(len(self.start_ms)))


def time_per_bucket(intervals: list[Interval], edges: np.ndarray, state: int) -> np.ndarray:
    """Time each bucket [edges[i], edges[i+1]) spent in ``state``: cumulative time at each edge, differenced."""
    iv = [(i.start_ms, i.end_ms) for i in intervals if i.state == state]
    if not iv:
        return np.zeros(len(edges) - 1)
    s, e = (np.array(x, dtype=np.int64) for x in zip(*iv))
    cum = np.concatenate([[0], np.cumsum(e - s)])
    k = np.searchsorted(e, edges, side="right")  # intervals wholly before each edge
    partial = np.where(k < len(s), np.clip(edges - s[np.minimum(k, len(s) - 1)], 0, None), 0)
    return np.diff(cum[k] + partial).astype(float)


def runs_per_bucket(intervals: list[Interval], b: Buckets, state: int) -> np.ndarray:
    starts = np.array([i.start_ms for i in intervals if i.state == state], dtype=np.int64)
    idx = b.index(starts)
    return np.bincount(idx[idx >= 0], minlength=len(b.start_ms)).astype(float)


def add_counter(b: Buckets, target: np.ndarray, tag: str, ts_ms, values, bits: int | None,
                stale_ms: int | None = None, max_rate_per_s: float | None = None, across_gaps: np.ndarray | None = None) -> None:
    """Counter increments, each booked to the bucket of the later sample, corrections flagged.

    With ``stale_ms``, an increment between readings further apart than that (a data gap) is
    booked to ``across_gaps`` instead of ``target`` (or dropped without one) and listed in
    ``b.gaps``: the parts were made somewhere in the gap, not in the hour data came back.
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    d = counter_deltas(values, bits=bits, ts_ms=ts, max_rate_per_s=max_rate_per_s, stale_ms=stale_ms)
    if not len(d.deltas):
        return
    idx = b.index(ts[1:])
    ok = idx >= 0
    gap = np.diff(ts) > stale_ms if stale_ms is not None else np.zeros(len(d.deltas), dtype=bool)
    np.add.at(target, idx[ok & ~gap], d.deltas[ok & ~gap])
    if across_gaps is not None:
        np.add.at(across_gaps, idx[ok & gap], d.deltas[ok & gap])
    for i in np.flatnonzero(ok & gap).tolist():
        b.gaps.append({"tag": tag, "from_ms": int(ts[i]), "to_ms": int(ts[i + 1]), "parts": int(d.deltas[i])})
    for i, kind in d.corrections:
        if idx[i] >= 0:
            b.corrections.append({"ts": int(ts[i + 1]), "tag": tag, "kind": kind.value})


def from_samples(
    window: tuple[int, int],
    bucket_ms: int,
    codes: list[int],
    stale_ms: int,
    state: tuple | None = None,
    good: tuple | None = None,
    scrap: tuple | None = None,
    material_input: tuple | None = None,
    energy: tuple | None = None,
    bits: tuple[int | None, int | None, int | None] = (16, 16, 32),
    product_ideal: tuple | None = None,
    material_on: tuple[float, ...] = (1.0,),
    max_rate_per_s: float | None = None,
) -> Buckets:
    """Tallies from raw (timestamps, values) pairs; counters may include one sample before the window.

    A state holds until the next sample, at most ``stale_ms``; beyond that the time is
    UNKNOWN and lands in no state, so it is counted neither as running nor as down.
    Material input is on while its tag holds one of ``material_on`` (1.0 for a coil; the
    loading code where the machine-state register signals it), as the store path counts it.
    Counter increments across a gap longer than ``stale_ms`` go to ``gap_good``/``gap_scrap``;
    ``max_rate_per_s`` (the machine's top rate) tells a wrap from a PLC restart near the top.
    """
    b = Buckets.empty(*window, bucket_ms, codes)
    edges = np.append(b.start_ms, window[1])
    if state is not None:
        iv = state_intervals(state[0], state[1], window, stale_ms)
        for c in codes:
            b.state_ms[c] = time_per_bucket(iv, edges, c)
            b.state_runs[c] = runs_per_bucket(iv, b, c)
    if material_input is not None:
        on = material_input_on(material_input[1], material_on)
        iv = state_intervals(material_input[0], on, window, stale_ms)
        b.mi_ms = time_per_bucket(iv, edges, 1)
        b.mi_runs = runs_per_bucket(iv, b, 1)
    if good is not None:
        add_counter(b, b.good, "good", *good, bits[0], stale_ms, max_rate_per_s, b.gap_good)
    if scrap is not None:
        add_counter(b, b.scrap, "scrap", *scrap, bits[1], stale_ms, max_rate_per_s, b.gap_scrap)
    if energy is not None:
        b.energy_wh = np.zeros(len(b.start_ms))
        add_counter(b, b.energy_wh, "energy", *energy, bits[2], stale_ms)  # energy across a gap: not booked
    if product_ideal is not None:  # (timestamps, ideal cycle of the product sampled then): the bucket's last one
        ts, ideal = np.asarray(product_ideal[0], dtype=np.int64), np.asarray(product_ideal[1], dtype=float)
        idx = b.index(ts)
        b.ideal_s[idx[idx >= 0]] = ideal[idx >= 0]  # later samples overwrite earlier ones
    return b


@dataclass(frozen=True)
class Cycles:
    """One row per material-input phase: when it started, how long input took, and the cycle length."""

    start_ms: np.ndarray
    input_ms: np.ndarray
    cycle_ms: np.ndarray  # to the next phase's start; nan for the last one or across a data gap


def material_input_on(values, on_values: tuple[float, ...] = (1.0,)) -> np.ndarray:
    """1 where the material-input tag holds one of ``on_values``, else 0 (text and nan are off)."""
    v = np.asarray(values, dtype=float)
    return np.isin(v, np.asarray(on_values, dtype=float)).astype(np.int64)


def cycles(ts_ms, material_input, window: tuple[int, int], stale_ms: int,
           on_values: tuple[float, ...] = (1.0,)) -> Cycles:
    """Cycles from the material-input signal: each rising edge starts one.

    A phase cut by a data gap or by the window edge has no trustworthy length and is
    dropped (its neighbour's cycle length becomes nan), never guessed.
    """
    on = material_input_on(material_input, on_values)
    iv = state_intervals(ts_ms, on, window, stale_ms)
    starts, lengths, cycle = [], [], []
    for k, i in enumerate(iv):
        if i.state != 1:
            continue
        # both neighbours known "off": the phase began and ended inside data, not at a gap or the window edge
        if 0 < k < len(iv) - 1 and iv[k - 1].state == 0 and iv[k + 1].state == 0:
            starts.append(i.start_ms)
            lengths.append(float(i.duration_ms))
            # next phase follows directly after one known "off" interval: a whole cycle without gaps
            whole = k + 2 < len(iv) and iv[k + 2].state == 1
            cycle.append(float(iv[k + 2].start_ms - i.start_ms) if whole else np.nan)
    return Cycles(np.array(starts, dtype=np.int64), np.array(lengths), np.array(cycle, dtype=float))

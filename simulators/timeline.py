"""One machine's whole life as a function of time: the generator behind both modes.

The timeline is drawn one local day at a time with numpy (each day from its own seeded
generator, so any day can be drawn alone, in any order, and always comes out the same).
A day is a sorted array of state segments plus the cycles placed in its production
windows. Everything a register shows is then a lookup at an instant:

- backfill evaluates ``values_at`` at the 1 s instants where something changes;
- the live Modbus server evaluates ``values_at(now)`` on every request.

So "same seed, same history" and "backfill and live agree" hold by construction.

How a day is drawn: cycles are episodes ``LOADING → PROCESSING → UNLOADING → [stop] →
IDLE``, with lognormal phase durations; the stop after a cycle is a fault (probability
``1 - exp(-processing / MTBF)``, lognormal repair with mean MTTR), else a changeover at
the end of a lot, else a micro-stop. Episodes are packed into the day's production
windows (shift minus breaks and cleaning): a cycle is only started if it can finish
before the window ends (the operator does not start a part before a break), a stop or
gap running past the window end is cut there, and the rest of the window is IDLE.
Material input happens every cycle, or every ``load_every`` parts (hopper, roll).

Registers as real PLCs have them: part counters are uint16 and wrap; they restart at 0
when the PLC restarts (``restarts_s``); the energy meter is a separate device and keeps
counting (uint32 Wh); analog values are documented on ``kinds.Analog``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from plant.states import MachineState
from simulators.calendar import CalendarSettings, day_plan
from simulators.kinds import Analog, Kind, MachineParameters

S = MachineState
_N_STATES = len(MachineState)
_MTTR_SHAPE = 0.6
_MICRO_STOP_MAX_S = 115.0
_UINT64 = np.uint64


@dataclass(frozen=True)
class MachineSpec:
    """Everything that determines one machine's timeline."""

    name: str
    kind: Kind
    before: MachineParameters
    after: MachineParameters
    calendar: CalendarSettings
    seed: int
    origin_s: float  # counters start here (PLC commissioned / history start)
    rollout_day: date | None = None  # first local day run with ``after``
    restarts_s: tuple[float, ...] = ()
    initial_good_count: int = 0
    initial_energy_wh: int = 0


@dataclass
class Day:
    """One drawn local day. Times are epoch seconds (float)."""

    index: int
    t0: float
    t1: float
    after_rollout: bool
    production_s: float  # scheduled production time (planned busy time)
    seg_start: np.ndarray  # float64, sorted, seg_start[0] == t0
    seg_state: np.ndarray  # uint8
    seg_cycle: np.ndarray  # int32, the cycle a segment belongs to, -1 for none
    seg_energy: np.ndarray  # Wh since t0 at each segment start
    seg_run: np.ndarray  # PROCESSING seconds since t0 at each segment start
    cyc_start: np.ndarray  # LOADING (or PROCESSING) begins
    cyc_load_s: np.ndarray  # material input duration of the cycle (0 when none)
    cyc_process_s: np.ndarray
    cyc_unload_s: np.ndarray
    cyc_end: np.ndarray  # part completed: the counter steps here
    cyc_good: np.ndarray  # bool
    cyc_stop_state: np.ndarray  # uint8 state of the stop after the cycle, 0 if none
    cyc_stop_s: np.ndarray  # its duration as it happened (cut at the window end)
    cyc_peak: dict[str, np.ndarray] = field(default_factory=dict)  # per-cycle analog values (float32)
    power_kw: np.ndarray = field(default_factory=lambda: np.zeros(_N_STATES))

    @property
    def good(self) -> int:
        return int(self.cyc_good.sum())

    @property
    def scrap(self) -> int:
        return int(self.cyc_good.size - self.cyc_good.sum())

    @property
    def energy_wh(self) -> float:
        return float(self.seg_energy[-1] + self.power_kw[self.seg_state[-1]] * (self.t1 - self.seg_start[-1]) / 3.6)

    @property
    def run_s(self) -> float:
        last = self.t1 - self.seg_start[-1] if self.seg_state[-1] == S.PROCESSING else 0.0
        return float(self.seg_run[-1] + last)

    def segment_at(self, ts: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.seg_start, ts, side="right") - 1


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    if median <= 0:
        return np.zeros(n)
    return median * np.exp(rng.normal(0.0, sigma, n))


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _UINT64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _UINT64(30))) * _UINT64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _UINT64(27))) * _UINT64(0x94D049BB133111EB)
        return z ^ (z >> _UINT64(31))


def hashed_normal(key: int, counter: np.ndarray) -> np.ndarray:
    """Standard normal values that depend only on (key, counter): noise for any instant, in any order."""
    c = np.asarray(counter, dtype=np.int64).astype(_UINT64) * _UINT64(2)
    k = _splitmix(np.array([key & 0xFFFFFFFFFFFFFFFF], dtype=_UINT64))[0]
    with np.errstate(over="ignore"):
        u1 = (_splitmix(c ^ k) >> _UINT64(11)).astype(np.float64) * 2.0**-53
        u2 = (_splitmix((c + _UINT64(1)) ^ k) >> _UINT64(11)).astype(np.float64) * 2.0**-53
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


class MachineTimeline:
    """The machine's timeline; days are drawn on demand and the last few kept."""

    def __init__(self, spec: MachineSpec, cache_days: int = 8) -> None:
        self.spec = spec
        self.offset_s = spec.calendar.utc_offset_hours * 3600.0
        self.origin_day = self.day_index(spec.origin_s)
        self._cache: dict[int, Day] = {}
        self._cache_days = cache_days
        # cumulative (good, scrap, energy Wh, run s) at the start of origin_day + i
        self._cum: list[tuple[int, int, float, float]] = [(0, 0, 0.0, 0.0)]
        self._walks: dict[str, np.ndarray] = {}
        self.restarts = np.array(sorted(spec.restarts_s), dtype=np.float64)
        self._restart_counts: dict[float, tuple[int, int]] = {}

    # -- days --------------------------------------------------------------------------
    def day_index(self, t: float) -> int:
        return int(math.floor((t + self.offset_s) / 86400.0))

    def day_start(self, index: int) -> float:
        return index * 86400.0 - self.offset_s

    def local_date(self, index: int) -> date:
        return date(1970, 1, 1) + timedelta(days=index)

    def day(self, index: int) -> Day:
        d = self._cache.get(index)
        if d is None:
            d = self._draw(index)
            if len(self._cache) >= self._cache_days:
                self._cache.pop(next(iter(self._cache)))
            self._cache[index] = d
        return d

    def cumulative_at_day(self, index: int) -> tuple[int, int, float, float]:
        """(good, scrap, energy Wh, processing s) from the origin to the start of day ``index``."""
        i = index - self.origin_day
        if i <= 0:
            return (0, 0, 0.0, 0.0)
        while len(self._cum) <= i:
            d = self.day(self.origin_day + len(self._cum) - 1)
            g, s, e, r = self._cum[-1]
            self._cum.append((g + d.good, s + d.scrap, e + d.energy_wh, r + d.run_s))
        return self._cum[i]

    def _params(self, index: int) -> tuple[MachineParameters, bool]:
        rd = self.spec.rollout_day
        after = rd is not None and self.local_date(index) >= rd
        return (self.spec.after if after else self.spec.before), after

    def _draw(self, index: int) -> Day:
        spec = self.spec
        p, after = self._params(index)
        t0, t1 = self.day_start(index), self.day_start(index + 1)
        plan = day_plan(spec.calendar, self.local_date(index))
        lo = max(t0, spec.origin_s)
        windows = [(max(t0 + a, lo), t0 + b) for a, b in plan.production if t0 + b > lo]
        planned = [(max(t0 + a, lo), t0 + b) for a, b in plan.planned if t0 + b > lo]
        rng = np.random.default_rng([spec.seed & 0x7FFFFFFF, index & 0x7FFFFFFF, 0x5F])
        production_s = sum(b - a for a, b in windows)

        per_part = p.load_s / max(p.load_every, 1) + p.process_s + p.unload_s + p.gap_s
        n = int(production_s / max(per_part * 0.5, 0.05)) + 32
        ep = _draw_episodes(rng, p, spec.kind, n)
        placed_idx: list[np.ndarray] = []
        placed_start: list[np.ndarray] = []
        placed_wend: list[np.ndarray] = []
        j = 0
        for w0, w1 in windows:
            while True:
                length = ep["E"][j:]
                off = np.cumsum(length) - length
                cyc_end = off + ep["C"][j:]
                k = int(np.searchsorted(cyc_end, w1 - w0, side="right"))
                if k < len(length):
                    break
                more = _draw_episodes(rng, p, spec.kind, n)  # ran out: draw more, deterministically
                ep = {key: np.concatenate([ep[key], more[key]]) for key in ep}
            placed_idx.append(np.arange(j, j + k))
            placed_start.append(w0 + off[:k])
            placed_wend.append(np.full(k, w1))
            j += k
        idx = np.concatenate(placed_idx) if placed_idx else np.zeros(0, dtype=np.int64)
        start = np.concatenate(placed_start) if placed_start else np.zeros(0)
        wend = np.concatenate(placed_wend) if placed_wend else np.zeros(0)
        L, P, U = ep["L"][idx], ep["P"][idx], ep["U"][idx]
        Sd, stop_state = ep["S"][idx], ep["stop"][idx]
        t_proc = start + L
        t_unl = t_proc + P
        t_stop = t_unl + U
        t_gap = t_stop + Sd
        stop_cut = np.clip(np.minimum(t_gap, wend) - t_stop, 0.0, None)

        # segment boundaries: (time, priority, state, cycle); at equal times the highest priority wins
        ncyc = idx.size
        cyc = np.arange(ncyc, dtype=np.int32)
        times = [np.array([t0]), np.array([a for a, _ in planned]), np.array([b for _, b in planned]),
                 np.array([a for a, _ in windows]), np.array([b for _, b in windows])]
        prios = [np.array([0]), np.full(len(planned), 2), np.full(len(planned), 1),
                 np.full(len(windows), 3), np.full(len(windows), 1)]
        states = [np.array([S.NOT_SCHEDULED]), np.full(len(planned), S.PLANNED_STOP),
                  np.full(len(planned), S.NOT_SCHEDULED), np.full(len(windows), S.IDLE),
                  np.full(len(windows), S.NOT_SCHEDULED)]
        cycles = [np.array([-1]), np.full(len(planned), -1), np.full(len(planned), -1),
                  np.full(len(windows), -1), np.full(len(windows), -1)]
        for phase, (t, st) in enumerate(((start, S.LOADING), (t_proc, S.PROCESSING), (t_unl, S.UNLOADING),
                                         (t_stop, None), (t_gap, S.IDLE))):
            keep = t < wend
            times.append(t[keep])
            prios.append(np.full(int(keep.sum()), 4 + phase))
            states.append(stop_state[keep] if st is None else np.full(int(keep.sum()), st))
            cycles.append(cyc[keep])
        # planned stops end where production resumes: a window start (prio 3) beats a planned end (1)
        t_all = np.concatenate(times).astype(np.float64)
        p_all = np.concatenate(prios)
        s_all = np.concatenate(states).astype(np.uint8)
        c_all = np.concatenate(cycles).astype(np.int32)
        order = np.lexsort((p_all, t_all))
        t_all, s_all, c_all = t_all[order], s_all[order], c_all[order]
        last_of_time = np.append(t_all[1:] != t_all[:-1], True)
        t_all, s_all, c_all = t_all[last_of_time], s_all[last_of_time], c_all[last_of_time]
        change = np.append(True, s_all[1:] != s_all[:-1])
        seg_start, seg_state, seg_cycle = t_all[change], s_all[change], c_all[change]

        power = np.full(_N_STATES, p.idle_kw)
        power[S.NOT_SCHEDULED] = 0.0
        for code, kw in p.power_kw.items():
            power[int(code)] = kw
        dur = np.diff(np.append(seg_start, t1))
        seg_energy = np.concatenate(([0.0], np.cumsum(power[seg_state] * dur / 3.6)[:-1]))
        seg_run = np.concatenate(([0.0], np.cumsum(np.where(seg_state == S.PROCESSING, dur, 0.0))[:-1]))
        stop_state_out = np.where(stop_cut > 0, stop_state, 0).astype(np.uint8)
        return Day(
            index=index, t0=t0, t1=t1, after_rollout=after, production_s=production_s,
            seg_start=seg_start, seg_state=seg_state, seg_cycle=seg_cycle,
            seg_energy=seg_energy, seg_run=seg_run,
            cyc_start=start, cyc_load_s=L, cyc_process_s=P, cyc_unload_s=U, cyc_end=t_stop,
            cyc_good=ep["good"][idx], cyc_stop_state=stop_state_out, cyc_stop_s=stop_cut,
            cyc_peak={name: v[idx] for name, v in ep["peak"].items()}, power_kw=power,
        )

    # -- lookups -----------------------------------------------------------------------
    def _by_day(self, ts: np.ndarray) -> list[tuple[int, np.ndarray]]:
        days = np.floor((ts + self.offset_s) / 86400.0).astype(np.int64)
        if days.size and days.min() == days.max():
            return [(int(days[0]), np.arange(ts.size))]
        return [(int(d), np.nonzero(days == d)[0]) for d in np.unique(days)]

    def counts_abs(self, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Good and scrap parts completed from the origin up to each instant (inclusive)."""
        good = np.zeros(ts.size, dtype=np.int64)
        scrap = np.zeros(ts.size, dtype=np.int64)
        for d, sel in self._by_day(ts):
            day = self.day(d)
            g0, s0, _, _ = self.cumulative_at_day(d)
            done = np.searchsorted(day.cyc_end, ts[sel], side="right")
            good_done = np.concatenate(([0], np.cumsum(day.cyc_good)))[done]
            good[sel] = g0 + good_done
            scrap[sel] = s0 + done - good_done
        return good, scrap

    def _run_cum(self, ts: np.ndarray) -> np.ndarray:
        out = np.zeros(ts.size)
        for d, sel in self._by_day(ts):
            day = self.day(d)
            _, _, _, r0 = self.cumulative_at_day(d)
            i = day.segment_at(ts[sel])
            running = day.seg_state[i] == S.PROCESSING
            out[sel] = r0 + day.seg_run[i] + np.where(running, ts[sel] - day.seg_start[i], 0.0)
        return out

    def _walk(self, a: Analog, key: int, knots: np.ndarray) -> np.ndarray:
        """A mean-reverting AR(1) walk on 6-hour knots from the origin, linearly interpolated."""
        need = int(knots.max()) + 2 if knots.size else 2
        walk = self._walks.get(a.name)
        if walk is None or walk.size < need:
            eps = hashed_normal(key ^ 0xA5A5, np.arange(need)) * a.walk_sd
            walk = np.empty(need)
            acc = 0.0
            for i in range(need):
                acc = 0.9 * acc + eps[i]
                walk[i] = acc
            self._walks[a.name] = walk
        return walk

    def values_at(self, ts: np.ndarray | float) -> dict[str, np.ndarray]:
        """Every signal of the machine at each instant (epoch s): what its registers hold."""
        ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
        spec = self.spec
        state = np.empty(ts.size, dtype=np.uint8)
        energy = np.empty(ts.size, dtype=np.float64)
        peaks = {a.name: np.empty(ts.size, dtype=np.float32) for a in spec.kind.analogs if a.per_cycle}
        for d, sel in self._by_day(ts):
            day = self.day(d)
            t = ts[sel]
            i = day.segment_at(t)
            st = day.seg_state[i]
            state[sel] = st
            _, _, e0, _ = self.cumulative_at_day(d)
            energy[sel] = e0 + day.seg_energy[i] + day.power_kw[st] * (t - day.seg_start[i]) / 3.6
            processing = st == S.PROCESSING
            cyc = np.where(processing, day.seg_cycle[i], 0)
            for a in spec.kind.analogs:
                if a.per_cycle:
                    vals = day.cyc_peak[a.name]
                    peaks[a.name][sel] = np.where(processing & (vals.size > 0), vals[cyc] if vals.size else 0, a.rest)
        good, scrap = self.counts_abs(ts)
        good_reg, scrap_reg = good + spec.initial_good_count, scrap
        if self.restarts.size:
            k = np.searchsorted(self.restarts, ts, side="right") - 1
            restarted = k >= 0
            if restarted.any():
                base_g, base_s = self.counts_abs(self.restarts)
                good_reg = np.where(restarted, good - base_g[np.maximum(k, 0)], good_reg)
                scrap_reg = np.where(restarted, scrap - base_s[np.maximum(k, 0)], scrap_reg)
        out: dict[str, np.ndarray] = {
            "state": state,
            "good_count": (good_reg % 65536).astype(np.int64),
            "scrap_count": (scrap_reg % 65536).astype(np.int64),
            "material_input": state == S.LOADING,
            "energy_wh": ((np.floor(energy) + spec.initial_energy_wh) % 2**32).astype(np.int64),
        }
        seconds = np.floor(ts)
        for ch, a in enumerate(spec.kind.analogs):
            if a.per_cycle:
                out[a.name] = peaks[a.name]
                continue
            key = spec.seed * 1_000_003 + ch * 7919 + 17
            value = a.base + a.active * (state == S.PROCESSING)
            if a.thermal:
                w = a.thermal_window_s
                value = value + a.thermal * (self._run_cum(seconds) - self._run_cum(seconds - w)) / w
            if a.daily_swing:
                local_h = ((seconds + self.offset_s) % 86400.0) / 3600.0
                value = value + a.daily_swing * np.sin(2 * np.pi * (local_h - 9.0) / 24.0)
            if a.drift_per_day:
                value = value + a.drift_per_day * (seconds - spec.origin_s) / 86400.0
            if a.walk_sd:
                pos = np.clip((seconds - spec.origin_s) / 21600.0, 0.0, None)
                k0 = np.floor(pos).astype(np.int64)
                walk = self._walk(a, key, k0)
                frac = pos - k0
                value = value + walk[k0] * (1 - frac) + walk[k0 + 1] * frac
            if a.noise_sd:
                value = value + a.noise_sd * hashed_normal(key, seconds.astype(np.int64))
            out[a.name] = value.astype(np.float32)
        return out


def _draw_episodes(rng: np.random.Generator, p: MachineParameters, kind: Kind, n: int) -> dict:
    """n cycles with their phases, stops and outcomes, all drawn at once."""
    load = _lognormal(rng, p.load_s, p.sigma, n)
    if p.load_every > 1:
        phase = rng.integers(p.load_every)
        load = np.where((np.arange(n) + phase) % p.load_every == 0, load, 0.0)
    proc = _lognormal(rng, p.process_s, p.sigma, n)
    unload = _lognormal(rng, p.unload_s, p.sigma, n)
    gap = _lognormal(rng, p.gap_s, p.sigma, n)
    fault = rng.random(n) < -np.expm1(-proc / (p.mtbf_h * 3600.0))
    repair = _lognormal(rng, p.mttr_min * 60.0 / math.exp(_MTTR_SHAPE**2 / 2), _MTTR_SHAPE, n)
    micro = rng.random(n) < p.micro_stop_rate
    micro_s = np.minimum(_lognormal(rng, p.micro_stop_s, 0.5, n), _MICRO_STOP_MAX_S)
    if p.lot_size > 0:
        lot_phase = rng.integers(p.lot_size)
        changeover = (np.arange(n) + lot_phase) % p.lot_size == p.lot_size - 1
    else:
        changeover = np.zeros(n, dtype=bool)
    change_s = _lognormal(rng, p.changeover_min * 60.0, 0.25, n)
    stop = np.where(fault, S.FAULT, np.where(changeover, S.CHANGEOVER, np.where(micro, S.MICRO_STOP, 0)))
    stop_s = np.where(fault, repair, np.where(changeover, change_s, np.where(micro, micro_s, 0.0)))
    good = rng.random(n) >= p.scrap_rate
    peak = {a.name: rng.normal(a.base, a.noise_sd, n).astype(np.float32) for a in kind.analogs if a.per_cycle}
    cycle = load + proc + unload
    return {"L": load, "P": proc, "U": unload, "G": gap, "S": stop_s, "stop": stop.astype(np.uint8),
            "C": cycle, "E": cycle + stop_s + gap, "good": good, "peak": peak}

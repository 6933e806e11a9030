"""A small seeded line generator with exact truth, for analytics tests and the benchmark.

Not the plant simulator (simulators/ is that); this writes what a report-on-change gateway
would store for a simple press cycle, fast and with no dependencies, so the numeric core can
be checked against known totals. Weekdays 08:00-17:00 local are scheduled; other time is
NOT_SCHEDULED. Each cycle: LOADING (material-input coil on), PROCESSING, UNLOADING, then
the good or scrap counter steps; a FAULT follows some cycles (``plant.states`` codes).
Every tag is written when it changes and on every whole minute (heartbeat).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from plant import MachineRef
from plant.states import MachineState as S


@dataclass
class LineSpec:
    load_s: float = 8.0
    process_s: float = 12.0
    unload_s: float = 3.0
    sigma: float = 0.2
    scrap_rate: float = 0.03
    fault_rate: float = 0.01
    mttr_s: float = 600.0
    power_w: float = 5000.0
    timezone: str = "Asia/Seoul"
    shift: tuple[int, int] = (8, 17)  # local hours


@dataclass
class Truth:
    """Exact totals over whatever the generator produced, per machine and local day."""

    scheduled_s: dict[tuple[str, date], float] = field(default_factory=dict)
    good: dict[tuple[str, date], int] = field(default_factory=dict)
    scrap: dict[tuple[str, date], int] = field(default_factory=dict)
    input_s: dict[tuple[str, date], float] = field(default_factory=dict)

    def total(self, what: str, days: set[date] | None = None) -> float:
        d = getattr(self, what)
        return float(sum(v for (m, day), v in d.items() if days is None or day in days))


def machine_day(rng: np.random.Generator, spec: LineSpec, t0_s: int, t1_s: int, load_scale: float = 1.0):
    """Whole-second state changes of one shift [t0, t1): (change times, states, end of the last cycle)."""
    times, states = [], []
    t = float(t0_s)
    medians = np.array([spec.load_s * load_scale, spec.process_s, spec.unload_s])
    while True:
        d = np.maximum(np.round(medians * np.exp(rng.normal(0, spec.sigma, 3))), 1)
        if t + d.sum() > t1_s:
            break
        for st, dur in zip((S.LOADING, S.PROCESSING, S.UNLOADING), d):
            times.append(t)
            states.append(st)
            t += dur
        if rng.random() < spec.fault_rate:
            dur = max(1.0, round(rng.exponential(spec.mttr_s)))
            if t + dur > t1_s:
                break
            times.append(t)
            states.append(S.FAULT)
            t += dur
            times.append(t)
            states.append(S.IDLE)
    return np.array(times), np.array(states), t


def generate(machines: list[MachineRef], first: date, days: int, spec: LineSpec, seed: int = 1,
             load_scale_after: tuple[date, float] | None = None) -> tuple[dict[MachineRef, dict], Truth]:
    """Columns per machine (tag -> (ts_ms int64, values float64)) and the truth.

    ``load_scale_after=(day, factor)`` multiplies the loading time from that day on: a
    rollout with a known effect.
    """
    zone = ZoneInfo(spec.timezone)
    rng = np.random.default_rng(seed)
    truth = Truth()
    out: dict[MachineRef, dict] = {}
    start = int(datetime(first.year, first.month, first.day, tzinfo=zone).timestamp())
    end = start + days * 86400
    for m in machines:
        change_t, change_s = [np.array([start], dtype=float)], [np.array([S.NOT_SCHEDULED])]
        count_t, count_good, count_scrap = [], [], []
        good = scrap = 0
        for k in range(days):
            day = first + timedelta(days=k)
            if day.weekday() >= 5:
                continue
            a = int(datetime(day.year, day.month, day.day, spec.shift[0], tzinfo=zone).timestamp())
            b = int(datetime(day.year, day.month, day.day, spec.shift[1], tzinfo=zone).timestamp())
            scale = load_scale_after[1] if load_scale_after and day >= load_scale_after[0] else 1.0
            t, s, t_end = machine_day(rng, spec, a, b, scale)
            nxt = np.append(t[1:], t_end)
            change_t += [t, np.array([t_end, b], dtype=float)]
            change_s += [s, np.array([S.IDLE, S.NOT_SCHEDULED])]
            ends = nxt[s == S.UNLOADING]  # the counter steps when unloading ends
            is_scrap = rng.random(len(ends)) < spec.scrap_rate
            good_steps = np.cumsum(~is_scrap) + good
            scrap_steps = np.cumsum(is_scrap) + scrap
            good += int((~is_scrap).sum())
            scrap += int(is_scrap.sum())
            count_t.append(ends)
            count_good.append(good_steps)
            count_scrap.append(scrap_steps)
            truth.scheduled_s[(m.machine, day)] = float(b - a)
            truth.good[(m.machine, day)] = int((~is_scrap).sum())
            truth.scrap[(m.machine, day)] = int(is_scrap.sum())
            truth.input_s[(m.machine, day)] = float(np.sum((nxt - t)[s == S.LOADING]))
        t_all = np.concatenate(change_t)
        s_all = np.concatenate(change_s).astype(float)
        order = np.argsort(t_all, kind="stable")
        t_all, s_all = t_all[order], s_all[order]
        ct = np.concatenate(count_t) if count_t else np.zeros(0)
        cols = {
            "state": _on_change(t_all, s_all, start, end),
            "material_input": _on_change(t_all, (s_all == S.LOADING).astype(float), start, end),
            "good_count": _on_change(np.concatenate([[start], ct]), np.concatenate([[0], *count_good]) % 65536, start, end),
            "scrap_count": _on_change(np.concatenate([[start], ct]), np.concatenate([[0], *count_scrap]) % 65536, start, end),
        }
        minutes = np.arange(start, end, 60, dtype=float)
        running = _value_at(t_all, s_all, minutes)
        energy = np.cumsum(np.where((running >= S.LOADING) & (running <= S.UNLOADING), spec.power_w / 60.0, 50.0 / 60.0))
        cols["energy_wh"] = (minutes.astype(np.int64) * 1000, np.floor(energy) % 2**32)
        out[m] = cols
    return out, truth


def _value_at(t: np.ndarray, v: np.ndarray, at: np.ndarray) -> np.ndarray:
    i = np.searchsorted(t, at, side="right") - 1
    return np.where(i >= 0, v[np.maximum(i, 0)], np.nan)


def _on_change(t: np.ndarray, v: np.ndarray, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Samples at each change and on every whole minute, whole seconds, as a report-on-change gateway sends."""
    minutes = np.arange(start, end, 60, dtype=float)
    at = np.unique(np.concatenate([np.ceil(t), minutes]))
    at = at[(at >= start) & (at < end)]
    vals = _value_at(t, v, at)
    keep = np.ones(len(at), dtype=bool)
    keep[1:] = (vals[1:] != vals[:-1]) | np.isin(at[1:], minutes)
    return at[keep].astype(np.int64) * 1000, vals[keep]

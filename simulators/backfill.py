"""Backfill: days of history straight into a store, from the same timelines live mode serves.

What is written is what a gateway polling every second and reporting by exception
publishes (the gateway's report-on-change mode follows the same rules):

- instants are whole seconds (1 s resolution): a state shorter than a second between two
  scans is not seen, as a 1 s poll would not see it;
- a discrete tag (state, counters, coils, per-cycle values) is written when it differs
  from the previous scan;
- an analog process value is written when it moved by at least its deadband
  (``kinds.Analog.deadband``) since the previous scan;
- every tag is written on every whole minute (heartbeat: at least once per 60 s), so a
  reader never has to look back more than a minute for a tag's current value.

Each tag's value holds from its sample until the next one. The measurement, tags and
fields are the collector's (docs/wire-contract.md, "How it is stored").

The gateway's matching configuration is ``report: on_change`` with ``max_silence_s: 60``
and the deadbands of ``simulators.kinds``. Two simplifications keep this vectorised: an
analog deadband is measured between consecutive scans rather than from the last report
(slow drift shows at the next heartbeat), and heartbeats fall on whole minutes rather
than 60 s after the tag's last report. Both keep "every tag at least once per 60 s".
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulators.groundtruth import TruthRecorder, write_ground_truth
from simulators.scenario import Scenario, SimMachine
from simulators.timeline import MachineTimeline

log = logging.getLogger(__name__)

HEARTBEAT_S = 60
ENERGY_DEADBAND_WH = 100.0

Columns = dict[str, tuple[np.ndarray, np.ndarray]]  # tag -> (ts_ms int64, values float64)


@dataclass
class Sampler:
    """Report-on-change sampling of one machine, day after day (keeps the last scan)."""

    machine: SimMachine
    timeline: MachineTimeline
    _last: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kind = self.machine.spec.kind
        analog = {a.name: a for a in kind.analogs}
        self._deadband: dict[str, float | None] = {}
        for tag in self.machine.tags:
            a = analog.get(tag.name)
            if tag.name == "energy_wh":
                self._deadband[tag.name] = ENERGY_DEADBAND_WH
            elif a is not None and not a.per_cycle:
                self._deadband[tag.name] = a.deadband
            else:
                self._deadband[tag.name] = None  # discrete: any change

    def instants(self, t_from: float, t_to: float) -> np.ndarray:
        """Whole seconds in [t_from, t_to) where a tag may change, plus every whole minute."""
        lo, hi = math.ceil(t_from), math.ceil(t_to)
        parts = [np.arange(math.ceil(lo / HEARTBEAT_S) * HEARTBEAT_S, hi, HEARTBEAT_S, dtype=np.float64)]
        tl = self.timeline
        for d in range(tl.day_index(lo), tl.day_index(hi - 1) + 1):
            day = tl.day(d)
            parts.append(np.ceil(day.seg_start))
            parts.append(np.ceil(day.cyc_end))
        if tl.restarts.size:
            parts.append(np.ceil(tl.restarts))
        parts.append(np.array([float(lo)]))
        t = np.unique(np.concatenate(parts))
        return t[(t >= lo) & (t < hi)]

    def sample(self, t_from: float, t_to: float) -> tuple[Columns, int]:
        """The samples of [t_from, t_to) and the number of instants scanned."""
        t = self.instants(t_from, t_to)
        if t.size == 0:
            return {}, 0
        values = self.timeline.values_at(t)
        ts_ms = t.astype(np.int64) * 1000
        minute = (t.astype(np.int64) % HEARTBEAT_S) == 0
        out: Columns = {}
        for tag in self.machine.tags:
            v = values[tag.name].astype(np.float64)
            prev = np.empty_like(v)
            prev[1:] = v[:-1]
            prev[0] = self._last.get(tag.name, np.nan)
            db = self._deadband[tag.name]
            if db is None or db == 0:
                changed = v != prev
            else:
                changed = ~(np.abs(v - prev) < db)  # NaN (no previous scan) counts as changed
            emit = changed | minute
            self._last[tag.name] = float(v[-1])
            out[tag.name] = (ts_ms[emit], v[emit])
        return out, int(t.size)


@dataclass
class BackfillReport:
    machines: int
    days: float
    instants: int
    values: int
    seconds: float
    truth_path: Path | None = None

    @property
    def values_per_s(self) -> float:
        return self.values / self.seconds if self.seconds else 0.0


def day_ranges(tl: MachineTimeline, t_from: float, t_to: float) -> Iterator[tuple[int, float, float]]:
    d = tl.day_index(t_from)
    while True:
        lo, hi = max(tl.day_start(d), t_from), min(tl.day_start(d + 1), t_to)
        if lo >= t_to:
            return
        yield d, lo, hi
        d += 1


def backfill(
    scenario: Scenario,
    t_from: float,
    t_to: float,
    write: Callable[[SimMachine, Columns], None] | None,
    truth_dir: Path | None = None,
    machines: list[SimMachine] | None = None,
    progress: Callable[[str], None] | None = None,
    flush_values: int = 4_000_000,
    chunk_rows: int = 200_000,
) -> BackfillReport:
    """Generate [t_from, t_to) for every machine and hand its columns to ``write``.

    Columns are buffered (up to ``flush_values`` values) and written tag by tag in chunks
    of ``chunk_rows``: a store keyed by (series, time) then appends instead of inserting
    in eight places at once (SQLite fills its pages instead of splitting them in half),
    and no single transaction holds the store for long (the collector may be writing too).
    ``write=None`` generates and samples only (the benchmark's baseline).
    """
    machines = machines if machines is not None else scenario.machines()
    started = time.perf_counter()
    recorders = []
    instants = values = 0
    for m in machines:
        tl = MachineTimeline(m.spec)
        sampler = Sampler(m, tl)
        rec = TruthRecorder(m, tl, t_from, t_to) if truth_dir is not None else None
        pending: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        pending_n = 0
        for d, lo, hi in day_ranges(tl, t_from, t_to):
            cols, n = sampler.sample(lo, hi)
            instants += n
            count = sum(len(ts) for ts, _ in cols.values())
            values += count
            if write is not None:
                for tag, col in cols.items():
                    pending.setdefault(tag, []).append(col)
                pending_n += count
                if pending_n >= flush_values:
                    _flush(write, m, pending, chunk_rows)
                    pending_n = 0
            if rec is not None:
                rec.add_day(tl.day(d))
        if write is not None:
            _flush(write, m, pending, chunk_rows)
        if rec is not None:
            recorders.append(rec)
        if progress is not None:
            progress(f"backfill_machine_done machine={m.ref.line}/{m.ref.machine} values={values} "
                     f"elapsed_s={time.perf_counter() - started:.1f}")
    truth_path = write_ground_truth(truth_dir, scenario, recorders, t_from, t_to) if truth_dir is not None else None
    return BackfillReport(len(machines), (t_to - t_from) / 86400.0, instants, values,
                          time.perf_counter() - started, truth_path)


def _flush(write: Callable[[SimMachine, Columns], None], m: SimMachine,
           pending: dict[str, list[tuple[np.ndarray, np.ndarray]]], chunk_rows: int) -> None:
    for tag, parts in pending.items():
        ts = np.concatenate([p[0] for p in parts])
        vals = np.concatenate([p[1] for p in parts])
        for i in range(0, ts.size, chunk_rows):
            write(m, {tag: (ts[i : i + chunk_rows], vals[i : i + chunk_rows])})
    pending.clear()


def store_writer(store) -> Callable[[SimMachine, Columns], None]:
    """Write through the store's bulk path (``write_columns``)."""

    def write(m: SimMachine, cols: Columns) -> None:
        store.write_columns(m.ref, cols)

    return write


def truth_only(scenario: Scenario, t_from: float, t_to: float, out_dir: Path) -> Path:
    """The ground truth of a range, without sampling or writing anything."""
    recorders = []
    for m in scenario.machines():
        tl = MachineTimeline(m.spec)
        rec = TruthRecorder(m, tl, t_from, t_to)
        for d, _, _ in day_ranges(tl, t_from, t_to):
            rec.add_day(tl.day(d))
        recorders.append(rec)
    return write_ground_truth(out_dir, scenario, recorders, t_from, t_to)


def _instant(text: str, scenario: Scenario, now: float) -> float:
    from datetime import date as _date
    from datetime import datetime as _datetime

    if text == "now":
        return now
    try:
        return scenario.local_midnight(_date.fromisoformat(text))
    except ValueError:
        pass
    try:
        t = _datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (2026-03-01), an ISO instant with zone, or 'now'") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=scenario.tz)
    return t.timestamp()


def plan_range(scenario: Scenario, start: str | None, end: str | None, days: float | None,
               now: float | None = None) -> tuple[float, float]:
    """[from, to) in epoch seconds from the command-line options; refuses what cannot be right."""
    now = time.time() if now is None else now
    t_end = _instant(end, scenario, now) if end else None
    if start:
        t_from = _instant(start, scenario, now)
    elif t_end is not None and days:
        t_from = t_end - days * 86400.0
    else:
        t_from = scenario.origin_s
    if t_end is None:
        t_end = t_from + (days if days else scenario.days) * 86400.0
    elif days and start:
        t_end = min(t_end, t_from + days * 86400.0)
    if t_from < scenario.origin_s - 1e-6:
        raise ValueError(
            f"the range starts before the scenario's start {scenario.start} (counters start there): "
            "move 'start' in the scenario earlier, or backfill fewer days"
        )
    if t_end <= t_from:
        raise ValueError("the range is empty: --end must be after the start")
    return t_from, t_end

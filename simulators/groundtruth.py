"""Ground truth of a run: what really happened, for analytics tests to compare against.

A run (backfill, live, or ``smartfactory simulate truth``) writes a directory with:

``ground_truth.json``
    ``schema``: 1; ``scenario``: tenant, site, seed, start, rollout date, the configured
    changes (percent) and commissioning days; ``range_s``: [from, to) in epoch seconds;
    ``state_codes``: code → name (``plant.states.MachineState``); ``machines``: one
    entry per machine with ``tenant site line machine kind``, ``files`` (its npz),
    ``initial_good_count``, ``restarts_s``, ``good_before``/``scrap_before`` (parts
    completed from the scenario start up to ``range_s[0]``, before any restart logic),
    ``restart_counts`` ([restart_s, good, scrap] completed from the start up to each PLC
    restart: the good_count register at t is ``(good(t) - good at the last restart ≤ t)``,
    or ``(initial_good_count + good(t))`` before any restart, modulo 65536), and
    ``phases``: for ``before`` and ``after`` the rollout (only the days inside the range):
    ``days``, ``planned_production_h`` (shift time minus breaks and cleaning),
    ``cycles``, ``good``, ``scrap``, ``material_input_mean_s`` (mean over cycles with a
    material input), ``material_input_s_per_part`` (total input time / cycles),
    ``cycle_time_mean_s`` (loading + processing + unloading), ``faults``, ``state_hours``
    (state name → hours), ``production_efficiency`` (good parts per planned production
    hour), ``scrap_rate_pct``; ``expected``: the configured parameters before/after and
    ``realised_change_pct`` (after vs before, for efficiency, material input time, scrap
    rate, cycle time). ``lines``: the same phase figures summed per line.

``<line>__<machine>.npz`` (numpy, times are float64 epoch seconds, exact)
    ``state_start_s``, ``state_code``: state intervals; each lasts until the next start,
    the last until ``range_s[1]``. ``cycle_start_s``, ``cycle_end_s`` (the part counter
    steps at ``cycle_end_s``), ``material_input_s``, ``processing_s``, ``unloading_s``,
    ``good`` (bool), ``stop_code``, ``stop_s`` (the stop after the cycle, 0 if none),
    ``after_rollout`` (bool). Cycles are those that end inside the range.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from plant.states import MachineState
from simulators.scenario import Scenario, SimMachine
from simulators.timeline import Day, MachineTimeline

SCHEMA_VERSION = 1


class TruthRecorder:
    """Collects the days of one machine as a run goes through them."""

    def __init__(self, machine: SimMachine, timeline: MachineTimeline, t_from: float, t_to: float) -> None:
        self.machine = machine
        self.timeline = timeline
        self.t_from, self.t_to = t_from, t_to
        self._states: list[tuple[np.ndarray, np.ndarray]] = []
        self._cycles: list[dict[str, np.ndarray]] = []
        self._phases: dict[str, dict] = {}
        good, scrap = timeline.counts_abs(np.array([t_from]))
        self.good_before, self.scrap_before = int(good[0]), int(scrap[0])

    def restart_counts(self) -> list[list[float]]:
        """[restart_s, good, scrap] with the parts completed from the origin up to each restart."""
        r = self.timeline.restarts
        if not r.size:
            return []
        good, scrap = self.timeline.counts_abs(r)
        return [[float(t), int(g), int(s)] for t, g, s in zip(r, good, scrap)]

    def add_day(self, day: Day) -> None:
        lo, hi = max(day.t0, self.t_from), min(day.t1, self.t_to)
        if hi <= lo:
            return
        i0 = max(int(day.segment_at(np.array([lo]))[0]), 0)
        starts = day.seg_start[i0:].copy()
        states = day.seg_state[i0:]
        keep = starts < hi
        starts, states = starts[keep], states[keep]
        starts[0] = lo
        self._states.append((starts, states))
        sel = (day.cyc_end > lo) & (day.cyc_end <= hi)
        c = {
            "cycle_start_s": day.cyc_start[sel], "cycle_end_s": day.cyc_end[sel],
            "material_input_s": day.cyc_load_s[sel], "processing_s": day.cyc_process_s[sel],
            "unloading_s": day.cyc_unload_s[sel], "good": day.cyc_good[sel],
            "stop_code": day.cyc_stop_state[sel], "stop_s": day.cyc_stop_s[sel],
            "after_rollout": np.full(int(sel.sum()), day.after_rollout),
        }
        self._cycles.append(c)
        # state time inside [lo, hi)
        ends = np.append(starts[1:], hi)
        hours = np.bincount(states, weights=ends - starts, minlength=len(MachineState)) / 3600.0
        whole_day = lo == day.t0 and hi == day.t1
        ph = self._phases.setdefault("after" if day.after_rollout else "before", {
            "days": 0.0, "planned_production_s": 0.0, "cycles": 0, "good": 0, "scrap": 0,
            "material_input_total_s": 0.0, "material_inputs": 0, "cycle_time_total_s": 0.0, "faults": 0,
            "state_hours": np.zeros(len(MachineState)),
        })
        ph["days"] += (hi - lo) / 86400.0
        # production windows are only known per whole day; partial days count their share
        ph["planned_production_s"] += day.production_s if whole_day else float(
            hours[[s for s in range(len(MachineState)) if s not in (MachineState.PLANNED_STOP,
                                                                     MachineState.NOT_SCHEDULED)]].sum() * 3600)
        n = int(sel.sum())
        ph["cycles"] += n
        ph["good"] += int(c["good"].sum())
        ph["scrap"] += n - int(c["good"].sum())
        ph["material_input_total_s"] += float(c["material_input_s"].sum())
        ph["material_inputs"] += int((c["material_input_s"] > 0).sum())
        ph["cycle_time_total_s"] += float((c["material_input_s"] + c["processing_s"] + c["unloading_s"]).sum())
        ph["faults"] += int((c["stop_code"] == MachineState.FAULT).sum())
        ph["state_hours"] += hours

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if self._states:
            out["state_start_s"] = np.concatenate([s for s, _ in self._states])
            out["state_code"] = np.concatenate([c for _, c in self._states])
            # adjacent days may continue the same state: keep intervals maximal
            keep = np.append(True, out["state_code"][1:] != out["state_code"][:-1])
            out["state_start_s"], out["state_code"] = out["state_start_s"][keep], out["state_code"][keep]
        else:
            out["state_start_s"], out["state_code"] = np.zeros(0), np.zeros(0, dtype=np.uint8)
        keys = ("cycle_start_s", "cycle_end_s", "material_input_s", "processing_s", "unloading_s", "good",
                "stop_code", "stop_s", "after_rollout")
        for k in keys:
            out[k] = np.concatenate([c[k] for c in self._cycles]) if self._cycles else np.zeros(0)
        return out

    def phases(self) -> dict[str, dict]:
        out = {}
        for name, ph in self._phases.items():
            planned_h = ph["planned_production_s"] / 3600.0
            cycles = ph["cycles"]
            out[name] = {
                "days": round(ph["days"], 6),
                "planned_production_h": planned_h,
                "cycles": cycles, "good": ph["good"], "scrap": ph["scrap"],
                "material_input_mean_s": (ph["material_input_total_s"] / ph["material_inputs"]
                                          if ph["material_inputs"] else None),
                "material_input_s_per_part": ph["material_input_total_s"] / cycles if cycles else None,
                "cycle_time_mean_s": ph["cycle_time_total_s"] / cycles if cycles else None,
                "faults": ph["faults"],
                "state_hours": {MachineState(i).name: float(h) for i, h in enumerate(ph["state_hours"])},
                "production_efficiency": ph["good"] / planned_h if planned_h else None,
                "scrap_rate_pct": 100.0 * ph["scrap"] / cycles if cycles else None,
                "_raw": ph,
            }
        return out


def _change(before: float | None, after: float | None) -> float | None:
    if not before or after is None:
        return None
    return (after - before) / before * 100.0


def _realised(phases: dict[str, dict]) -> dict[str, float | None]:
    b, a = phases.get("before"), phases.get("after")
    if not b or not a:
        return {}
    return {k: _change(b[k], a[k]) for k in ("production_efficiency", "material_input_mean_s",
                                             "material_input_s_per_part", "scrap_rate_pct", "cycle_time_mean_s")}


def _sum_phases(items: list[dict[str, dict]]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for phases in items:
        for name, ph in phases.items():
            acc = out.setdefault(name, {"planned_production_h": 0.0, "cycles": 0, "good": 0, "scrap": 0,
                                        "material_input_total_s": 0.0, "material_inputs": 0})
            acc["planned_production_h"] += ph["planned_production_h"]
            for k in ("cycles", "good", "scrap"):
                acc[k] += ph[k]
            acc["material_input_total_s"] += ph["_raw"]["material_input_total_s"]
            acc["material_inputs"] += ph["_raw"]["material_inputs"]
    for acc in out.values():
        hours = acc["planned_production_h"]
        acc["production_efficiency"] = acc["good"] / hours if hours else None
        acc["material_input_mean_s"] = (acc["material_input_total_s"] / acc["material_inputs"]
                                        if acc["material_inputs"] else None)
        acc["material_input_s_per_part"] = acc["material_input_total_s"] / acc["cycles"] if acc["cycles"] else None
        acc["scrap_rate_pct"] = 100.0 * acc["scrap"] / acc["cycles"] if acc["cycles"] else None
        acc["cycle_time_mean_s"] = None
    return out


def write_ground_truth(out_dir: Path, scenario: Scenario, recorders: list[TruthRecorder],
                       t_from: float, t_to: float) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    machines = []
    per_line: dict[str, list[dict]] = {}
    for rec in recorders:
        m = rec.machine
        fname = f"{m.ref.line}__{m.ref.machine}.npz"
        np.savez_compressed(out_dir / fname, **rec.arrays())
        phases = rec.phases()
        per_line.setdefault(m.ref.line, []).append(phases)
        spec = m.spec
        machines.append({
            "tenant": m.ref.tenant, "site": m.ref.site, "line": m.ref.line, "machine": m.ref.machine,
            "kind": spec.kind.name, "file": fname, "initial_good_count": spec.initial_good_count,
            "restarts_s": list(spec.restarts_s), "good_before": rec.good_before, "scrap_before": rec.scrap_before,
            "restart_counts": rec.restart_counts(),
            "phases": {k: {kk: vv for kk, vv in v.items() if kk != "_raw"} for k, v in phases.items()},
            "expected": {
                "parameters_before": _params(asdict(spec.before)),
                "parameters_after": _params(asdict(spec.after)),
                "realised_change_pct": _realised(phases),
            },
        })
    lines = {}
    for line, items in per_line.items():
        summed = _sum_phases(items)
        lines[line] = {"phases": summed, "realised_change_pct": _realised(summed)}
    ro = scenario.rollout
    doc = {
        "schema": SCHEMA_VERSION,
        "scenario": {
            "tenant": scenario.tenant, "site": scenario.site, "description": scenario.description,
            "seed": scenario.seed, "start": scenario.start.isoformat(),
            "rollout": None if ro is None else {"date": ro.date.isoformat(), "changes_pct": ro.changes.nonzero(),
                                                "commissioning_days": ro.commissioning_days},
            "utc_offset_hours": scenario.calendar.utc_offset_hours,
        },
        "range_s": [t_from, t_to],
        "state_codes": {int(s): s.name for s in MachineState},
        "machines": machines,
        "lines": lines,
    }
    path = out_dir / "ground_truth.json"
    path.write_text(json.dumps(doc, indent=1, default=_json_default))
    return path


def _params(d: dict) -> dict:
    d = dict(d)
    d["power_kw"] = {MachineState(int(k)).name: v for k, v in d["power_kw"].items()}
    return d


def _json_default(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def load_truth_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}

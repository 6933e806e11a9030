"""The walking skeleton's press: a seeded state machine stepped phase by phase.

Superseded for serving and backfill by ``simulators.timeline`` (vectorised, with a
calendar, faults from MTBF/MTTR, scenarios); kept because analytics tests use it as a
small, exact signal source.

The state at any instant is a function of (seed, start time, instant), computed by
advancing through drawn phases, so a live server can ask for "now" on every Modbus
request and a test can recompute what any register held at any time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from plant.states import MachineState
from simulators.kinds import PRESS_TAGS

# The state codes and the skeleton's press map live in simulators.kinds (one place).
__all__ = ["MachineState", "PRESS_TAGS", "PressModel", "PressParameters", "PressSnapshot"]


@dataclass(frozen=True)
class PressParameters:
    """Median phase durations in seconds and per-cycle probabilities."""

    idle_s: float = 1.5
    loading_s: float = 6.0
    processing_s: float = 4.0
    unloading_s: float = 2.0
    sigma: float = 0.25  # lognormal shape of every phase duration
    scrap_rate: float = 0.03
    fault_rate: float = 0.02  # chance a cycle ends in a fault
    mttr_s: float = 45.0
    planned_stop_rate: float = 0.005
    planned_stop_s: float = 120.0
    force_kn: float = 800.0
    force_sd_kn: float = 12.0


@dataclass
class PressSnapshot:
    state: MachineState
    good_count: int  # uint16, wraps at 65535
    scrap_count: int
    press_force: float  # kN, float32-exact
    material_input: bool

    def values(self) -> dict[str, bool | int | float]:
        return {
            "state": int(self.state),
            "good_count": self.good_count,
            "scrap_count": self.scrap_count,
            "press_force": self.press_force,
            "material_input": self.material_input,
        }


@dataclass
class PressModel:
    seed: int
    start_s: float
    params: PressParameters = field(default_factory=PressParameters)
    initial_good_count: int = 0

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._phase = MachineState.IDLE
        self._phase_end = self.start_s + self._duration(self.params.idle_s)
        self._good = self.initial_good_count % 65536
        self._scrap = 0
        self._force = 0.0
        self._cycle_scrap = False

    def _duration(self, median_s: float) -> float:
        return float(median_s * np.exp(self._rng.normal(0.0, self.params.sigma)))

    def at(self, t_s: float) -> PressSnapshot:
        """The machine at time t (seconds since the epoch); t must not go backwards."""
        while t_s >= self._phase_end:
            self._next_phase()
        return PressSnapshot(
            state=self._phase,
            good_count=self._good,
            scrap_count=self._scrap,
            press_force=self._force,
            material_input=self._phase is MachineState.LOADING,
        )

    def _next_phase(self) -> None:
        p = self.params
        start = self._phase_end
        if self._phase is MachineState.IDLE:
            self._enter(MachineState.LOADING, p.loading_s, start)
        elif self._phase is MachineState.LOADING:
            # float32-representable, so the register round trip is exact
            self._force = float(np.float32(self._rng.normal(p.force_kn, p.force_sd_kn)))
            self._cycle_scrap = bool(self._rng.random() < p.scrap_rate)
            self._enter(MachineState.PROCESSING, p.processing_s, start)
        elif self._phase is MachineState.PROCESSING:
            self._force = 0.0
            self._enter(MachineState.UNLOADING, p.unloading_s, start)
        elif self._phase is MachineState.UNLOADING:
            if self._cycle_scrap:
                self._scrap = (self._scrap + 1) % 65536
            else:
                self._good = (self._good + 1) % 65536
            draw = self._rng.random()
            if draw < p.fault_rate:
                self._phase, self._phase_end = MachineState.FAULT, start + float(self._rng.exponential(p.mttr_s))
            elif draw < p.fault_rate + p.planned_stop_rate:
                self._enter(MachineState.PLANNED_STOP, p.planned_stop_s, start)
            else:
                self._enter(MachineState.IDLE, p.idle_s, start)
        else:  # FAULT or PLANNED_STOP ends in idle
            self._enter(MachineState.IDLE, p.idle_s, start)

    def _enter(self, phase: MachineState, median_s: float, start: float) -> None:
        self._phase = phase
        self._phase_end = start + self._duration(median_s)

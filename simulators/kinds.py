"""The machine kinds: parameter sets over one state-machine core.

Every simulated PLC serves the state codes of ``plant.states.MachineState`` in its ``state``
holding register; ground-truth files use the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from plant.states import MachineState
from registermap import ByteOrder, DataType, Table, Tag


#: The walking skeleton's press map. Every press serves these at the same addresses, so
#: configs written for it (deploy/, gateway tests) keep working; new tags come after them.
PRESS_TAGS: tuple[Tag, ...] = (
    Tag(name="state", table=Table.holding_register, address=0, type="uint16"),
    Tag(name="good_count", table=Table.holding_register, address=1, type="uint16"),
    Tag(name="scrap_count", table=Table.holding_register, address=2, type="uint16"),
    Tag(name="press_force", table=Table.holding_register, address=3, type="float32", order="ABCD", unit="kN"),
    Tag(name="material_input", table=Table.coil, address=0, type="bool"),
)


@dataclass(frozen=True)
class Analog:
    """An analog signal of a machine.

    ``per_cycle``: one value drawn per cycle (a peak force, a fill weight), shown while the
    machine is PROCESSING and ``rest`` otherwise. Otherwise a process value:
    ``base + active·[PROCESSING] + thermal·(share of the last thermal_window_s spent
    PROCESSING) + drift + noise``, where drift is a daily swing, a slow linear drift and a
    slow random walk, and noise is Gaussian, drawn per second.
    """

    name: str
    unit: str
    base: float
    noise_sd: float
    per_cycle: bool = False
    active: float = 0.0
    rest: float = 0.0
    thermal: float = 0.0
    thermal_window_s: float = 1200.0
    daily_swing: float = 0.0
    drift_per_day: float = 0.0
    walk_sd: float = 0.0  # per 6-hour knot
    deadband: float = 0.0  # backfill reports a step of at least this between scans


@dataclass(frozen=True)
class MachineParameters:
    """One machine's behaviour. Durations are lognormal medians in seconds."""

    load_s: float  # material input per cycle, or per batch when load_every > 1
    process_s: float
    unload_s: float
    gap_s: float  # IDLE between cycles (operator handling)
    sigma: float = 0.2  # lognormal shape of the cycle phases
    load_every: int = 1  # parts per material input (hopper refill, roll change)
    scrap_rate: float = 0.02
    mtbf_h: float = 8.0  # mean PROCESSING hours between faults
    mttr_min: float = 12.0  # mean repair time (lognormal, shape 0.6)
    micro_stop_rate: float = 0.01  # chance per cycle
    micro_stop_s: float = 40.0  # median, always cut below 2 min
    lot_size: int = 0  # parts per lot; a changeover follows each lot (0: none)
    changeover_min: float = 20.0
    power_kw: dict[int, float] = field(default_factory=dict)  # state code -> kW (else idle_kw)
    idle_kw: float = 1.0


@dataclass(frozen=True)
class Kind:
    name: str
    description: str
    params: MachineParameters
    analogs: tuple[Analog, ...]
    tags: tuple[Tag, ...]  # the default register map

    def signal_names(self) -> tuple[str, ...]:
        return ("state", "good_count", "scrap_count", "material_input", "energy_wh", *(a.name for a in self.analogs))


def _map(first_float: str, floats: tuple[str, ...], units: dict[str, str]) -> tuple[Tag, ...]:
    """The shared layout: HR0 state, HR1-2 counters, HR3-4 first float, HR5-6 energy, HR7.. floats."""
    tags = [
        Tag(name="state", table=Table.holding_register, address=0, type=DataType.uint16),
        Tag(name="good_count", table=Table.holding_register, address=1, type=DataType.uint16),
        Tag(name="scrap_count", table=Table.holding_register, address=2, type=DataType.uint16),
        Tag(name=first_float, table=Table.holding_register, address=3, type=DataType.float32,
            order=ByteOrder.ABCD, unit=units[first_float]),
        Tag(name="energy_wh", table=Table.holding_register, address=5, type=DataType.uint32, unit="Wh"),
    ]
    for i, name in enumerate(floats):
        tags.append(Tag(name=name, table=Table.holding_register, address=7 + 2 * i, type=DataType.float32,
                        order=ByteOrder.ABCD, unit=units[name]))
    tags.append(Tag(name="material_input", table=Table.coil, address=0, type=DataType.bool))
    return tuple(tags)


def _kind(name: str, description: str, params: MachineParameters, analogs: tuple[Analog, ...]) -> Kind:
    units = {a.name: a.unit for a in analogs}
    return Kind(name, description, params, analogs, _map(analogs[0].name, tuple(a.name for a in analogs[1:]), units))


S = MachineState
KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        _kind(
            "press",
            "mechanical/hydraulic press, a blank loaded by hand each stroke",
            MachineParameters(load_s=4.0, process_s=18.0, unload_s=3.0, gap_s=4.0, scrap_rate=0.03, mtbf_h=6.0,
                              mttr_min=10.0, micro_stop_rate=0.02, lot_size=800, changeover_min=25.0,
                              power_kw={S.PROCESSING: 22.0, S.LOADING: 4.0, S.UNLOADING: 4.0}, idle_kw=3.0),
            (
                Analog("press_force", "kN", base=800.0, noise_sd=12.0, per_cycle=True),
                Analog("oil_temp", "degC", base=38.0, noise_sd=0.08, thermal=14.0, daily_swing=2.0,
                       drift_per_day=0.01, walk_sd=0.3, deadband=0.5),
                Analog("hydraulic_pressure", "bar", base=20.0, noise_sd=0.6, active=160.0, drift_per_day=0.0,
                       walk_sd=0.5, deadband=5.0),
            ),
        ),
        _kind(
            "cnc",
            "CNC machining centre: workpiece clamped by hand, minutes of cutting",
            MachineParameters(load_s=45.0, process_s=420.0, unload_s=30.0, gap_s=20.0, sigma=0.12, scrap_rate=0.01,
                              mtbf_h=30.0, mttr_min=35.0, micro_stop_rate=0.05, micro_stop_s=50.0, lot_size=60,
                              changeover_min=45.0, power_kw={S.PROCESSING: 15.0}, idle_kw=2.5),
            (
                Analog("spindle_load", "%", base=3.0, noise_sd=1.5, active=55.0, walk_sd=1.0, deadband=5.0),
                Analog("coolant_temp", "degC", base=22.0, noise_sd=0.05, thermal=6.0, thermal_window_s=3600.0,
                       daily_swing=1.5, drift_per_day=0.005, walk_sd=0.2, deadband=0.5),
            ),
        ),
        _kind(
            "injection",
            "injection moulding machine: resin loaded per batch into the hopper",
            MachineParameters(load_s=240.0, process_s=32.0, unload_s=4.0, gap_s=2.0, sigma=0.06, load_every=150,
                              scrap_rate=0.025, mtbf_h=12.0, mttr_min=20.0, micro_stop_rate=0.01, lot_size=3000,
                              changeover_min=60.0, power_kw={S.PROCESSING: 30.0}, idle_kw=8.0),
            (
                Analog("injection_pressure", "bar", base=5.0, noise_sd=8.0, per_cycle=False, active=1100.0,
                       walk_sd=3.0, deadband=50.0),
                Analog("barrel_temp", "degC", base=228.0, noise_sd=0.3, thermal=4.0, daily_swing=0.5,
                       drift_per_day=0.02, walk_sd=0.5, deadband=1.0),
                Analog("mould_temp", "degC", base=45.0, noise_sd=0.2, thermal=12.0, thermal_window_s=2400.0,
                       daily_swing=1.0, walk_sd=0.4, deadband=1.0),
            ),
        ),
        _kind(
            "assembly",
            "manual assembly station: kitting, hand assembly, a torque tool",
            MachineParameters(load_s=12.0, process_s=70.0, unload_s=8.0, gap_s=10.0, sigma=0.3, scrap_rate=0.008,
                              mtbf_h=80.0, mttr_min=8.0, micro_stop_rate=0.03, micro_stop_s=60.0, lot_size=0,
                              power_kw={S.PROCESSING: 0.6}, idle_kw=0.2),
            (
                Analog("torque", "Nm", base=12.0, noise_sd=0.25, per_cycle=True),
                Analog("ambient_temp", "degC", base=21.0, noise_sd=0.05, daily_swing=2.5, walk_sd=0.3, deadband=0.5),
            ),
        ),
        _kind(
            "filling",
            "filling/sealing machine (e.g. mask packs): essence tank refilled per batch",
            MachineParameters(load_s=300.0, process_s=2.2, unload_s=0.6, gap_s=0.4, sigma=0.08, load_every=2000,
                              scrap_rate=0.015, mtbf_h=10.0, mttr_min=15.0, micro_stop_rate=0.004,
                              micro_stop_s=30.0, lot_size=6000, changeover_min=40.0,
                              power_kw={S.PROCESSING: 5.5}, idle_kw=1.5),
            (
                Analog("fill_weight", "g", base=25.0, noise_sd=0.15, per_cycle=True),
                Analog("seal_temp", "degC", base=165.0, noise_sd=0.4, thermal=3.0, daily_swing=0.5, walk_sd=0.5,
                       deadband=1.0),
                Analog("fill_pressure", "bar", base=0.2, noise_sd=0.03, active=2.5, walk_sd=0.02, deadband=0.3),
            ),
        ),
    )
}

KindName = Literal["press", "cnc", "injection", "assembly", "filling"]


def default_register_map(kind: str, float_order: ByteOrder | None = None) -> tuple[Tag, ...]:
    """A kind's register map; float_order applies one word/byte order to every 32-bit value."""
    tags = KINDS[kind].tags
    if float_order is None:
        return tags
    return tuple(t.model_copy(update={"order": float_order}) if t.width == 2 else t for t in tags)


def scaled(params: MachineParameters, **factors: float) -> MachineParameters:
    """Parameters with some fields multiplied (the rollout's changes)."""
    return replace(params, **{k: getattr(params, k) * v for k, v in factors.items()})

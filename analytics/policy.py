"""Per-tenant analytics policy: which states are run, planned or unplanned time, ideal cycle times, shifts.

Whether a stop counts against availability is a tenant's choice (a cleaning break is planned
in one plant and a loss in another), so it is configuration, and every report prints it.
"""

from __future__ import annotations

import re
from datetime import date, time
from enum import Enum
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plant import check_time_zone
from plant.states import MachineState

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class StateKind(str, Enum):
    RUN = "run"  # actual production time (APT)
    SPEED_LOSS = "speed_loss"  # inside APT but not producing (idle between cycles, micro-stops): lowers performance
    UNPLANNED = "unplanned"  # actual delay time (ADET): lowers availability
    PLANNED = "planned"  # planned downtime: removed from planned busy time (PBT)


class StateDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: int
    name: str = Field(min_length=1, max_length=40)
    kind: StateKind
    failure: bool = Field(False, description="episodes of this state are failures (MTBF/MTTR)")


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ShiftDef(BaseModel):
    """A shift from start to end local time; end <= start means it runs past midnight.

    ``days``: the weekdays the shift starts on (a night shift belongs to the day it starts).
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=20)
    start: str = "00:00"
    end: str = "00:00"
    days: list[str] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1)

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[str]) -> list[str]:
        out = []
        for d in v:
            key = str(d).strip().lower()[:3]
            if key not in WEEKDAYS:
                raise ValueError(f"{d!r} is not a weekday: write mon, tue, wed, thu, fri, sat or sun")
            if key not in out:
                out.append(key)
        return sorted(out, key=WEEKDAYS.index)

    def weekdays(self) -> frozenset[int]:
        """The days as date.weekday() numbers, Monday = 0."""
        return frozenset(WEEKDAYS.index(d) for d in self.days)

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError(f"{v!r} is not a time of day: write HH:MM, e.g. 06:00 or 22:30")
        return v

    def start_min(self) -> int:
        t = time.fromisoformat(self.start)
        return t.hour * 60 + t.minute

    def length_min(self) -> int:
        t = time.fromisoformat(self.end)
        length = (t.hour * 60 + t.minute - self.start_min()) % 1440
        return length or 1440


#: How the default policy classifies each code of ``plant.states.MachineState``.
DEFAULT_KINDS: dict[MachineState, StateKind] = {
    MachineState.IDLE: StateKind.SPEED_LOSS,
    MachineState.LOADING: StateKind.RUN,
    MachineState.PROCESSING: StateKind.RUN,
    MachineState.UNLOADING: StateKind.RUN,
    MachineState.FAULT: StateKind.UNPLANNED,
    MachineState.PLANNED_STOP: StateKind.PLANNED,
    MachineState.MICRO_STOP: StateKind.SPEED_LOSS,
    MachineState.CHANGEOVER: StateKind.UNPLANNED,
    MachineState.NOT_SCHEDULED: StateKind.PLANNED,
}

#: The machine-state register as the simulated PLCs serve it, named and classified.
DEFAULT_STATES = tuple(
    StateDef(code=int(s), name=s.name.lower(), kind=DEFAULT_KINDS[s], failure=s is MachineState.FAULT)
    for s in MachineState
)


class Tags(BaseModel):
    """Tag names in the store. Counters are unsigned PLC registers of the given width."""

    model_config = ConfigDict(extra="forbid")

    state: str = "state"
    good: str = "good_count"
    scrap: str = "scrap_count"
    material_input: str | None = "material_input"
    material_input_on: list[float] = Field(
        default_factory=lambda: [1.0], min_length=1,
        description="values of the material_input tag that mean 'material input on': 1.0 for a coil, or the "
                    "loading code(s) when material_input names the machine-state register")
    energy: str | None = "energy_wh"
    good_bits: int = 16
    scrap_bits: int = 16
    energy_bits: int = 32
    product: str | None = Field("product", description="tag holding the product code (number or text), for product-mix control")


class Policy(BaseModel):
    """The analytics settings of one tenant (``analytics:`` in a config file)."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "Asia/Seoul"
    states: list[StateDef] = Field(default_factory=lambda: list(DEFAULT_STATES))
    shifts: list[ShiftDef] = Field(default_factory=lambda: [ShiftDef(name="day", start="00:00", end="00:00")])
    tags: Tags = Field(default_factory=Tags)
    stale_s: Annotated[float, Field(gt=0, description="a value holds until the next sample, at most this long; "
                                   "keep it above the gateway's heartbeat (60 s)")] = 90.0
    ideal_cycle_s: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict, description="ideal cycle time per machine id (or line/machine); the default below otherwise"
    )
    default_ideal_cycle_s: Annotated[float, Field(gt=0)] = 12.0
    ideal_cycle_by_product: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict, description="ideal cycle time per product code (the product tag's value); overrides the machine's"
    )
    bucket_min: Annotated[int, Field(gt=0, le=60)] = 60
    coverage_warning: Annotated[float, Field(ge=0, le=1, description=(
        "warn when the line's or any machine's data coverage in either window is below this"))] = 0.95
    coverage_shift_warning: Annotated[float, Field(ge=0, le=1, description=(
        "warn when a machine's coverage differs between the windows by more than this (0.03 = 3 points)"))] = 0.03
    holidays: str | None = Field("KR", description="country whose public holidays are not planned time "
                                 "(ISO 3166 code, from the holidays package); null: none")
    closed_days: list[date] = Field(default_factory=list, description="the tenant's own closure days (not planned time)")
    counter_max_rate_per_s: Annotated[float | None, Field(gt=0, description=(
        "most parts per second a machine can make, for telling a counter wrap from a PLC restart; "
        "default: from the fastest ideal cycle"))] = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return check_time_zone(v)

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        from analytics.workcalendar import check_country

        return check_country(v)

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        codes = [s.code for s in self.states]
        if len(set(codes)) != len(codes):
            raise ValueError(f"states: each code may appear once, got {sorted(codes)}")
        if not any(s.kind is StateKind.RUN for s in self.states):
            raise ValueError("states: at least one state must be of kind 'run'")
        if 60 % self.bucket_min:
            raise ValueError(f"bucket_min={self.bucket_min} must divide 60")
        for sh in self.shifts:
            if sh.start_min() % self.bucket_min or sh.length_min() % self.bucket_min:
                raise ValueError(
                    f"shift {sh.name!r} ({sh.start}-{sh.end}) must start and end on a multiple of "
                    f"bucket_min={self.bucket_min} minutes; lower bucket_min (e.g. 30 or 15)"
                )
        starts = sorted((sh.start_min(), sh.start_min() + sh.length_min(), sh.name) for sh in self.shifts)
        for a, b in zip(starts, [*starts[1:], (starts[0][0] + 1440, 0, starts[0][2])]):
            if len(starts) > 1 and a[1] > b[0]:
                raise ValueError(f"shifts {a[2]!r} and {b[2]!r} overlap")
        return self

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def ideal_cycle(self, line: str, machine: str) -> float:
        return self.ideal_cycle_s.get(f"{line}/{machine}", self.ideal_cycle_s.get(machine, self.default_ideal_cycle_s))

    def product_ideal(self, code: float | str) -> float | None:
        """Ideal cycle of a product code; 12.0 from a numeric register matches the key '12'."""
        key = code if isinstance(code, str) else (str(int(code)) if float(code).is_integer() else str(code))
        return self.ideal_cycle_by_product.get(key)

    def max_rate_per_s(self, line: str, machine: str) -> float:
        """The machine's top rate for judging counter drops: configured, else 1 / its fastest ideal cycle."""
        if self.counter_max_rate_per_s is not None:
            return self.counter_max_rate_per_s
        fastest = min([self.ideal_cycle(line, machine), *self.ideal_cycle_by_product.values()])
        return 1.0 / fastest

    def codes(self, *kinds: StateKind) -> list[int]:
        return [s.code for s in self.states if s.kind in kinds]

    def failure_codes(self) -> list[int]:
        return [s.code for s in self.states if s.failure]

    def describe(self) -> dict:
        """The classification printed on every report."""
        return {
            "states": [{"code": s.code, "name": s.name, "kind": s.kind.value, "failure": s.failure} for s in self.states],
            "shifts": [{"name": s.name, "start": s.start, "end": s.end, "days": list(s.days)} for s in self.shifts],
            "holidays": self.holidays,
            "closed_days": [d.isoformat() for d in self.closed_days],
            "material_input": {"tag": self.tags.material_input, "on": list(self.tags.material_input_on)},
            "timezone": self.timezone,
            "stale_s": self.stale_s,
            "ideal_cycle_s": dict(self.ideal_cycle_s),
            "default_ideal_cycle_s": self.default_ideal_cycle_s,
            "ideal_cycle_by_product": dict(self.ideal_cycle_by_product),
        }

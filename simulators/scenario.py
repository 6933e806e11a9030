"""Scenario files: a factory we control, described in YAML and validated by pydantic.

A scenario names the tenant, site, lines and machines (kind, parameter overrides,
register map, Modbus port and unit), the shift calendar, the history start, a rollout
date with the change it brings, and a seed. Machines get their seed from the scenario
seed and their own line/name, so adding a machine leaves the others' histories alone.

Rollout changes are percentages applied from the rollout date (local midnight) on:

| key | scales |
|---|---|
| material_input_time | ``load_s`` (material input per cycle or batch) |
| processing_time | ``process_s`` |
| cycle_time | ``process_s`` and ``unload_s`` (the machine's own cycle, without material input) |
| handling_time | ``unload_s`` and ``gap_s`` |
| fault_rate | faults per processing hour (``mtbf_h`` divided by 1 + change) |
| repair_time | ``mttr_min`` |
| scrap_rate | ``scrap_rate`` |
| micro_stop_rate | ``micro_stop_rate`` |
| changeover_time | ``changeover_min`` |
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time, timezone, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from plant import IDENTIFIER_PATTERN, MachineRef
from registermap import ByteOrder, Tag
from simulators.calendar import CalendarSettings
from simulators.faults import Fault
from simulators.kinds import KINDS, KindName, MachineParameters, default_register_map
from simulators.timeline import MachineSpec
from yamlmodel import YamlFileError, load_model

Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]

CHANGE_TARGETS: dict[str, tuple[str, ...]] = {
    "material_input_time": ("load_s",),
    "processing_time": ("process_s",),
    "cycle_time": ("process_s", "unload_s"),
    "handling_time": ("unload_s", "gap_s"),
    "fault_rate": ("mtbf_h",),  # inverse
    "repair_time": ("mttr_min",),
    "scrap_rate": ("scrap_rate",),
    "micro_stop_rate": ("micro_stop_rate",),
    "changeover_time": ("changeover_min",),
}
_PARAM_NAMES = {f.name for f in fields(MachineParameters)} - {"power_kw"}


class ScenarioError(YamlFileError):
    """A scenario that cannot be used; the message names the file and the key."""


def _percent(value: Any) -> float:
    if isinstance(value, str):
        text = value.strip().removesuffix("%").strip()
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a percentage; write e.g. -75% or -75") from None
    if not isinstance(value, (int, float)) or not -100 < float(value) <= 1000:
        raise ValueError(f"{value!r}: a change must be a percentage above -100% (e.g. -75%)")
    return float(value)


class Changes(BaseModel):
    """What the rollout changes, in percent (``-75%`` or ``-75``)."""

    model_config = ConfigDict(extra="forbid")

    material_input_time: float = 0.0
    processing_time: float = 0.0
    cycle_time: float = 0.0
    handling_time: float = 0.0
    fault_rate: float = 0.0
    repair_time: float = 0.0
    scrap_rate: float = 0.0
    micro_stop_rate: float = 0.0
    changeover_time: float = 0.0

    @field_validator("*", mode="before")
    @classmethod
    def _as_percent(cls, v: Any) -> float:
        return _percent(v)

    def apply(self, p: MachineParameters) -> MachineParameters:
        updates: dict[str, float] = {}
        for key, targets in CHANGE_TARGETS.items():
            pct = getattr(self, key)
            if not pct:
                continue
            for t in targets:
                current = updates.get(t, getattr(p, t))
                factor = 1.0 / (1.0 + pct / 100.0) if key == "fault_rate" else 1.0 + pct / 100.0
                updates[t] = current * factor
        return replace(p, **updates)

    def nonzero(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v}


class Rollout(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: dt.date = Field(description="first local day with the new way of working")
    changes: Changes = Field(default_factory=Changes)
    commissioning_days: int = Field(7, ge=0, le=60, description="days around the rollout analytics should drop")


class MachineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Identifier
    kind: KindName
    port: Annotated[int, Field(ge=1, le=65535)] | None = Field(None, description="TCP port (live mode)")
    protocol: Literal["modbus", "mc", "xgt", "opcua"] = Field(
        "modbus", description="what the PLC speaks in live mode: Modbus TCP, Mitsubishi MC (SLMP), LS XGT FEnet or "
        "OPC UA; mc and xgt serve the kind's signals through maps of their own (simulators/framed_plcs.py), opcua "
        "as one variable node per signal (simulators/opcua_plcs.py)")
    unit_id: Annotated[int, Field(ge=1, le=247)] = 1
    params: dict[str, float] = Field(default_factory=dict, description="overrides of the kind's parameters")
    register_map: list[Tag] | None = Field(None, description="default: the kind's map")
    float_order: ByteOrder | None = Field(None, description="word/byte order of every 32-bit value in the default map")
    restarts: list[datetime] = Field(default_factory=list, description="PLC restarts: part counters restart at 0")
    initial_good_count: Annotated[int, Field(ge=0, le=65535)] = 0
    seed: int | None = Field(None, description="default: derived from the scenario seed and the machine's name")
    rollout: bool = Field(True, description="false: this machine keeps its old way of working (a control)")
    faults: list[Fault] = Field(
        default_factory=list,
        description="live mode only: windows of misbehaviour (delay, drop, exception, illegal_address, malformed, "
        "silent, disappear); at_s counts wall-clock seconds from the start of 'smartfactory simulate'",
    )

    @field_validator("params")
    @classmethod
    def _known_params(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - _PARAM_NAMES)
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; known: {', '.join(sorted(_PARAM_NAMES))}")
        for k, x in v.items():
            if x < 0:
                raise ValueError(f"parameter {k} must not be negative")
        return v

    @field_validator("restarts")
    @classmethod
    def _aware(cls, v: list[datetime]) -> list[datetime]:
        for t in v:
            if t.tzinfo is None:
                raise ValueError(f"restart {t.isoformat()} needs a time zone, e.g. {t.isoformat()}+09:00")
        return v

    @model_validator(mode="after")
    def _modbus_only(self) -> "MachineConfig":
        if self.protocol != "modbus":
            if self.register_map is not None or self.float_order is not None:
                raise ValueError(f"register_map and float_order are Modbus maps; a protocol: {self.protocol} machine "
                                 "is served through the map derived from its kind (simulators/framed_plcs.py, "
                                 "simulators/opcua_plcs.py)")
            if self.faults:
                raise ValueError(f"faults are injected by a Modbus proxy; a protocol: {self.protocol} machine has none")
        return self

    @model_validator(mode="after")
    def _map_matches_kind(self) -> "MachineConfig":
        if self.register_map is not None:
            known = set(KINDS[self.kind].signal_names())
            for i, tag in enumerate(self.register_map):
                if tag.name not in known:
                    raise ValueError(
                        f"register_map[{i}] {tag.name!r} is not a signal of a {self.kind}; "
                        f"use one of {', '.join(sorted(known))}"
                    )
        return self


class LineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Identifier
    machines: Annotated[list[MachineConfig], Field(min_length=1)]


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: Identifier
    site: Identifier
    description: str = ""
    seed: int = 0
    start: date = Field(description="history origin (local date): counters start here")
    days: int = Field(90, ge=1, le=3660, description="default backfill length")
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    rollout: Rollout | None = None
    host: str = "127.0.0.1"
    lines: Annotated[list[LineConfig], Field(min_length=1)]
    _origin_s: float | None = PrivateAttr(None)

    def with_origin(self, origin_s: float) -> "Scenario":
        """A copy whose counters start at an instant instead of the start date's midnight."""
        copy = self.model_copy()
        copy._origin_s = origin_s
        return copy

    @property
    def origin_s(self) -> float:
        return self._origin_s if self._origin_s is not None else self.local_midnight(self.start)

    @model_validator(mode="after")
    def _unique(self) -> "Scenario":
        names = [m.name for line in self.lines for m in line.machines]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"machine names must be unique in a scenario: {', '.join(dupes)}")
        ports = [m.port for line in self.lines for m in line.machines if m.port is not None]
        dupes_p = sorted({p for p in ports if ports.count(p) > 1})
        if dupes_p:
            raise ValueError(f"machines share Modbus port(s) {dupes_p}")
        if self.rollout is not None and self.rollout.date <= self.start:
            raise ValueError(f"rollout.date {self.rollout.date} must be after start {self.start}")
        return self

    @property
    def tz(self) -> timezone:
        return timezone(timedelta(hours=self.calendar.utc_offset_hours))

    def local_midnight(self, d: date) -> float:
        return datetime.combine(d, time(0), tzinfo=self.tz).timestamp()

    def machines(self) -> list["SimMachine"]:
        out = []
        origin = self.origin_s
        for line in self.lines:
            for m in line.machines:
                kind = KINDS[m.kind]
                before = replace(kind.params, **{k: (int(v) if k in ("load_every", "lot_size") else v)
                                                  for k, v in m.params.items()})
                applies = self.rollout is not None and m.rollout
                after = self.rollout.changes.apply(before) if applies else before  # type: ignore[union-attr]
                seed = m.seed if m.seed is not None else (
                    (self.seed * 1_000_003) ^ zlib.crc32(f"{line.name}/{m.name}".encode())) & 0x7FFFFFFF
                spec = MachineSpec(
                    name=m.name, kind=kind, before=before, after=after, calendar=self.calendar, seed=seed,
                    origin_s=origin, rollout_day=self.rollout.date if self.rollout else None,
                    restarts_s=tuple(t.timestamp() for t in m.restarts), initial_good_count=m.initial_good_count,
                    initial_energy_wh=100_000 + seed % 9_000_000,
                )
                tags = tuple(m.register_map) if m.register_map is not None else default_register_map(
                    m.kind, m.float_order)
                out.append(SimMachine(MachineRef(self.tenant, self.site, line.name, m.name), spec, tags,
                                      m.port, m.unit_id, tuple(m.faults), m.protocol))
        return out


@dataclass(frozen=True)
class SimMachine:
    """A resolved machine: where it is, how it behaves, what it serves."""

    ref: MachineRef
    spec: MachineSpec
    tags: tuple[Tag, ...]
    port: int | None
    unit_id: int
    faults: tuple[Fault, ...] = ()
    protocol: str = "modbus"  # modbus | mc | xgt | opcua (live mode)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; errors name the file, line and key path."""
    return load_model(path, Scenario, what="scenario file", error=ScenarioError,
                      shape="a mapping (tenant, site, start, lines, ...)",
                      missing_hint=f" (shipped ones: {', '.join(shipped_scenarios())})")


SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


def shipped_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def resolve_scenario_path(name: str | Path) -> Path:
    """A path, or the name of a shipped scenario (``autoparts_press_line``)."""
    p = Path(name)
    if p.exists() or p.suffix:
        return p
    shipped = SCENARIO_DIR / f"{name}.yaml"
    return shipped if shipped.exists() else p

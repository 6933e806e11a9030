"""The ``simulator:`` section of a config file.

Either ``scenario:`` (a scenario file, relative to the config file, or the name of a
shipped one) or ``machines:`` (the walking skeleton's form: presses running around the
clock from the moment the simulator starts, still used by docker-compose).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plant import IDENTIFIER_PATTERN

Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]


class SimulatedMachine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Identifier
    kind: Literal["press"] = "press"
    port: Annotated[int, Field(ge=1, le=65535)]
    unit_id: Annotated[int, Field(ge=1, le=247)] = 1
    seed: int = 0
    initial_good_count: Annotated[int, Field(ge=0, le=65535)] = 0


class SimulatorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    speed: Annotated[float, Field(gt=0, le=1000, description="simulated seconds per real second")] = 1.0
    served_log: Path | None = Field(
        None, description="JSON-lines file recording every read served (ground truth for tests)"
    )
    scenario: Path | None = Field(None, description="scenario file (or shipped scenario name) to serve live")
    start: datetime | None = Field(None, description="simulated instant at startup (default: now); needs a time zone")
    truth_dir: Path | None = Field(None, description="write the ground truth of the simulated span here on exit")
    machines: Annotated[list[SimulatedMachine], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "SimulatorSettings":
        if (self.scenario is None) == (self.machines is None):
            raise ValueError("give either 'scenario' (a scenario file) or 'machines' (presses), not both or neither")
        if self.start is not None and self.start.tzinfo is None:
            raise ValueError(f"start {self.start.isoformat()} needs a time zone, e.g. {self.start.isoformat()}+09:00")
        for attr in ("name", "port"):
            seen = [getattr(m, attr) for m in self.machines or []]
            dupes = sorted({str(x) for x in seen if seen.count(x) > 1})
            if dupes:
                raise ValueError(f"machines share the same {attr}: {', '.join(dupes)}")
        return self

    def start_s(self) -> float | None:
        return self.start.timestamp() if self.start else None

    def resolve_scenario(self, base_dir: Path | None = None):
        """The scenario to serve: loaded from its file, or built from ``machines``."""
        from simulators.scenario import Scenario, load_scenario, resolve_scenario_path

        if self.scenario is not None:
            path = self.scenario
            if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
                path = base_dir / path
            return load_scenario(resolve_scenario_path(path))
        import time

        from simulators.calendar import CalendarSettings
        from simulators.kinds import PRESS_TAGS

        now = self.start_s() or time.time()
        calendar = CalendarSettings.always_on()
        start = datetime.fromtimestamp(now, timezone(timedelta(hours=calendar.utc_offset_hours))).date()
        scenario = Scenario.model_validate({
            "tenant": "simulated", "site": "simulated", "start": start.isoformat(),
            "calendar": calendar.model_dump(mode="json"),
            "lines": [{"name": "line-1", "machines": [
                {"name": m.name, "kind": m.kind, "port": m.port, "unit_id": m.unit_id, "seed": m.seed,
                 "initial_good_count": m.initial_good_count,
                 "register_map": [t.model_dump(mode="json") for t in PRESS_TAGS]}
                for m in self.machines or []]}],
        })
        return scenario.with_origin(now)


"""The ``simulator:`` section of a config file."""

from __future__ import annotations

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
    machines: Annotated[list[SimulatedMachine], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> "SimulatorSettings":
        for attr in ("name", "port"):
            seen = [getattr(m, attr) for m in self.machines]
            dupes = sorted({str(x) for x in seen if seen.count(x) > 1})
            if dupes:
                raise ValueError(f"machines share the same {attr}: {', '.join(dupes)}")
        return self

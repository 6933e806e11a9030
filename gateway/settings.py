"""The ``gateway:`` section of a config file: which devices to poll and what to read."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plant import IDENTIFIER_PATTERN
from registermap import Tag

Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]


class DeviceSettings(BaseModel):
    """One PLC (one Modbus unit), published as one machine."""

    model_config = ConfigDict(extra="forbid")

    name: Identifier = Field(description="machine id, the topic level and store tag")
    line: Identifier
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    unit_id: Annotated[int, Field(ge=0, le=247)] = 1
    poll_interval_s: Annotated[float, Field(ge=0.05, le=3600)] = 1.0
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    max_registers_per_read: Annotated[int, Field(ge=1, le=125)] = 125
    max_bits_per_read: Annotated[int, Field(ge=1, le=2000)] = 2000
    max_gap: Annotated[int, Field(ge=0, le=124, description="unmapped registers a read may span")] = 8
    tags: Annotated[list[Tag], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_tags(self) -> "DeviceSettings":
        names = [t.name for t in self.tags]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tag names must be unique per device; repeated: {', '.join(dupes)}")
        for tag in self.tags:
            if tag.width > self.max_registers_per_read:
                raise ValueError(
                    f"tag {tag.name!r} spans {tag.width} registers, more than max_registers_per_read "
                    f"({self.max_registers_per_read})"
                )
        return self


class GatewaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier = Field(description="this gateway's id, also its MQTT client id")
    tenant: Identifier
    site: Identifier
    devices: Annotated[list[DeviceSettings], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_machines(self) -> "GatewaySettings":
        keys = [(d.line, d.name) for d in self.devices]
        dupes = sorted({f"{line}/{name}" for line, name in keys if keys.count((line, name)) > 1})
        if dupes:
            raise ValueError(f"two devices publish as the same machine: {', '.join(dupes)}")
        return self

"""The ``collector:`` section of a config file."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from plant import IDENTIFIER_PATTERN


class CollectorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: Annotated[str, Field(pattern=IDENTIFIER_PATTERN)] = Field(
        "smartfactory-collector", description="MQTT client id; fixed so the broker keeps the session"
    )
    tenant: Annotated[str, Field(pattern=r"^(\+|[A-Za-z0-9][A-Za-z0-9_.\-]{0,63})$")] = Field(
        "+", description="collect one tenant's telemetry, or '+' for all"
    )
    shared_group: Annotated[str | None, Field(pattern=IDENTIFIER_PATTERN)] = Field(
        None, description="MQTT shared-subscription group, so several collectors split the load"
    )
    batch_size: Annotated[int, Field(ge=1, le=100_000, description="points per store write")] = 5000
    batch_interval_s: Annotated[float, Field(gt=0, le=60, description="longest wait before a partial batch is written")] = 1.0
    max_pending_messages: Annotated[int, Field(ge=1)] = 20_000

"""The ``collector:`` section of a config file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plant import IDENTIFIER_PATTERN


class CollectorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: Annotated[str, Field(pattern=IDENTIFIER_PATTERN)] = Field(
        "smartfactory-collector",
        description=(
            "MQTT client id on an anonymous broker, fixed so the broker keeps the session; with mqtt.username the "
            "client id is the username (the broker binds ids to accounts): one account per collector process"
        ),
    )
    tenant: Annotated[str, Field(pattern=r"^(\+|[A-Za-z0-9][A-Za-z0-9_.\-]{0,63})$")] = Field(
        "+", description="collect one tenant's telemetry, or '+' for all"
    )
    shared_group: Annotated[str | None, Field(pattern=IDENTIFIER_PATTERN)] = Field(
        None, description="MQTT shared-subscription group, so several collectors split the load"
    )
    batch_size: Annotated[int, Field(ge=1, le=100_000, description="points (lines) per store write")] = 5000
    batch_interval_s: Annotated[float, Field(gt=0, le=60, description="longest wait before a partial batch is written")] = 1.0
    batch_linger_s: Annotated[float | None, Field(ge=0, le=60)] = Field(
        0.02,
        description=(
            "group commit: while the store is idle and nothing waits, a partial batch is written once no message "
            "has come for this long (a gateway's burst is over) or once it is batch_linger_max_s old, so at light "
            "load a sample is stored within milliseconds, not after batch_interval_s; while the store is busy or "
            "messages keep coming, batches fill as before. null: wait for batch_interval_s"
        ),
    )
    batch_linger_max_s: Annotated[float, Field(gt=0, le=60)] = Field(
        0.2, description="group commit: the oldest a partial batch gets while the store is idle (a steady trickle)"
    )
    max_batch_messages: Annotated[int, Field(ge=1, le=65_535)] = Field(
        100,
        description=(
            "write a batch once it holds this many unacknowledged messages. Keep it at most half the "
            "broker's per-client max_inflight_messages (mosquitto: default 20, set 1000; see "
            "docs/collector.md), or the broker stops sending before a batch fills and throughput "
            "falls to one batch per batch_interval_s"
        ),
    )
    max_pending_messages: Annotated[int, Field(ge=1)] = 20_000
    data_dir: Path = Field(
        Path("smartfactory-data/collector"),
        description="spool and dead letters (collector.db); a relative path is relative to the config file",
    )
    spool_max_bytes: Annotated[int, Field(ge=1024)] = Field(
        512 * 1024 * 1024,
        description="payload bytes kept on disk while the store is down; past it the collector stops acknowledging",
    )
    dead_letter_max_payload_bytes: Annotated[int, Field(ge=0, le=1024 * 1024)] = Field(
        64 * 1024, description="raw payload bytes kept per dead letter (longer ones are truncated and marked)"
    )
    dead_letter_max_bytes: Annotated[int, Field(ge=1024)] = Field(
        256 * 1024 * 1024,
        description="payload bytes kept in the dead letters; past it the oldest letters are deleted (logged)",
    )
    retry_initial_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    retry_max_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    unknown_machines: Literal["refuse", "accept"] = Field(
        "refuse",
        description=(
            "telemetry of a machine that is not in the plant model: 'refuse' sends it to the dead letters "
            "(reason unknown_machine); 'accept' stores it (the demo, or a broker only your own gateways reach)"
        ),
    )
    plant_database_url: str | None = Field(
        None, description="the plant model the machine list comes from; default: api.database_url"
    )
    plant_refresh_s: Annotated[float, Field(ge=1, le=3600)] = Field(
        30.0, description="how often the machine list is reloaded: a machine added in the UI is accepted within this"
    )
    max_tags_per_machine: Annotated[int, Field(ge=1, le=100_000)] = Field(
        500, description="tag names one machine may have; a message adding more goes to the dead letters (too_many_tags)"
    )
    max_messages_per_s_per_tenant: Annotated[float, Field(gt=0, le=1_000_000)] = Field(
        500.0, description="sustained messages per second one tenant's gateways may send (rate_limited past it)"
    )
    tenant_burst_s: Annotated[float, Field(ge=1, le=3600)] = Field(
        60.0,
        description=(
            "seconds' worth of max_messages_per_s_per_tenant a tenant may send at once, e.g. a gateway "
            "replaying its outbox after an outage"
        ),
    )
    metrics_host: str = Field("127.0.0.1", description="address of the Prometheus /metrics endpoint")
    metrics_port: Annotated[int | None, Field(ge=0, le=65535)] = Field(
        9464, description="port of the Prometheus /metrics endpoint; 0 picks a free port, null turns it off"
    )

    @model_validator(mode="after")
    def _check_retry(self) -> "CollectorSettings":
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("retry_max_s must be at least retry_initial_s")
        return self

    def resolved_data_dir(self, base_dir: Path | None = None) -> Path:
        if self.data_dir.is_absolute() or base_dir is None:
            return self.data_dir
        return base_dir / self.data_dir

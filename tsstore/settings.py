"""Store settings as they appear under ``store:`` in a config file, and the factory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from tsstore.base import TimeSeriesStore


class SqliteSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["sqlite"] = "sqlite"
    path: Path = Path("smartfactory-data/telemetry.db")


class InfluxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["influxdb"]
    url: HttpUrl
    database: Annotated[str, Field(min_length=1)] = "smartfactory"
    username: str | None = None
    password: str | None = None
    token: str | None = Field(default=None, description="InfluxDB 2.x/3.x token for the v1 compatibility API")
    timeout_s: Annotated[float, Field(gt=0)] = 10.0


StoreSettings = Annotated[Union[SqliteSettings, InfluxSettings], Field(discriminator="kind")]


def open_store(settings: SqliteSettings | InfluxSettings, base_dir: Path | None = None) -> TimeSeriesStore:
    """Open the configured backend; a relative SQLite path is relative to the config file."""
    if isinstance(settings, SqliteSettings):
        from tsstore.sqlite import SqliteStore

        path = settings.path if settings.path.is_absolute() or base_dir is None else base_dir / settings.path
        return SqliteStore(path)
    from tsstore.influx import InfluxStore

    return InfluxStore(
        str(settings.url),
        settings.database,
        username=settings.username,
        password=settings.password,
        token=settings.token,
        timeout=settings.timeout_s,
    )

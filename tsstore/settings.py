"""Store settings as they appear under ``store:`` in a config file, and the factory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

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


ShardSettings = Annotated[Union[SqliteSettings, InfluxSettings], Field(discriminator="kind")]

SHARD_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class ShardedSettings(BaseModel):
    """Several stores, one per group of tenants (``tsstore.sharded``): the store grows by adding instances."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["sharded"]
    shards: dict[Annotated[str, Field(pattern=SHARD_NAME)], ShardSettings] = Field(
        min_length=1, description="shard name -> an InfluxDB or SQLite store (the same keys as a plain store: section)")
    default: str = Field(description="the shard of every tenant not listed under tenants")
    tenants: dict[str, str] = Field(default_factory=dict, description="tenant slug -> shard name")

    @model_validator(mode="after")
    def _names_exist(self) -> ShardedSettings:
        names = ", ".join(self.shards)
        if self.default not in self.shards:
            raise ValueError(f"default: {self.default!r} is not a shard; the shards are: {names}")
        for tenant, target in self.tenants.items():
            if target not in self.shards:
                raise ValueError(f"tenants.{tenant}: {target!r} is not a shard; the shards are: {names}")
        seen: dict[str, str] = {}
        for name, shard in self.shards.items():
            where = (f"sqlite file {shard.path}" if isinstance(shard, SqliteSettings)
                     else f"InfluxDB {str(shard.url).rstrip('/')} database {shard.database}")
            if where in seen:
                raise ValueError(f"shards.{name}: the same store as shards.{seen[where]} ({where}); each shard must be "
                                 "a store of its own")
            seen[where] = name
        return self


StoreSettings = Annotated[Union[SqliteSettings, InfluxSettings, ShardedSettings], Field(discriminator="kind")]


def open_store(settings: SqliteSettings | InfluxSettings | ShardedSettings, base_dir: Path | None = None
               ) -> TimeSeriesStore:
    """Open the configured backend; a relative SQLite path is relative to the config file."""
    if isinstance(settings, ShardedSettings):
        from tsstore.sharded import ShardedStore

        opened: dict[str, TimeSeriesStore] = {}
        try:
            for name, shard in settings.shards.items():
                opened[name] = open_store(shard, base_dir)
        except BaseException:
            for store in opened.values():
                store.close()
            raise
        return ShardedStore(opened, settings.default, settings.tenants, describe={
            name: (f"sqlite {shard.path}" if isinstance(shard, SqliteSettings) else f"{str(shard.url).rstrip('/')}"
                   f" db={shard.database}") for name, shard in settings.shards.items()})
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

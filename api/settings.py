"""The ``api:`` section of a config file."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    max_points: Annotated[int, Field(ge=10, le=1_000_000, description="largest history answer")] = 10_000
    database_url: str = Field(
        default="sqlite:///plant.db",
        description="plant model and users: a SQLAlchemy URL; a relative SQLite path is relative to the config "
        "file; PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    session_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 12.0
    secure_cookies: bool = Field(default=False, description="set behind HTTPS so the session cookie is never sent "
                                                            "in clear")
    stale_after_s: Annotated[float, Field(gt=0)] = Field(
        default=90.0, description="a value holds until the next sample, at most this long, then the machine shows "
        "as stale/unknown; keep it above the gateways' heartbeat (max_silence_s, 60 s) like analytics.stale_s")
    alarm_interval_s: Annotated[float, Field(gt=0)] = 1.0
    workers: Annotated[int, Field(ge=1, le=64)] = Field(
        default=1, description="uvicorn worker processes; more than one spreads requests over CPU cores. The "
        "alarm engine and the rollup maintainer then run in exactly one of them (see leader_lock)")
    leader_lock: str = Field(
        default="api-leader.lock", description="lock file that elects the worker running the background duties; "
        "a relative path is relative to the config file. Workers must share it (one host)")
    centre_coverage_floor: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.8, description="the centre portfolio flags an SME whose data coverage over the last 24 h is under "
        "this share (0.8 = 80%); no data at all is flagged as such")
    centre_gains_ttl_s: Annotated[float, Field(ge=0, le=86_400)] = Field(
        default=300.0, description="how long a worker keeps the before/after reports behind the centre portfolio's "
        "gains (they change by the day; computing them reads every rollout's windows)")

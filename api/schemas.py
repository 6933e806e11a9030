"""Response models: the API's typed boundary, rendered into the OpenAPI document."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Machine(BaseModel):
    tenant: str
    site: str
    line: str
    machine: str


class TagValue(BaseModel):
    ts: int = Field(description="source time, epoch ms")
    time: str = Field(description="source time, ISO 8601 UTC")
    value: float | str = Field(description="numbers and booleans (0/1) as floats; text as text")


class LatestValues(BaseModel):
    machine: Machine
    values: dict[str, TagValue]


class HistoryPoint(BaseModel):
    ts: int = Field(description="bucket start (or sample time for every=raw), epoch ms")
    value: float | str


class History(BaseModel):
    machine: Machine
    tag: str
    start: str
    end: str
    every_ms: int
    agg: str
    points: list[HistoryPoint]


class Health(BaseModel):
    status: str = Field(description="'ok', or 'degraded' when the store does not answer")
    store: str
    detail: str | None = None

"""Scheduled report e-mails (reportmail): the centre lists, adds, changes, pauses and deletes schedules and
reads every send record.

Centre roles only: a schedule may send the portfolio of every SME. The leader worker sends them
when the config has a ``mail`` section (docs/report-schema.md, "Scheduled delivery by e-mail").
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.access import CentreOnly
from api.services import PlantDep
from reportmail.delivery import add_schedule, delete_schedule, list_schedules, list_sends, update_schedule

router = APIRouter(prefix="/api/v1/report-schedules", tags=["reports"])


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: Annotated[str | None, Field(max_length=64, description="the SME; none = the centre's portfolio")] = None
    line: Annotated[str | None, Field(max_length=64)] = None
    kind: Literal["weekly", "monthly", "after_commissioning"]
    recipients: Annotated[list[Annotated[str, Field(max_length=254)]], Field(min_length=1, max_length=50)]
    lang: Literal["ko", "en"] = "ko"
    hour: Annotated[int, Field(ge=0, le=23, description="local hour of the tenant")] = 7


@router.get("")
def schedules(plant: PlantDep, _p: CentreOnly) -> dict:
    return {"schedules": list_schedules(plant)}


@router.post("", status_code=201)
def create(body: ScheduleIn, plant: PlantDep, _p: CentreOnly) -> dict:
    try:
        sid = add_schedule(plant, body.tenant, body.kind, body.recipients, body.lang, body.line, body.hour)
    except LookupError:
        raise HTTPException(status_code=404, detail=f"no tenant {body.tenant!r}") from None
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return {"id": sid}


class ScheduleChange(BaseModel):
    """What a schedule's owner may change; what it reports (tenant, line, kind) stays: add a new one for that."""
    model_config = ConfigDict(extra="forbid")
    recipients: Annotated[list[Annotated[str, Field(max_length=254)]] | None, Field(min_length=1, max_length=50)] = None
    lang: Literal["ko", "en"] | None = None
    hour: Annotated[int | None, Field(ge=0, le=23, description="local hour of the tenant")] = None
    active: Annotated[bool | None, Field(description="false pauses it and keeps its send records")] = None


@router.patch("/{schedule_id}")
def change(schedule_id: Annotated[int, Path(ge=1)], body: ScheduleChange, plant: PlantDep, _p: CentreOnly) -> dict:
    try:
        return update_schedule(plant, schedule_id, **body.model_dump(exclude_none=True))
    except LookupError:
        raise HTTPException(status_code=404, detail="not found") from None
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None


@router.delete("/{schedule_id}")
def delete(schedule_id: Annotated[int, Path(ge=1)], plant: PlantDep, _p: CentreOnly) -> dict:
    """Delete a schedule and its send records; to stop it but keep the records, PATCH ``{"active": false}``."""
    try:
        return {"deleted": schedule_id, "sends_removed": delete_schedule(plant, schedule_id)}
    except LookupError:
        raise HTTPException(status_code=404, detail="not found") from None


@router.get("/sends")
def sends(plant: PlantDep, _p: CentreOnly, schedule: Annotated[int | None, Query(ge=1)] = None) -> dict:
    """Every send recorded: key, status (pending, sending, sent, failed), attempts, recipients, time, error."""
    return {"sends": list_sends(plant, schedule)}

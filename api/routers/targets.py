"""The rollout plan's target KPIs per SME (달성률 on the report): list and set.

The app-wide ``authorise`` keeps each tenant to its own targets (the path parameter is named
``tenant``); centre roles and the SME owner may set them.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from api.access import SmeWriter
from api.services import PlantDep
from plantmodel import targets

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/targets", tags=["targets"])


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kpi: Annotated[str, Field(max_length=64, examples=["output_per_hour"])]
    change_pct: Annotated[float, Field(description="declared change, signed: +10 = up 10%, -20 = down 20%")]
    line: Annotated[str | None, Field(max_length=64, description="a line slug; none = every line")] = None
    note: Annotated[str | None, Field(max_length=200)] = None


class TargetsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    targets: Annotated[list[TargetIn], Field(max_length=100)]
    replace: Annotated[bool, Field(description="remove the tenant's targets not listed")] = False


@router.get("/{tenant}")
def list_targets(tenant: str, plant: PlantDep) -> dict:
    """The tenant's declared targets."""
    try:
        return {"tenant": tenant, "targets": targets.list_targets(plant, tenant)}
    except LookupError:
        raise HTTPException(status_code=404, detail="not found") from None


@router.put("/{tenant}")
def set_targets(tenant: str, body: TargetsIn, plant: PlantDep, principal: SmeWriter) -> dict:
    """Create or update targets by (line, kpi): all are checked first, and all are stored or none (422 says which)."""
    try:
        out = targets.set_targets(plant, tenant, [t.model_dump() for t in body.targets], body.replace)
    except LookupError:
        raise HTTPException(status_code=404, detail="not found") from None
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    log.info("targets_set tenant=%s count=%d by=%s", tenant, len(out), principal.username)
    return {"tenant": tenant, "targets": out}

"""The plant trees (tenant → sites → lines → machines) a caller may see."""

from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, Response
from sqlalchemy import select

from api.access import CurrentPrincipal, Principal
from api.services import PlantDep, ServicesDep
from plantmodel.db import PlantDb, Tenant

router = APIRouter(prefix="/api/v1", tags=["plant"])


def tenant_tree(t: Tenant) -> dict:
    return {
        "tenant": t.slug, "name": t.name, "name_en": t.name_en, "timezone": t.timezone,
        "rollout_date": t.rollout_date.isoformat() if t.rollout_date else None,
        "sites": [{"site": s.slug, "name": s.name, "name_en": s.name_en, "lines": [
            {"line": ln.slug, "name": ln.name, "name_en": ln.name_en,
             "shifts": [{"name": x.name, "start": f"{x.start_minute // 60:02d}:{x.start_minute % 60:02d}",
                         "end": f"{x.end_minute // 60:02d}:{x.end_minute % 60:02d}", "weekdays": x.weekdays}
                        for x in ln.shifts],
             "machines": [{"machine": m.slug, "name": m.name, "name_en": m.name_en, "ideal_cycle_s": m.ideal_cycle_s,
                           "rollout_date": m.rollout_date.isoformat() if m.rollout_date else None,
                           "gateway": m.gateway.username if m.gateway else None} for m in ln.machines]}
            for ln in s.lines]} for s in t.sites],
    }


def _trees(plant: PlantDb, principal: Principal) -> list[dict]:
    with plant.session() as s:
        return [tenant_tree(t) for t in s.scalars(select(Tenant).order_by(Tenant.slug)) if principal.sees(t.slug)]


@router.get("/tenants", response_model=list[dict])
async def tenants(principal: CurrentPrincipal, services: ServicesDep) -> Response:
    """The plant trees the caller may see; every page load asks, so answers are shared for 5 s per worker."""
    key = ("*",) if principal.visible is None else tuple(sorted(principal.visible))
    body = await services.tenant_trees.get(key, lambda: json.dumps(_trees(services.plant, principal),
                                                                     separators=(",", ":"), ensure_ascii=False).encode())
    return Response(body, media_type="application/json")


@router.get("/tenants/{tenant}")
def tenant_detail(tenant: str, plant: PlantDep) -> dict:
    with plant.session() as s:
        t = s.scalars(select(Tenant).filter_by(slug=tenant)).first()
        if t is None:
            raise HTTPException(status_code=404, detail="not found")
        return tenant_tree(t)

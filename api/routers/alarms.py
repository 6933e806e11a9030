"""Alarms (list, acknowledge) and the alarm rules behind them (list, choices, add, edit, delete)."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path as PathParam, Query, Response
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from api import alarmrules
from api.access import Acker, SmeWriter
from api.alarmrules import RuleIn
from api.alarms import OPS, clear_open_alarms
from api.live import alarms_of
from api.services import PlantDep, Services, ServicesDep, StoreDep
from plant import IDENTIFIER_PATTERN, MachineRef
from plantmodel.db import Alarm, AlarmRule, Machine
from plantmodel.scoping import alarm_in_tenant

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["alarms"])
# ids are 32-bit columns: a larger one is a 422 here, not a 500 from PostgreSQL ("integer out of range")
RowId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
SiteQ = Annotated[str | None, Query(pattern=IDENTIFIER_PATTERN, description="only this site")]
LineQ = Annotated[str | None, Query(pattern=IDENTIFIER_PATTERN, description="only this line")]
Statuses = Annotated[list[Literal["active", "acknowledged", "cleared"]], Query()]


@router.get("/alarms/{tenant}", response_model=list[dict])
async def list_alarms(tenant: str, services: ServicesDep,
                      status: Statuses = ["active", "acknowledged"]) -> Response:  # noqa: B006
    """Newest first, at most 200; the answer is shared for half a second (``api.live.RecentAnswers``)."""
    answers = services.alarm_lists
    key = (tenant, tuple(sorted(set(status))))
    body = answers.fresh(key)
    if body is None:
        body = answers.put(key, await run_in_threadpool(alarms_of, services.plant, tenant, tuple(status)))
    return Response(body, media_type="application/json")


@router.post("/alarms/{tenant}/{alarm_id}/ack")
def acknowledge(tenant: str, alarm_id: RowId, services: ServicesDep, principal: Acker) -> dict:
    with services.plant.session() as s, s.begin():
        alarm = s.scalars(alarm_in_tenant(tenant, alarm_id)).first()
        if alarm is None:
            raise HTTPException(status_code=404, detail="not found")
        if alarm.cleared_ms is None and alarm.acknowledged_ms is None:
            alarm.acknowledged_ms = int(time.time() * 1000)
            alarm.acknowledged_by = principal.username
        status = alarm.status
    services.live_views_changed(tenant)
    log.info("alarm_acknowledged id=%s tenant=%s by=%s", alarm_id, tenant, principal.username)
    return {"id": alarm_id, "status": status}


def _states(services: Services, tenant: str) -> dict[int, str]:
    return {d.code: d.name for d in services.analytics.get().policy(tenant).states}


def _checked(s, services: Services, tenant: str, body: RuleIn, rule_id: int | None = None) -> tuple[Machine, list[str]]:
    machine = alarmrules.find_machine(s, tenant, body.site, body.line, body.machine)
    if machine is None:
        raise HTTPException(status_code=404, detail=f"no machine {body.site}/{body.line}/{body.machine} "
                                                    f"in tenant {tenant}")
    tags = alarmrules.machine_tags(services.store, MachineRef(tenant, body.site, body.line, body.machine))
    errors, warnings = alarmrules.check_rule(body, tags, _states(services, tenant),
                                             alarmrules.taken_names(s, machine.id, rule_id))
    if errors:
        log.info("alarm_rule_refused tenant=%s rule=%s fields=%s", tenant, rule_id,
                 ",".join(e["loc"][-1] for e in errors))
    alarmrules.raise_if(errors)
    return machine, warnings


@router.get("/alarm-rules/{tenant}")
def list_rules(tenant: str, plant: PlantDep, site: SiteQ = None, line: LineQ = None) -> list[dict]:
    """The tenant's rules (deleted ones are not listed), with how many alarms each has open."""
    with plant.session() as s:
        return alarmrules.list_rules(s, tenant, site, line)


@router.get("/alarm-rules/{tenant}/choices")
def rule_choices(tenant: str, services: ServicesDep, store: StoreDep, site: SiteQ = None,
                 line: LineQ = None) -> dict:
    """What a rule may name: operators, the tenant's state codes, and per machine the tags it reports
    (``null`` while it has reported nothing)."""
    with services.plant.session() as s:
        machines = alarmrules.tenant_machines(s, tenant, site, line)
    out = []
    for m, site_slug, line_slug in machines:
        tags = alarmrules.machine_tags(store, MachineRef(tenant, site_slug, line_slug, m.slug))
        out.append({"site": site_slug, "line": line_slug, "machine": m.slug, "name": m.name, "name_en": m.name_en,
                    "tags": None if tags.tags is None else [{"tag": t, "numeric": n}
                                                            for t, n in sorted(tags.tags.items())]})
    return {"ops": list(OPS), "states": [{"code": c, "name": n} for c, n in sorted(_states(services, tenant).items())],
            "machines": out}


@router.post("/alarm-rules/{tenant}", status_code=201)
def add_rule(tenant: str, body: RuleIn, services: ServicesDep, principal: SmeWriter) -> dict:
    """Add a rule; 422 names each field that is wrong and how to fix it."""
    with services.plant.session() as s, s.begin():
        machine, warnings = _checked(s, services, tenant, body)
        rule = AlarmRule(**alarmrules.condition(body, machine.id))
        s.add(rule)
        s.flush()
        out = alarmrules.rule_out(rule, body.site, body.line, body.machine, 0)
    log.info("alarm_rule_added tenant=%s id=%s machine=%s/%s/%s kind=%s tag=%s by=%s", tenant, out["id"],
             body.site, body.line, body.machine, body.kind, body.tag, principal.username)
    services.live_views_changed(tenant)
    return {**out, "warnings": warnings}


@router.put("/alarm-rules/{tenant}/{rule_id}")
def update_rule(tenant: str, rule_id: RowId, body: RuleIn, services: ServicesDep, principal: SmeWriter) -> dict:
    """Replace a rule. If what it tests changes, its open alarms are cleared (reason ``rule_changed``)
    and the engine evaluates the new condition on its next tick; a rename keeps them."""
    now = int(time.time() * 1000)
    with services.plant.session() as s, s.begin():
        rule = alarmrules.find_rule(s, tenant, rule_id)
        if rule is None:
            raise HTTPException(status_code=404, detail="not found")
        machine, warnings = _checked(s, services, tenant, body, rule_id)
        new = alarmrules.condition(body, machine.id)
        condition_changed = any(getattr(rule, f) != new[f] for f in alarmrules.CONDITION_FIELDS)
        for k, v in new.items():
            setattr(rule, k, v)
        cleared = clear_open_alarms(s, rule.id, "rule_changed", principal.username, now) if condition_changed else 0
        s.flush()
        still_open = s.scalar(select(func.count()).select_from(Alarm)
                              .where(Alarm.rule_id == rule.id, Alarm.cleared_ms.is_(None)))
        out = alarmrules.rule_out(rule, body.site, body.line, body.machine, still_open or 0)
    log.info("alarm_rule_updated tenant=%s id=%s condition_changed=%s cleared_alarms=%d by=%s", tenant, rule_id,
             condition_changed, cleared, principal.username)
    services.live_views_changed(tenant)
    return {**out, "cleared_alarms": cleared, "warnings": warnings}


@router.delete("/alarm-rules/{tenant}/{rule_id}")
def delete_rule(tenant: str, rule_id: RowId, services: ServicesDep, principal: SmeWriter) -> dict:
    """Delete a rule: its open alarms are cleared (reason ``rule_deleted``); cleared alarms stay in the history."""
    now = int(time.time() * 1000)
    with services.plant.session() as s, s.begin():
        rule = alarmrules.find_rule(s, tenant, rule_id)
        if rule is None:
            raise HTTPException(status_code=404, detail="not found")
        rule.deleted_ms = now
        cleared = clear_open_alarms(s, rule.id, "rule_deleted", principal.username, now)
    log.info("alarm_rule_deleted tenant=%s id=%s cleared_alarms=%d by=%s", tenant, rule_id, cleared,
             principal.username)
    services.live_views_changed(tenant)
    return {"id": rule_id, "deleted": True, "cleared_alarms": cleared}

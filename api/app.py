"""FastAPI application: login, plant model, machine data, line dashboards (live), alarms, centre view.

Every route passes through ``api.access.authorise`` (installed app-wide), so routers mounted
later — ``app.include_router(...)`` in ``create_app`` or by a caller — are authenticated and
tenant-isolated without doing anything themselves: name the tenant path parameter ``tenant``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import time
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from analytics.continuous import RollupMaintainer
from analytics.settings import AnalyticsSettings
from api import access, alarmrules, centre
from plantmodel import orders
from api.access import CurrentPrincipal, Principal, require
from api.alarmrules import RuleIn
from api.alarms import OPS, AlarmEngine, clear_open_alarms
from plantmodel.credentials import hash_password, new_secret, secret_digest, verify_password
from api.leader import Leadership
from api.routers import glossary, history
from api.live import LineNotFound, RecentAnswers, SnapshotCache, alarms_of
from plantmodel.db import (
    Alarm,
    AlarmRule,
    ApiToken,
    Line,
    Machine,
    PlantDb,
    Role,
    Site,
    Tenant,
    User,
    WebSession,
    open_plant,
)
from api.schemas import Health, History, HistoryPoint, LatestValues, Machine as MachineOut, TagValue
from api.settings import ApiSettings
from api.timeparams import iso, parse_every, to_epoch_ms
from plant import IDENTIFIER_PATTERN, MachineRef
from tsstore import StoreRejected, StoreUnavailable, TimeSeriesStore

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("api")
_DUMMY_HASH = hash_password("not-a-real-password")  # keeps unknown-user logins as slow as wrong passwords

SME_WRITERS = (Role.CENTRE_ADMIN, Role.CENTRE_ENGINEER, Role.SME_OWNER)
ACKERS = (Role.CENTRE_ADMIN, Role.CENTRE_ENGINEER, Role.SME_OWNER, Role.SME_OPERATOR)
Acker = Annotated[Principal, Depends(require(*ACKERS))]
SmeWriter = Annotated[Principal, Depends(require(*SME_WRITERS))]
CentreOnly = Annotated[Principal, Depends(require(Role.CENTRE_ADMIN, Role.CENTRE_ENGINEER))]


# Dependencies that only look something up are async: FastAPI runs a sync one in the thread
# pool, a hop that costs more than the lookup under load.
async def get_store(request: Request) -> TimeSeriesStore:
    return request.app.state.store


async def get_plant(request: Request) -> PlantDb:
    return request.app.state.plant


StoreDep = Annotated[TimeSeriesStore, Depends(get_store)]
TagQ = Annotated[str, Query(pattern=IDENTIFIER_PATTERN, description="tag name, e.g. press_force")]
StartQ = Annotated[datetime | None, Query(description="ISO 8601; default: end − 1 h")]
EndQ = Annotated[datetime | None, Query(description="ISO 8601; default: now")]
EveryQ = Annotated[str, Query(description="bucket size such as 10s, 1m, 1h; 'raw' for samples")]
AggQ = Annotated[Literal["mean", "min", "max", "last"], Query()]
PlantDep = Annotated[PlantDb, Depends(get_plant)]
# ids are 32-bit columns: a larger one is a 422 here, not a 500 from PostgreSQL ("integer out of range")
RowId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
SiteQ = Annotated[str | None, Query(pattern=IDENTIFIER_PATTERN, description="only this site")]
LineQ = Annotated[str | None, Query(pattern=IDENTIFIER_PATTERN, description="only this line")]


class Login(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class MeUpdate(BaseModel):
    language: Literal["ko", "en"]


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100)


def _me(p: Principal) -> dict:
    """Who is logged in; ``permissions`` lets the UI show only what the API will allow."""
    permissions = [name for name, roles in (("alarm_rules:write", SME_WRITERS), ("alarms:ack", ACKERS),
                                            ("orders:write", SME_WRITERS)) if p.role in roles]
    return {"username": p.username, "role": p.role.value, "tenant": p.tenant, "language": p.language,
            "permissions": permissions}


def create_app(store: TimeSeriesStore, settings: ApiSettings | None = None, plant: PlantDb | None = None,
               run_alarms: bool = True, leader_lock: Path | None = None,
               rollups: RollupMaintainer | None = None) -> FastAPI:
    """The API app. Background duties (the alarm engine and, when given, the rollup maintainer) run
    unless ``run_alarms`` is false; with ``leader_lock`` only in the worker holding that lock."""
    settings = settings or ApiSettings()
    plant = plant or open_plant(settings.database_url)
    stale_ms = int(settings.stale_after_s * 1000)
    engine = AlarmEngine(plant, store, stale_ms, settings.alarm_interval_s)

    def lead() -> None:
        engine.start()
        if rollups is not None:
            rollups.start()

    def resign() -> None:
        engine.stop()
        if rollups is not None:
            rollups.stop()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        leadership = Leadership(leader_lock, lead, resign) if run_alarms and leader_lock is not None else None
        app.state.leadership = leadership
        if leadership is not None:
            leadership.start()
        elif run_alarms:
            lead()
        try:
            yield
        finally:
            if leadership is not None:
                leadership.stop()
            elif run_alarms:
                resign()

    app = FastAPI(
        title="smartfactory API",
        version="0.2.0",
        description="Live machine data from the shop floor, per tenant. Log in (POST /api/v1/auth/login) or send "
        "'Authorization: Bearer <token>'. Times are epoch milliseconds or ISO 8601 (UTC).",
        dependencies=[Depends(access.authorise)],
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.plant = plant
    app.state.settings = settings
    app.state.alarms = engine
    app.state.snapshots = SnapshotCache(plant, store, stale_ms)
    app.state.alarm_lists = RecentAnswers()
    app.state.tenant_trees = RecentAnswers(ttl_s=5.0)  # the plant model changes rarely (seed, admin)
    app.state.principals = access.PrincipalCache()
    app.state.login_throttle = access.LoginThrottle()

    @app.exception_handler(StoreUnavailable)
    async def _store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": f"time-series store unavailable: {exc}"})

    @app.exception_handler(LineNotFound)
    async def _no_line(request: Request, exc: LineNotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    app.include_router(_session_routes(settings))
    app.include_router(_machine_routes(settings))
    app.include_router(_dashboard_routes())
    app.include_router(_alarm_routes())
    app.include_router(_centre_routes(stale_ms))
    app.include_router(_order_routes())
    _mount_optional_routers(app)
    app.include_router(history.router)  # machine page and range picker (api/routers/history.py)
    app.include_router(glossary.router)  # the reports' labels for the page

    @app.get("/health", response_model=Health, tags=["operations"], **access.public())
    def health(store: StoreDep) -> JSONResponse:
        try:
            store.ping()
        except StoreUnavailable as exc:
            return JSONResponse(status_code=503, content={"status": "degraded", "store": "unavailable", "detail": str(exc)})
        return JSONResponse(content={"status": "ok", "store": "ok", "detail": None})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False, **access.public())
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    return app


def _mount_optional_routers(app: FastAPI) -> None:
    """Routers other packages provide (reports); authorise applies to them like to ours."""
    try:
        from api import reports  # type: ignore[attr-defined]
    except ImportError:
        return
    router = getattr(reports, "router", None)
    if router is not None:
        app.include_router(router)


# -- login, sessions, tokens ------------------------------------------------------------------

def _session_routes(settings: ApiSettings) -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["identity"])

    @r.post("/auth/login", **access.public())
    def login(body: Login, request: Request, response: Response, plant: PlantDep) -> dict:
        throttle: access.LoginThrottle = request.app.state.login_throttle
        wait_s = throttle.blocked_for(body.username)
        if wait_s > 0:
            log.warning("login_throttled user=%r retry_after_s=%.0f", body.username, wait_s)
            raise HTTPException(status_code=429, detail=f"too many failed logins for this user: try again in "
                                                        f"{wait_s:.0f} s", headers={"Retry-After": f"{wait_s:.0f}"})
        with plant.session() as s, s.begin():
            user = s.scalars(select(User).filter_by(username=body.username)).first()
            ok = verify_password(user.password_hash if user else _DUMMY_HASH, body.password)
            if not user or not ok or not user.active:
                throttle.failed(body.username)
                log.info("login_failed user=%r", body.username)
                raise HTTPException(status_code=401, detail="wrong username or password")
            throttle.succeeded(body.username)
            secret = new_secret()
            expires = int((time.time() + settings.session_hours * 3600) * 1000)
            s.add(WebSession(token_hash=secret_digest(secret), user_id=user.id, expires_ms=expires))
            principal = access.principal_for_user(user)
        response.set_cookie(access.SESSION_COOKIE, secret, max_age=int(settings.session_hours * 3600), httponly=True,
                            samesite="strict", secure=settings.secure_cookies, path="/")
        log.info("login user=%s role=%s", principal.username, principal.role.value)
        return _me(principal)

    @r.post("/auth/logout")
    def logout(request: Request, response: Response, plant: PlantDep) -> dict:
        cookie = request.cookies.get(access.SESSION_COOKIE)
        request.app.state.principals.forget(cookie)
        if cookie:
            with plant.session() as s, s.begin():
                for row in s.scalars(select(WebSession).filter_by(token_hash=secret_digest(cookie))):
                    s.delete(row)
        response.delete_cookie(access.SESSION_COOKIE, path="/")
        return {"status": "logged out"}

    @r.get("/me")
    async def me(principal: CurrentPrincipal) -> dict:
        return _me(principal)

    @r.patch("/me")
    def update_me(body: MeUpdate, request: Request, principal: CurrentPrincipal, plant: PlantDep) -> dict:
        request.app.state.principals.forget(request.cookies.get(access.SESSION_COOKIE))
        with plant.session() as s, s.begin():
            user = s.scalars(select(User).filter_by(username=principal.username)).one()
            user.language = body.language
        return {**_me(principal), "language": body.language}

    @r.post("/me/tokens", status_code=201)
    def new_token(body: TokenRequest, principal: CurrentPrincipal, plant: PlantDep) -> dict:
        secret = new_secret()
        with plant.session() as s, s.begin():
            user = s.scalars(select(User).filter_by(username=principal.username)).one()
            s.add(ApiToken(token_hash=secret_digest(secret), user_id=user.id, name=body.name,
                           created_ms=int(time.time() * 1000)))
        return {"name": body.name, "token": secret, "note": "shown once; send as 'Authorization: Bearer <token>'"}

    return r


# -- plant model and machine data -------------------------------------------------------------

def _machine_ref(tenant: str, site: str, line: str, machine: str) -> MachineRef:
    try:
        return MachineRef(tenant, site, line, machine)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None


def _tenant_tree(t: Tenant) -> dict:
    return {
        "tenant": t.slug, "name": t.name, "timezone": t.timezone,
        "rollout_date": t.rollout_date.isoformat() if t.rollout_date else None,
        "sites": [{"site": s.slug, "name": s.name, "lines": [
            {"line": ln.slug, "name": ln.name,
             "shifts": [{"name": x.name, "start": f"{x.start_minute // 60:02d}:{x.start_minute % 60:02d}",
                         "end": f"{x.end_minute // 60:02d}:{x.end_minute % 60:02d}", "weekdays": x.weekdays}
                        for x in ln.shifts],
             "machines": [{"machine": m.slug, "name": m.name, "ideal_cycle_s": m.ideal_cycle_s,
                           "rollout_date": m.rollout_date.isoformat() if m.rollout_date else None,
                           "gateway": m.gateway.username if m.gateway else None} for m in ln.machines]}
            for ln in s.lines]} for s in t.sites],
    }


def _machine_routes(settings: ApiSettings) -> APIRouter:
    r = APIRouter(prefix="/api/v1")

    def _trees(plant: PlantDb, principal: Principal) -> list[dict]:
        with plant.session() as s:
            return [_tenant_tree(t) for t in s.scalars(select(Tenant).order_by(Tenant.slug)) if principal.sees(t.slug)]

    @r.get("/tenants", tags=["plant"], response_model=list[dict])
    async def tenants(request: Request, principal: CurrentPrincipal, plant: PlantDep) -> Response:
        """The plant trees the caller may see; every page load asks, so answers are shared for 5 s per worker."""
        answers: RecentAnswers = request.app.state.tenant_trees
        key = ("*",) if principal.visible is None else tuple(sorted(principal.visible))
        body = answers.fresh(key) or answers.put(key, await run_in_threadpool(_trees, plant, principal))
        return Response(body, media_type="application/json")

    @r.get("/tenants/{tenant}", tags=["plant"])
    def tenant_detail(tenant: str, plant: PlantDep) -> dict:
        with plant.session() as s:
            t = s.scalars(select(Tenant).filter_by(slug=tenant)).first()
            if t is None:
                raise HTTPException(status_code=404, detail="not found")
            return _tenant_tree(t)

    @r.get("/machines", response_model=list[MachineOut], tags=["machines"])
    def list_machines(principal: CurrentPrincipal, store: StoreDep) -> list[MachineOut]:
        return [MachineOut(**m.as_dict()) for m in store.machines() if principal.sees(m.tenant)]

    base = "/machines/{tenant}/{site}/{line}/{machine}"

    @r.get(base + "/latest", response_model=LatestValues, tags=["machines"])
    def latest(tenant: str, site: str, line: str, machine: str, store: StoreDep) -> LatestValues:
        ref = _machine_ref(tenant, site, line, machine)
        values = store.latest(ref)
        if not values and ref not in store.machines():
            raise HTTPException(status_code=404, detail=f"no data for machine {ref}")
        return LatestValues(
            machine=MachineOut(**ref.as_dict()),
            values={k: TagValue(ts=v.ts_ms, time=iso(v.ts_ms), value=v.value) for k, v in sorted(values.items())},
        )

    def _history(ref: MachineRef, store: TimeSeriesStore, tag: str, start: datetime | None, end: datetime | None,
                 every: str, agg: str, limit: int) -> tuple[int, int, int, list]:
        try:
            every_ms = parse_every(every)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        end_ms = to_epoch_ms(end) if end else int(time.time() * 1000)
        start_ms = to_epoch_ms(start) if start else end_ms - 3_600_000
        if start_ms >= end_ms:
            raise HTTPException(status_code=422, detail=f"start ({iso(start_ms)}) must be before end ({iso(end_ms)})")
        if every_ms and (end_ms - start_ms) // every_ms > limit:
            raise HTTPException(
                status_code=422,
                detail=f"{(end_ms - start_ms) // every_ms} buckets exceed the limit of {limit}: "
                "choose a larger 'every' or a shorter range",
            )
        try:
            rows = store.history(ref, tag, start_ms, end_ms, every_ms, agg)
        except StoreRejected as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        if every_ms == 0 and len(rows) > limit:
            raise HTTPException(
                status_code=422,
                detail=f"{len(rows)} raw samples exceed the limit of {limit}: downsample with every=",
            )
        return start_ms, end_ms, every_ms, rows

    @r.get(base + "/history", response_model=History, tags=["machines"])
    def history(tenant: str, site: str, line: str, machine: str, store: StoreDep, tag: TagQ, start: StartQ = None,
                end: EndQ = None, every: EveryQ = "1m", agg: AggQ = "mean") -> History:
        ref = _machine_ref(tenant, site, line, machine)
        start_ms, end_ms, every_ms, rows = _history(ref, store, tag, start, end, every, agg, settings.max_points)
        return History(machine=MachineOut(**ref.as_dict()), tag=tag, start=iso(start_ms), end=iso(end_ms),
                       every_ms=every_ms, agg=agg, points=[HistoryPoint(ts=ts, value=v) for ts, v in rows])

    @r.get(base + "/export.csv", tags=["machines"], response_class=Response)
    def export_csv(tenant: str, site: str, line: str, machine: str, store: StoreDep, tag: TagQ, start: StartQ = None,
                   end: EndQ = None, every: EveryQ = "1m", agg: AggQ = "mean") -> Response:
        """The same data as /history, as CSV for spreadsheets."""
        ref = _machine_ref(tenant, site, line, machine)
        _, _, _, rows = _history(ref, store, tag, start, end, every, agg, settings.max_points)
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["time", "ts_ms", "tenant", "site", "line", "machine", tag])
        for ts, v in rows:
            w.writerow([iso(ts), ts, tenant, site, line, machine, v])
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{machine}-{tag}.csv"'})

    return r


# -- line dashboards, live ---------------------------------------------------------------------

def _dashboard_routes() -> APIRouter:
    r = APIRouter(prefix="/api/v1/lines/{tenant}/{site}/{line}", tags=["dashboards"])

    @r.get("/dashboard", response_class=Response)
    async def line_dashboard(tenant: str, site: str, line: str, request: Request) -> Response:
        """The line's snapshot (the same JSON the events stream sends)."""
        cache: SnapshotCache = request.app.state.snapshots
        hit = cache.fresh(tenant, site, line)  # most requests: a snapshot under half a second old, no thread hop
        _, body = hit or await run_in_threadpool(cache.get_with_json, tenant, site, line)
        return Response(body, media_type="application/json")

    @r.get("/events")
    async def line_events(tenant: str, site: str, line: str, request: Request) -> StreamingResponse:
        """Server-sent events: the dashboard snapshot whenever it changes (checked twice a second)."""
        cache: SnapshotCache = request.app.state.snapshots
        first = await run_in_threadpool(cache.get_with_json, tenant, site, line)  # 404 before the stream starts

        principals: access.PrincipalCache = request.app.state.principals
        cookie, authorization = request.cookies.get(access.SESSION_COOKIE), request.headers.get("authorization")

        async def stream():
            snap, sent, last_beat = first, None, time.monotonic()
            last_auth = time.monotonic()
            while not await request.is_disconnected():
                if time.monotonic() - last_auth > 5:  # a logout or an expired session ends the stream within seconds
                    last_auth = time.monotonic()
                    if await run_in_threadpool(principals.get, request.app.state.plant, cookie, authorization) is None:
                        yield "event: logout\ndata: {}\n\n"
                        return
                if snap[0]["version"] != sent:
                    sent = snap[0]["version"]
                    yield b"event: snapshot\ndata: " + snap[1] + b"\n\n"
                elif time.monotonic() - last_beat > 15:
                    yield ": keep-alive\n\n"
                    last_beat = time.monotonic()
                await asyncio.sleep(0.5)
                try:
                    snap = await run_in_threadpool(cache.get_with_json, tenant, site, line)
                except StoreUnavailable as exc:
                    yield f"event: error\ndata: {json.dumps({'detail': str(exc)})}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return r


# -- alarms ------------------------------------------------------------------------------------

def _alarm_routes() -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["alarms"])

    @r.get("/alarms/{tenant}", response_model=list[dict])
    async def list_alarms(tenant: str, request: Request, plant: PlantDep,
                          status: Annotated[list[Literal["active", "acknowledged", "cleared"]], Query()] = ["active", "acknowledged"]) -> Response:  # noqa: B006
        """Newest first, at most 200; the answer is shared for half a second (``api.live.RecentAnswers``)."""
        answers: RecentAnswers = request.app.state.alarm_lists
        key = (tenant, tuple(sorted(set(status))))
        body = answers.fresh(key)
        if body is None:
            body = answers.put(key, await run_in_threadpool(alarms_of, plant, tenant, tuple(status)))
        return Response(body, media_type="application/json")

    @r.post("/alarms/{tenant}/{alarm_id}/ack")
    def acknowledge(tenant: str, alarm_id: RowId, request: Request, plant: PlantDep, principal: Acker) -> dict:
        with plant.session() as s, s.begin():
            row = s.execute(select(Alarm, Tenant.slug).select_from(Alarm).join(AlarmRule, Alarm.rule_id == AlarmRule.id)
                            .join(Machine, AlarmRule.machine_id == Machine.id).join(Line, Machine.line_id == Line.id).join(Site, Line.site_id == Site.id).join(Tenant, Site.tenant_id == Tenant.id)
                            .where(Alarm.id == alarm_id, Tenant.slug == tenant)).first()
            if row is None:
                raise HTTPException(status_code=404, detail="not found")
            alarm = row[0]
            if alarm.cleared_ms is None and alarm.acknowledged_ms is None:
                alarm.acknowledged_ms = int(time.time() * 1000)
                alarm.acknowledged_by = principal.username
            status = alarm.status
        request.app.state.snapshots.invalidate(tenant)
        request.app.state.alarm_lists.invalidate(tenant)
        request.app.state.alarms.revision += 1
        log.info("alarm_acknowledged id=%s tenant=%s by=%s", alarm_id, tenant, principal.username)
        return {"id": alarm_id, "status": status}

    def _changed(request: Request, tenant: str) -> None:
        """Live views show the rule's alarms as they now are at once, not after the snapshot's ttl."""
        request.app.state.snapshots.invalidate(tenant)
        request.app.state.alarm_lists.invalidate(tenant)
        request.app.state.alarms.revision += 1

    def _states(request: Request, tenant: str) -> dict[int, str]:
        settings = getattr(request.app.state, "analytics", None) or AnalyticsSettings()
        return {d.code: d.name for d in settings.policy(tenant).states}

    def _checked(s, request: Request, store: TimeSeriesStore, tenant: str, body: RuleIn,
                 rule_id: int | None = None) -> tuple[Machine, list[str]]:
        machine = alarmrules.find_machine(s, tenant, body.site, body.line, body.machine)
        if machine is None:
            raise HTTPException(status_code=404, detail=f"no machine {body.site}/{body.line}/{body.machine} "
                                                        f"in tenant {tenant}")
        tags = alarmrules.machine_tags(store, MachineRef(tenant, body.site, body.line, body.machine))
        errors, warnings = alarmrules.check_rule(body, tags, _states(request, tenant),
                                                 alarmrules.taken_names(s, machine.id, rule_id))
        if errors:
            log.info("alarm_rule_refused tenant=%s rule=%s fields=%s", tenant, rule_id,
                     ",".join(e["loc"][-1] for e in errors))
        alarmrules.raise_if(errors)
        return machine, warnings

    @r.get("/alarm-rules/{tenant}")
    def list_rules(tenant: str, plant: PlantDep, site: SiteQ = None, line: LineQ = None) -> list[dict]:
        """The tenant's rules (deleted ones are not listed), with how many alarms each has open."""
        with plant.session() as s:
            return alarmrules.list_rules(s, tenant, site, line)

    @r.get("/alarm-rules/{tenant}/choices")
    def rule_choices(tenant: str, request: Request, plant: PlantDep, store: StoreDep, site: SiteQ = None,
                     line: LineQ = None) -> dict:
        """What a rule may name: operators, the tenant's state codes, and per machine the tags it reports
        (``null`` while it has reported nothing)."""
        with plant.session() as s:
            machines = alarmrules.tenant_machines(s, tenant, site, line)
        out = []
        for m, site_slug, line_slug in machines:
            tags = alarmrules.machine_tags(store, MachineRef(tenant, site_slug, line_slug, m.slug))
            out.append({"site": site_slug, "line": line_slug, "machine": m.slug, "name": m.name,
                        "tags": None if tags.tags is None else [{"tag": t, "numeric": n}
                                                                for t, n in sorted(tags.tags.items())]})
        return {"ops": list(OPS), "states": [{"code": c, "name": n} for c, n in sorted(_states(request, tenant).items())],
                "machines": out}

    @r.post("/alarm-rules/{tenant}", status_code=201)
    def add_rule(tenant: str, body: RuleIn, request: Request, plant: PlantDep, store: StoreDep,
                 principal: SmeWriter) -> dict:
        """Add a rule; 422 names each field that is wrong and how to fix it."""
        with plant.session() as s, s.begin():
            machine, warnings = _checked(s, request, store, tenant, body)
            rule = AlarmRule(**alarmrules.condition(body, machine.id))
            s.add(rule)
            s.flush()
            out = alarmrules.rule_out(rule, body.site, body.line, body.machine, 0)
        log.info("alarm_rule_added tenant=%s id=%s machine=%s/%s/%s kind=%s tag=%s by=%s", tenant, out["id"],
                 body.site, body.line, body.machine, body.kind, body.tag, principal.username)
        _changed(request, tenant)
        return {**out, "warnings": warnings}

    @r.put("/alarm-rules/{tenant}/{rule_id}")
    def update_rule(tenant: str, rule_id: RowId, body: RuleIn, request: Request, plant: PlantDep, store: StoreDep,
                    principal: SmeWriter) -> dict:
        """Replace a rule. If what it tests changes, its open alarms are cleared (reason ``rule_changed``)
        and the engine evaluates the new condition on its next tick; a rename keeps them."""
        now = int(time.time() * 1000)
        with plant.session() as s, s.begin():
            rule = alarmrules.find_rule(s, tenant, rule_id)
            if rule is None:
                raise HTTPException(status_code=404, detail="not found")
            machine, warnings = _checked(s, request, store, tenant, body, rule_id)
            new = alarmrules.condition(body, machine.id)
            condition_changed = any(getattr(rule, f) != new[f] for f in alarmrules.CONDITION_FIELDS)
            for k, v in new.items():
                setattr(rule, k, v)
            cleared = clear_open_alarms(s, rule.id, "rule_changed", principal.username, now) if condition_changed else 0
            s.flush()
            still_open = s.scalar(select(func.count()).select_from(Alarm)
                                  .where(Alarm.rule_id == rule.id, Alarm.cleared_ms.is_(None)))
            out = alarmrules.rule_out(rule, body.site, body.line, body.machine, still_open)
        log.info("alarm_rule_updated tenant=%s id=%s condition_changed=%s cleared_alarms=%d by=%s", tenant, rule_id,
                 condition_changed, cleared, principal.username)
        _changed(request, tenant)
        return {**out, "cleared_alarms": cleared, "warnings": warnings}

    @r.delete("/alarm-rules/{tenant}/{rule_id}")
    def delete_rule(tenant: str, rule_id: RowId, request: Request, plant: PlantDep, principal: SmeWriter) -> dict:
        """Delete a rule: its open alarms are cleared (reason ``rule_deleted``); cleared alarms stay in the history."""
        now = int(time.time() * 1000)
        with plant.session() as s, s.begin():
            rule = alarmrules.find_rule(s, tenant, rule_id)
            if rule is None:
                raise HTTPException(status_code=404, detail="not found")
            rule.deleted_ms = now
            cleared = clear_open_alarms(s, rule.id, "rule_deleted", principal.username, now)
        log.info("alarm_rule_deleted tenant=%s id=%s cleared_alarms=%d by=%s", tenant, rule_id, cleared,
                 principal.username)
        _changed(request, tenant)
        return {"id": rule_id, "deleted": True, "cleared_alarms": cleared}

    return r


# -- orders (delivery KPIs) --------------------------------------------------------------------

MAX_ORDERS_CSV_BYTES = 20 * 1024 * 1024
_CSV_BODY = {"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}, "example": (
    "order_id,line,product,quantity,ordered,due,completed\n"
    "SO-1001,press-line-1,bracket-a,1200,2026-03-02,2026-03-09,2026-03-06\n"
    "SO-1002,,bracket-b,800,2026-03-03 09:30,2026-03-12,\n")}}}}


def _order_routes() -> APIRouter:
    r = APIRouter(prefix="/api/v1/orders", tags=["orders"])

    @r.post("/{tenant}", openapi_extra=_CSV_BODY)
    async def import_orders(tenant: str, request: Request, plant: PlantDep, principal: SmeWriter) -> dict:
        """Import the ERP's order export (CSV, UTF-8 or CP949): the whole file or, on any problem, nothing (422
        listing each row, column and fix). Orders are upserted by order id. Columns: docs/api.md."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in ("text/csv", "text/plain", "application/csv", "application/octet-stream", ""):
            raise HTTPException(status_code=415, detail=f"send the CSV file itself with Content-Type: text/csv "
                                                        f"(got {kind})")
        body = await request.body()
        if len(body) > MAX_ORDERS_CSV_BYTES:
            raise HTTPException(status_code=413, detail=f"the file is over {MAX_ORDERS_CSV_BYTES // 2**20} MB: split it")
        try:
            out = await run_in_threadpool(orders.import_csv, plant, tenant, body)
        except orders.OrdersRejected as exc:
            raise HTTPException(status_code=422, detail=[p.as_error() for p in exc.problems[:orders.MAX_LISTED_PROBLEMS]]
                                + ([{"type": "orders.more", "loc": ["body"], "msg": f"... and "
                                     f"{len(exc.problems) - orders.MAX_LISTED_PROBLEMS} more problems", "ctx": {}}]
                                   if len(exc.problems) > orders.MAX_LISTED_PROBLEMS else [])) from None
        except LookupError:
            raise HTTPException(status_code=404, detail="not found") from None
        log.info("orders_import_api tenant=%s imported=%d by=%s", tenant, out["imported"], principal.username)
        return out

    @r.get("/{tenant}")
    def list_orders(tenant: str, plant: PlantDep,
                    offset: Annotated[int, Query(ge=0)] = 0,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    status: Annotated[Literal["open", "completed"] | None, Query(description="only open or completed")] = None,
                    line: LineQ = None) -> dict:
        """A page of the tenant's orders, latest due date first; ``total`` counts all that match."""
        try:
            return orders.list_orders(plant, tenant, offset, limit, status, line)
        except LookupError:
            raise HTTPException(status_code=404, detail="not found") from None

    return r


# -- centre view -------------------------------------------------------------------------------

def _centre_routes(stale_ms: int) -> APIRouter:
    r = APIRouter(prefix="/api/v1/centre", tags=["centre"])
    cache: dict[str, tuple[float, list]] = {}

    @r.get("/overview")
    def overview(request: Request, plant: PlantDep, store: StoreDep, _p: CentreOnly) -> dict:
        """Every tenant: rollout, machines, gateways online (a machine it reads reported recently), data coverage.

        Coverage comes from the hourly rollups (``api.centre``); the answer is kept 30 s per worker.
        Report gains come from /api/v1/reports/portfolio (api/reports.py); the centre page joins the two.
        """
        hit = cache.get("o")
        if hit and time.monotonic() - hit[0] < 30:
            return {"tenants": hit[1]}
        from api.reports import analytics_settings

        out = centre.overview(plant, store, getattr(request.app.state, "rollup_cache", None),
                              analytics_settings(request), int(time.time() * 1000), stale_ms)
        cache["o"] = (time.monotonic(), out)
        return {"tenants": out}

    return r

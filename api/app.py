"""FastAPI application: wiring only. The routes live in ``api/routers/``, one module an area.

Every route passes through ``api.access.authorise`` (installed app-wide), so routers mounted
here or later by a caller are authenticated and tenant-isolated without doing anything
themselves: name the tenant path parameter ``tenant``. Handlers get what they use (store,
plant database, settings, caches, the alarm engine) as one typed ``api.services.Services``.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from analytics.continuous import RollupMaintainer
from analytics.rollup import RollupCache
from analytics.settings import AnalyticsSettings
from api import access, apidocs, csrf, security_headers, validation
from api.access import PrincipalCache
from api.alarms import AlarmEngine
from api.answerstore import AnswerStore
from api.centre import STATUS_TTL_S, CentreSummaries
from api.leader import LeaderLock, Leadership
from api.follow import Follows
from api.live import LineNotFound, SnapshotCache
from api.routers import (accounts, alarms, centre, dashboards, glossary, history, machines, orders, pages, plant, reports,
                         schedules, session, targets)
from api.routers.pages import STATIC
from api.services import EffectiveAnalytics, Services
from api.settings import ApiSettings
from api.warmup import warm_snapshots
from plantmodel.db import PlantDb, open_plant
from plantmodel.housekeeping import Housekeeper
from plantmodel.throttle import Throttle
from tsstore import StoreUnavailable, TimeSeriesStore

#: Matched in this order, route by route: the machine page's and the line page's routers first, since
#: every request they make otherwise walked past every route of the others (a third of a cached answer's
#: time; bench/api.py). Their prefixes are their own, so the order changes no match.
ROUTERS = (history, dashboards, session, accounts, plant, machines, alarms, centre, orders, reports, targets, schedules,
           glossary, pages)


def create_app(store: TimeSeriesStore, settings: ApiSettings | None = None, plant: PlantDb | None = None,
               run_alarms: bool = True, leader_lock: Path | LeaderLock | None = None,
               rollups: RollupMaintainer | None = None, analytics: AnalyticsSettings | None = None,
               rollup_cache: RollupCache | None = None, delivery=None, warm: bool = False,
               shared_answers: AnswerStore | None = None) -> FastAPI:
    """The API app. Background duties (the alarm engine and, when given, the rollup maintainer) run
    unless ``run_alarms`` is false; with ``leader_lock`` (a lock file, or ``api.leader.PostgresLock``)
    only in the worker holding that lock.

    ``analytics`` is the config's analytics section (tenant policies, rollouts); the plant model
    completes it. ``rollup_cache`` is the one the maintainer fills; without it, the one named by
    ``analytics.cache_path`` is opened, and without that reports compute from the store.
    With ``warm`` (a served API, not tests) each worker computes up to ``settings.warm_lines`` line
    snapshots in the background at start (``api.warmup``); ``shared_answers``: the range answers the
    host's workers share (``api.answerstore``; none in tests: each app computes its own).
    """
    settings = settings or ApiSettings()
    plant_db = plant or open_plant(settings.database_url)
    analytics = analytics or AnalyticsSettings()
    if rollup_cache is None and analytics.cache_path is not None:
        rollup_cache = RollupCache(analytics.cache_path)
    stale_ms = int(settings.stale_after_s * 1000)
    engine = AlarmEngine(plant_db, store, stale_ms, settings.alarm_interval_s)
    housekeeper = Housekeeper(plant_db, settings.retention(), settings.housekeeping_interval_s)
    effective = EffectiveAnalytics(analytics, plant_db)
    # live views follow the tenant's effective analytics policy (tags, counter widths, state classes, stale_s)
    snapshots = SnapshotCache(plant_db, store, lambda tenant: effective.get().policy(tenant))
    summaries = None
    if rollup_cache is not None:  # the maintainer keeps them after each pass; requests read them
        max_age_s = settings.centre_summary_max_age_s
        if max_age_s is None:
            max_age_s = 3 * analytics.rollup_interval_s + 60 if rollup_cache.shared else STATUS_TTL_S
        summaries = CentreSummaries(plant_db, store, rollup_cache, effective.get, stale_ms, settings.centre_gains_ttl_s,
                                    max_age_s=max_age_s)
        if rollups is not None and rollups.after_pass is None:
            rollups.after_pass = summaries.refresh
    services = Services(store=store, plant=plant_db, settings=settings, analytics=effective,
                        alarms=engine, snapshots=snapshots, follows=Follows(snapshots), rollup_cache=rollup_cache,
                        principals=PrincipalCache(settings.credential_cache_s),
                        login_throttle=Throttle(plant_db, settings.throttle_policy()), housekeeper=housekeeper,
                        centre_summaries=summaries, shared_answers=shared_answers)

    # the leader's duties; a leased maintainer with rollups_in_api: every runs in every process (analytics.leases)
    everywhere = [rollups] if rollups is not None and not rollups.needs_leader else []
    duties = [d for d in (rollups, delivery) if d is not None and d not in everywhere]  # delivery: reportmail.Delivery

    def lead() -> None:
        engine.start()
        housekeeper.start()
        for d in duties:
            d.start()

    def resign() -> None:
        engine.stop()
        housekeeper.stop()
        for d in duties:
            d.stop()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        leadership = (Leadership(leader_lock, lead, resign, retry_s=settings.leader_retry_s)
                      if run_alarms and leader_lock is not None else None)
        app.state.leadership = leadership
        if leadership is not None:
            leadership.start()
        elif run_alarms:
            lead()
        if run_alarms:
            for d in everywhere:
                d.start()
        warming = asyncio.get_running_loop().create_task(warm_snapshots(
            plant_db, settings.warm_lines if warm else 0,
            lambda t, s, ln: dashboards.line_snapshot(snapshots, t, s, ln)), name="snapshot warm-up")
        try:
            yield
        finally:
            warming.cancel()
            if run_alarms:
                for d in everywhere:
                    d.stop()
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
        docs_url=None, redoc_url=None, openapi_url=None,  # api.apidocs serves them, from this host
    )
    app.state.services = services
    app.add_middleware(csrf.OriginCheck, trusted_origins=settings.trusted_origins)
    app.add_middleware(security_headers.SecurityHeaders, https=settings.secure_cookies)  # outermost: on every answer
    validation.install(app)
    apidocs.install(app, public=settings.docs_public)

    @app.exception_handler(StoreUnavailable)
    async def _store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": f"time-series store unavailable: {exc}"})

    @app.exception_handler(LineNotFound)
    async def _no_line(request: Request, exc: LineNotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    for module in ROUTERS:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app

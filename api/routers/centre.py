"""The centre engineer's view over every SME: the overview, the portfolio, one SME."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Response
from starlette.concurrency import run_in_threadpool

from api import centre
from api.access import CentreOnly
from api.services import Services, ServicesDep

router = APIRouter(prefix="/api/v1/centre", tags=["centre"])


def _overview(services: Services) -> dict:
    if services.centre_summaries is not None:  # one row per tenant, kept by the rollup maintainer
        return {"tenants": services.centre_summaries.overview()}
    return {"tenants": centre.overview(services.plant, services.store, services.rollup_cache, services.analytics.get(),
                                       int(time.time() * 1000), services.stale_ms)}


@router.get("/overview", response_model=dict)
async def overview(services: ServicesDep, _p: CentreOnly) -> Response:
    """Every tenant: rollout, machines, gateways online (a machine it reads reported recently), data coverage.

    Read from the per-tenant summaries the rollup maintainer keeps (``api.centre.CentreSummaries``; a
    tenant without one is computed once here); active alarms are counted live. Kept 30 s per worker.
    Report gains come from /api/v1/reports/portfolio (api/routers/reports.py); the centre page joins the two.
    """
    answers = services.centre_overview
    body = answers.fresh(("*",)) or answers.put(("*",), await run_in_threadpool(_overview, services))
    return Response(body, media_type="application/json")


def _portfolio(services: Services) -> dict:
    s = services.settings
    if services.centre_summaries is not None:
        return services.centre_summaries.portfolio(s.centre_coverage_floor)
    return services.centre_portfolio.portfolio(services.plant, services.store, services.rollup_cache,
                                               services.analytics.get(), services.stale_ms, s.centre_coverage_floor,
                                               s.centre_gains_ttl_s)


@router.get("/portfolio", response_model=dict)
async def portfolio(services: ServicesDep, _p: CentreOnly) -> dict:
    """Every SME: names, rollout, gateway status, 24 h coverage, active alarms, before/after gains as data
    (the report's labels, signed change, direction of goodness) and the reasons it needs attention.

    Status and gains come from the per-tenant summaries the rollup maintainer keeps (the gains: the
    before/after reports of the configured rollouts, recomputed after ``api.centre_gains_ttl_s``). An SME needs attention with no data, no gateway
    or one offline or never seen, coverage under ``api.centre_coverage_floor``, a headline KPI significantly
    worse, or a report that failed.
    """
    return await run_in_threadpool(_portfolio, services)


def _tenant(services: Services, tenant: str) -> dict:
    row = next((r for r in _portfolio(services)["tenants"] if r["tenant"] == tenant), None)
    out = row and centre.tenant_detail(services.plant, services.store, services.rollup_cache, services.analytics.get(),
                                       services.stale_ms, row)
    if not out:
        raise HTTPException(status_code=404, detail="not found")
    return out


@router.get("/tenants/{tenant}", response_model=dict)
async def tenant(tenant: str, services: ServicesDep, _p: CentreOnly) -> dict:
    """One SME for the centre: its portfolio row, and its sites, lines and machines with state and coverage."""
    return await run_in_threadpool(_tenant, services, tenant)

"""The centre engineer's view over every SME."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from api import centre
from api.access import CentreOnly
from api.services import Services, ServicesDep

router = APIRouter(prefix="/api/v1/centre", tags=["centre"])


def _overview(services: Services) -> dict:
    return {"tenants": centre.overview(services.plant, services.store, services.rollup_cache, services.analytics.get(),
                                       int(time.time() * 1000), services.stale_ms)}


@router.get("/overview", response_model=dict)
async def overview(services: ServicesDep, _p: CentreOnly) -> Response:
    """Every tenant: rollout, machines, gateways online (a machine it reads reported recently), data coverage.

    Coverage comes from the hourly rollups (``api.centre``); the answer is kept 30 s per worker.
    Report gains come from /api/v1/reports/portfolio (api/routers/reports.py); the centre page joins the two.
    """
    answers = services.centre_overview
    body = answers.fresh(("*",)) or answers.put(("*",), await run_in_threadpool(_overview, services))
    return Response(body, media_type="application/json")

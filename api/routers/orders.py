"""Orders from the ERP's export: import (CSV) and list; the delivery KPIs (D of PQCD) read them."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from api import uploads
from api.access import SmeWriter
from api.routers.alarms import LineQ
from api.services import PlantDep
from plantmodel import orders

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/orders", tags=["orders"])
MAX_ORDERS_CSV_BYTES = 20 * 1024 * 1024
_CSV_BODY = {"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}, "example": (
    "order_id,line,product,quantity,ordered,due,completed\n"
    "SO-1001,press-line-1,bracket-a,1200,2026-03-02,2026-03-09,2026-03-06\n"
    "SO-1002,,bracket-b,800,2026-03-03 09:30,2026-03-12,\n")},
    "multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
                                       "required": ["file"]}}}}}


@router.post("/{tenant}", openapi_extra=_CSV_BODY)
async def import_orders(tenant: str, request: Request, plant: PlantDep, principal: SmeWriter) -> dict:
    """Import the ERP's order export (CSV, UTF-8 or CP949): the whole file or, on any problem, nothing (422
    listing each row, column and fix). Orders are upserted by order id. Columns: docs/api.md."""
    body = await uploads.csv_upload(request, MAX_ORDERS_CSV_BYTES)  # text/csv or a form's file, else 415
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


@router.get("/{tenant}")
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

"""What needs no login: the health check and the web UI's page shell (its data needs a login)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse

from api import access
from api.schemas import Health
from api.services import StoreDep
from tsstore import StoreUnavailable

STATIC = Path(__file__).resolve().parent.parent / "static"
router = APIRouter()


@router.get("/health", response_model=Health, tags=["operations"], **access.public())
def health(store: StoreDep) -> JSONResponse:
    try:
        store.ping()
    except StoreUnavailable as exc:
        return JSONResponse(status_code=503, content={"status": "degraded", "store": "unavailable", "detail": str(exc)})
    return JSONResponse(content={"status": "ok", "store": "ok", "detail": None})


@router.get("/", include_in_schema=False, **access.public())
def dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

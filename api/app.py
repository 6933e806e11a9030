"""FastAPI application: machines, latest values, downsampled history, health."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from api.schemas import Health, History, HistoryPoint, LatestValues, Machine, TagValue
from api.settings import ApiSettings
from api.timeparams import iso, parse_every, to_epoch_ms
from plant import IDENTIFIER_PATTERN, MachineRef
from tsstore import StoreRejected, StoreUnavailable, TimeSeriesStore

STATIC = Path(__file__).parent / "static"


def get_store(request: Request) -> TimeSeriesStore:
    return request.app.state.store


StoreDep = Annotated[TimeSeriesStore, Depends(get_store)]


def create_app(store: TimeSeriesStore, settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    app = FastAPI(
        title="smartfactory API",
        version="0.1.0",
        description="Live machine data from the shop floor. Times are epoch milliseconds or ISO 8601 (UTC).",
    )
    app.state.store = store

    @app.exception_handler(StoreUnavailable)
    async def _store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": f"time-series store unavailable: {exc}"})

    def machine_ref(tenant: str, site: str, line: str, machine: str) -> MachineRef:
        try:
            return MachineRef(tenant, site, line, machine)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None

    @app.get("/health", response_model=Health, tags=["operations"])
    def health(store: StoreDep) -> JSONResponse:
        try:
            store.ping()
        except StoreUnavailable as exc:
            return JSONResponse(status_code=503, content={"status": "degraded", "store": "unavailable", "detail": str(exc)})
        return JSONResponse(content={"status": "ok", "store": "ok", "detail": None})

    @app.get("/api/v1/machines", response_model=list[Machine], tags=["machines"])
    def list_machines(store: StoreDep) -> list[Machine]:
        return [Machine(**m.as_dict()) for m in store.machines()]

    base = "/api/v1/machines/{tenant}/{site}/{line}/{machine}"

    @app.get(base + "/latest", response_model=LatestValues, tags=["machines"])
    def latest(tenant: str, site: str, line: str, machine: str, store: StoreDep) -> LatestValues:
        ref = machine_ref(tenant, site, line, machine)
        values = store.latest(ref)
        if not values and ref not in store.machines():
            raise HTTPException(status_code=404, detail=f"no data for machine {ref}")
        return LatestValues(
            machine=Machine(**ref.as_dict()),
            values={k: TagValue(ts=v.ts_ms, time=iso(v.ts_ms), value=v.value) for k, v in sorted(values.items())},
        )

    @app.get(base + "/history", response_model=History, tags=["machines"])
    def history(
        tenant: str,
        site: str,
        line: str,
        machine: str,
        store: StoreDep,
        tag: Annotated[str, Query(pattern=IDENTIFIER_PATTERN, description="tag name, e.g. press_force")],
        start: Annotated[datetime | None, Query(description="ISO 8601; default: end − 1 h")] = None,
        end: Annotated[datetime | None, Query(description="ISO 8601; default: now")] = None,
        every: Annotated[str, Query(description="bucket size such as 10s, 1m, 1h; 'raw' for samples")] = "1m",
        agg: Annotated[Literal["mean", "min", "max", "last"], Query()] = "mean",
    ) -> History:
        ref = machine_ref(tenant, site, line, machine)
        try:
            every_ms = parse_every(every)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        end_ms = to_epoch_ms(end) if end else int(time.time() * 1000)
        start_ms = to_epoch_ms(start) if start else end_ms - 3_600_000
        if start_ms >= end_ms:
            raise HTTPException(status_code=422, detail=f"start ({iso(start_ms)}) must be before end ({iso(end_ms)})")
        if every_ms and (end_ms - start_ms) // every_ms > settings.max_points:
            raise HTTPException(
                status_code=422,
                detail=f"{(end_ms - start_ms) // every_ms} buckets exceed the limit of {settings.max_points}: "
                "choose a larger 'every' or a shorter range",
            )
        try:
            rows = store.history(ref, tag, start_ms, end_ms, every_ms, agg)
        except StoreRejected as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        if every_ms == 0 and len(rows) > settings.max_points:
            raise HTTPException(
                status_code=422,
                detail=f"{len(rows)} raw samples exceed the limit of {settings.max_points}: downsample with every=",
            )
        return History(
            machine=Machine(**ref.as_dict()),
            tag=tag,
            start=iso(start_ms),
            end=iso(end_ms),
            every_ms=every_ms,
            agg=agg,
            points=[HistoryPoint(ts=ts, value=v) for ts, v in rows],
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app

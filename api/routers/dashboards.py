"""Line dashboards: the line's snapshot, and server-sent events whenever it changes."""

from __future__ import annotations

import asyncio
import json
import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api import access
from api.caches import Flights
from api.live import SnapshotCache
from api.services import ServicesDep
from tsstore import StoreUnavailable

router = APIRouter(prefix="/api/v1/lines/{tenant}/{site}/{line}", tags=["dashboards"])
_FIRST: Flights[tuple, tuple[dict, bytes]] = Flights()


async def _snapshot(cache: SnapshotCache, tenant: str, site: str, line: str) -> tuple[dict, bytes]:
    """A line's first snapshot in this worker (a full read, seconds) is computed once while its viewers
    await it on the event loop, holding no request thread; later ones answer at once (fresh, or the
    previous snapshot while one is computed)."""
    if not cache.known(tenant, site, line):
        return await _FIRST.run((id(cache), tenant, site, line), lambda: cache.get_with_json(tenant, site, line))
    return await run_in_threadpool(cache.get_with_json, tenant, site, line)


@router.get("/dashboard", response_class=Response)
async def line_dashboard(tenant: str, site: str, line: str, services: ServicesDep) -> Response:
    """The line's snapshot (the same JSON the events stream sends)."""
    cache = services.snapshots
    hit = cache.fresh(tenant, site, line)  # most requests: a snapshot under half a second old, no thread hop
    if hit is None:
        hit = await _snapshot(cache, tenant, site, line)
    _, body = hit
    return Response(body, media_type="application/json")


@router.get("/events")
async def line_events(tenant: str, site: str, line: str, request: Request, services: ServicesDep) -> StreamingResponse:
    """Server-sent events: the dashboard snapshot whenever it changes (checked twice a second)."""
    cache = services.snapshots
    first = await _snapshot(cache, tenant, site, line)  # 404 before the stream starts
    principals, plant = services.principals, services.plant
    cookie, authorization = request.cookies.get(access.SESSION_COOKIE), request.headers.get("authorization")

    async def stream():
        snap, sent, last_beat = first, None, time.monotonic()
        last_auth = time.monotonic()
        while not await request.is_disconnected():
            if time.monotonic() - last_auth > 5:  # a logout or an expired session ends the stream within seconds
                last_auth = time.monotonic()
                if await run_in_threadpool(principals.get, plant, cookie, authorization) is None:
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

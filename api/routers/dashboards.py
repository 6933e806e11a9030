"""Line dashboards: the line's snapshot, and server-sent events whenever it changes."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api import access
from api.caches import Flights
from api.live import SnapshotCache
from api.services import ServicesDep

router = APIRouter(prefix="/api/v1/lines/{tenant}/{site}/{line}", tags=["dashboards"])
#: Snapshots are computed here, off the request path: two threads, as the range answers (on 2 cores more
#: only take the GIL from the event loop), and one computation per line at a time however many ask.
_COMPUTE = ThreadPoolExecutor(2, thread_name_prefix="snapshot")
_FLIGHTS: Flights[tuple, tuple[dict, bytes]] = Flights(_COMPUTE)
#: A snapshot up to this old is served while the line's next one is computed (stale-while-revalidate):
#: a viewer then waits for no computation, only the line's first one in this worker (or after a pause
#: this long) is awaited. Each computation takes well under a second once the line's feeds are read.
STALE_S = 5.0
#: a stream with nothing new still wakes this often: for its session check, keep-alives and a closed connection
WAKE_S = 1.0


async def line_snapshot(cache: SnapshotCache, tenant: str, site: str, line: str) -> tuple[dict, bytes]:
    """The line's snapshot: fresh (under ``ttl_s``), else the one at hand if under ``STALE_S`` old while the
    next one is computed in the background, else awaited on the event loop (holding no request thread).

    Serving the previous snapshot during a recomputation is what the cache did before too; what this
    changes is that the request that finds it expired no longer computes it in its own thread: with
    a snapshot due every half second per line, those requests (and the thread hops of everyone asking
    meanwhile) were most of the line snapshot's p95 under load (bench/api.py)."""
    hit = cache.fresh(tenant, site, line)  # most requests: a snapshot under half a second old
    if hit is not None:
        return hit
    key = (id(cache), tenant, site, line)
    stale = cache.recent(tenant, site, line, STALE_S)
    if stale is not None:
        _FLIGHTS.start_quietly(key, lambda: cache.get_with_json(tenant, site, line))
        return stale
    return await _FLIGHTS.run(key, lambda: cache.get_with_json(tenant, site, line))


@router.get("/dashboard", response_class=Response)
async def line_dashboard(tenant: str, site: str, line: str, services: ServicesDep) -> Response:
    """The line's snapshot (the same JSON the events stream sends)."""
    _, body = await line_snapshot(services.snapshots, tenant, site, line)
    return Response(body, media_type="application/json")


@router.get("/events")
async def line_events(tenant: str, site: str, line: str, request: Request, services: ServicesDep) -> StreamingResponse:
    """Server-sent events: the dashboard snapshot whenever it changes (the worker's one refresh of the line,
    ``api.follow``, wakes every stream following it)."""
    cache = services.snapshots
    first = await line_snapshot(cache, tenant, site, line)  # 404 before the stream starts
    principals, plant, follows = services.principals, services.plant, services.follows
    cookie, authorization = request.cookies.get(access.SESSION_COOKIE), request.headers.get("authorization")

    async def stream():
        watch = follows.join((tenant, site, line), first)
        try:
            sent, errors = None, watch.errors
            last_beat = last_auth = time.monotonic()
            while not await request.is_disconnected():
                if time.monotonic() - last_auth > 5:  # a logout or an expired session ends the stream within seconds
                    last_auth = time.monotonic()
                    if await run_in_threadpool(principals.get, plant, cookie, authorization) is None:
                        yield "event: logout\ndata: {}\n\n"
                        return
                if watch.gone:
                    return
                if watch.errors != errors:  # the line's refresh failed since the last look (the store is down)
                    errors = watch.errors
                    yield f"event: error\ndata: {json.dumps({'detail': watch.error})}\n\n"
                snap = watch.snap
                if snap[0]["version"] != sent:
                    sent = snap[0]["version"]
                    yield b"event: snapshot\ndata: " + snap[1] + b"\n\n"
                elif time.monotonic() - last_beat > 15:
                    yield ": keep-alive\n\n"
                    last_beat = time.monotonic()
                await watch.wait(WAKE_S)
        finally:
            follows.leave(watch)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

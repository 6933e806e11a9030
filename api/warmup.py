"""A worker's live snapshots computed at start, in the background, before its first viewers ask.

Each API worker keeps its own line snapshots (``api.live.SnapshotCache``): the first one of a
line in a worker reads the line's day of samples (state runs, counters, material input), 1-2 s
for a line of presses sampled every second. After a restart, and on a second worker that the
first viewers' connections did not reach, those first reads were what the first minute's
users waited for (bench/api.py, "start-up": p95 0.6-1.3 s on 2 workers). Here each worker
computes them once at start, one line at a time, through the same single flight a request
takes (a viewer asking meanwhile joins the computation instead of starting another); later
ones are top-ups of what was read. Bounded by ``api.warm_lines``: feeds hold memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api.live import LineNotFound
from plantmodel.db import Line, PlantDb, Site, Tenant
from tsstore import StoreUnavailable

log = logging.getLogger(__name__)

Key = tuple[str, str, str]


def lines_to_warm(plant: PlantDb, limit: int) -> list[Key]:
    """The first ``limit`` lines of the plant model, by tenant, site and line slug (every tenant's)."""
    with plant.session() as s:
        rows = s.execute(select(Tenant.slug, Site.slug, Line.slug).join(Site, Site.tenant_id == Tenant.id)
                         .join(Line, Line.site_id == Site.id)
                         .order_by(Tenant.slug, Site.slug, Line.slug).limit(limit)).all()
    return [(t, s_, ln) for t, s_, ln in rows]


async def warm_snapshots(plant: PlantDb, limit: int, snapshot: Callable[[str, str, str], Awaitable[object]]) -> int:
    """Compute each line's snapshot with ``snapshot`` (the dashboards' own path), one after another;
    returns how many were computed. A line that fails is logged and skipped: warming is only a head start."""
    if limit <= 0:
        return 0
    started = time.monotonic()
    try:
        keys = await run_in_threadpool(lines_to_warm, plant, limit)
    except Exception:  # noqa: BLE001 - the plant database down at start: requests will say so, not this
        log.warning("snapshot_warmup_skipped reason=plant_database_unavailable", exc_info=True)
        return 0
    done = 0
    for key in keys:
        try:
            await snapshot(*key)
            done += 1
        except (LineNotFound, StoreUnavailable) as exc:
            log.info("snapshot_warmup_line_skipped line=%s reason=%s", "/".join(key), exc)
        except Exception:  # noqa: BLE001 - one line's failure must not stop the others' warm-up
            log.exception("snapshot_warmup_line_failed line=%s", "/".join(key))
    log.info("snapshot_warmup_done lines=%d of=%d seconds=%.1f", done, len(keys), time.monotonic() - started)
    return done

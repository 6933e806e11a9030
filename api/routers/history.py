"""A machine's and a line's history for a time range: what the machine page and the range picker show.

State timeline, counters, downtime Pareto and the ISO 22400 KPIs come from the maintained
hourly rollups (``analytics.continuous`` keeps them; ``RollupCache.machine_buckets`` reads
them and computes only the hours not settled yet), the same tallies the reports use, so a
30-day range reads 720 small rows per machine instead of every sample. A timeline for a
range of a day or two is finer than an hour: there the store's own per-minute aggregate
(``state_durations``) gives each minute's dominant state, never raw points.

Tenant isolation: every path carries ``{tenant}``, checked by ``api.access.authorise``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import numpy as np
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from sqlalchemy import select

from analytics import kpi
from analytics.buckets import Buckets
from analytics.report import load
from analytics.states import UNKNOWN
from api.answerstore import AnswerStore
from api.caches import Flights, SettledBuckets, SharedCache
from api.services import Services, ServicesDep
from api.timeparams import iso, to_epoch_ms
from plant import IDENTIFIER_PATTERN, MachineRef
from plantmodel.db import Alarm, AlarmRule, Line, Machine, Site
from plantmodel.scoping import in_tenant

router = APIRouter(prefix="/api/v1/history", tags=["history"])

#: The longest range one request may ask for (422 beyond); api/limits.py, when it lands, holds the common bound.
MAX_RANGE_DAYS = 400
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
#: A timeline finer than the rollups' hour for ranges up to this long (per-minute store aggregate).
FINE_TIMELINE_MS = 2 * DAY
#: About this many points in a tag trend, whatever the range.
TREND_POINTS = 600
_NICE_STEPS_MS = [1000 * s for s in (1, 2, 5, 10, 15, 30)] + [MINUTE * m for m in (1, 2, 5, 10, 15, 30)] + [
    HOUR * h for h in (1, 2, 3, 6, 12)] + [DAY]

StartQ = Annotated[datetime | None, Query(description="ISO 8601 (naive = UTC); default: end − 24 h")]
EndQ = Annotated[datetime | None, Query(description="ISO 8601 (naive = UTC); default: now")]
TagQ = Annotated[str, Query(pattern=IDENTIFIER_PATTERN, description="tag name, e.g. press_force")]


#: Range ends are rounded up to this, so pages opened within the same half minute share one answer.
END_QUANTUM_MS = 30_000
#: ...and those of ranges longer than ``LONG_RANGE_MS`` to this, and their answers kept as long: two
#: minutes more move a 30-day page by a few thousandths, and recomputing every viewed 30-day page
#: twice a half minute was most of what a worker's range threads did under load (bench/api.py).
LONG_END_QUANTUM_MS = 120_000
LONG_RANGE_MS = 3 * DAY


def end_quantum(span_ms: int) -> int:
    """What a range's end is rounded up to, and how long its answer stays fresh (ms)."""
    return LONG_END_QUANTUM_MS if span_ms > LONG_RANGE_MS else END_QUANTUM_MS


#: Range answers are computed in two threads per worker: on 2 cores, more only take the GIL from the event loop.
_COMPUTE = ThreadPoolExecutor(2, thread_name_prefix="history")


class Answers:
    """Serialised answers per key: fresh for ``ttl_s``, then served stale while one refresh runs.

    The machine page and the range panels of every viewer of a machine ask the same question
    (the range ends are rounded to ``END_QUANTUM_MS``): one computation serves them all, as the
    line snapshot does for the live view, and the callers await it on the event loop instead of
    each holding a request thread (``api.caches.Flights``). A range that ends "now" moves to a
    new key every half minute; its newest earlier answer (the same range with an earlier end: the
    quantum before's, or one from minutes ago when nobody looked in between), or an expired one
    of the same key, is served if under ``stale_s`` old while the new one is computed, so viewers
    never wait for a recomputation, only for the first one. Per worker; a change shows within
    ``ttl_s`` plus one computation. When full, the oldest quarter of the answers goes, not all
    of them (that would make every viewer wait at once).
    """

    def __init__(self, ttl_s: float = 15.0, stale_s: float = 300.0, max_entries: int = 2000) -> None:
        self.ttl_s, self.stale_s, self.max_entries = ttl_s, stale_s, max_entries
        self._entries: dict[tuple, tuple[float, bytes]] = {}
        self._newest: dict[tuple, tuple] = {}  # a key without its end (the last part) -> its newest key kept
        self._flights: Flights[tuple, bytes] = Flights(_COMPUTE)

    def fresh(self, key: tuple) -> bytes | None:
        hit = self._entries.get(key)
        return hit[1] if hit and time.monotonic() - hit[0] < self.ttl_s else None

    async def get(self, key: tuple, compute: Callable[[], dict], live: bool = False,
                  ttl_s: float | None = None, shared: AnswerStore | None = None) -> bytes:
        """The answer; ``ttl_s`` (default: the cache's) is how long a computed one stays fresh; ``live``: the
        range ends now, so an earlier end's answer may stand in (never for a fixed range). With
        ``shared`` (the host's other workers' answers), one a worker computed is read, not computed again."""
        ttl = self.ttl_s if ttl_s is None else ttl_s
        hit = self._entries.get(key)
        now = time.monotonic()
        if hit and now - hit[0] < ttl:
            return hit[1]
        stale = hit or (self._stand_in(key) if live else None)
        if stale and now - stale[0] < self.stale_s:
            self._flights.start_quietly(key, lambda: self._compute(key, compute, ttl, shared))
            return stale[1]
        return await self._flights.run(key, lambda: self._compute(key, compute, ttl, shared))

    def _compute(self, key: tuple, compute: Callable[[], dict], ttl_s: float, shared: AnswerStore | None) -> bytes:
        name = repr(key)  # the key's parts (MachineRef, slugs, epoch ms) print the same in every worker
        found = shared.get(name, ttl_s) if shared is not None else None
        if found is not None:  # another worker's, still fresh: kept here until it would expire there
            age, body = found
            self._keep(key, time.monotonic() - age, body)
            return body
        body = json.dumps(compute(), separators=(",", ":"), ensure_ascii=False).encode()
        self._keep(key, time.monotonic(), body)
        if shared is not None:
            shared.put(name, body)
        return body

    def _stand_in(self, key: tuple) -> tuple[float, bytes] | None:
        """The newest answer of the same live range with an earlier end (``key[-1]``), if any."""
        newest = self._newest.get(key[:-1])
        return self._entries.get(newest) if newest is not None and newest[-1] < key[-1] else None

    def _keep(self, key: tuple, at: float, body: bytes) -> None:
        if key not in self._entries and len(self._entries) >= self.max_entries:
            oldest = sorted(self._entries, key=lambda k: self._entries[k][0])[:max(1, self.max_entries // 4)]
            for k in oldest:
                del self._entries[k]
            self._newest = {f: k for f, k in self._newest.items() if k in self._entries}
        self._entries[key] = (at, body)
        newest = self._newest.get(key[:-1])
        if newest is None or newest[-1] <= key[-1]:
            self._newest[key[:-1]] = key


ANSWERS = Answers()


def window(start: datetime | None, end: datetime | None, now_ms: int, stagger: str = "") -> tuple[int, int]:
    """[start, end) in epoch ms, checked: start before end, at most MAX_RANGE_DAYS long (422 otherwise).

    The end is rounded up to ``end_quantum`` of the span (a live range ends "now": shared by the viewers of
    that half minute, or two minutes for a range over three days). A live range is rounded on a grid
    shifted by whole seconds per ``stagger`` (the machine or line), so the live answers of different
    machines fall due spread over the quantum, not all at one moment.
    """
    end_ms = to_epoch_ms(end) if end else now_ms
    given_start = to_epoch_ms(start) if start else None
    q = end_quantum(end_ms - given_start) if given_start is not None else END_QUANTUM_MS
    live = stagger and end_ms >= now_ms - q
    shift = zlib.crc32(stagger.encode()) % (q // 1000) * 1000 if live else 0
    end_ms = -(-(end_ms - shift) // q) * q + shift
    start_ms = given_start if given_start is not None else end_ms - DAY
    if start_ms >= end_ms:
        raise HTTPException(status_code=422, detail=f"start ({iso(start_ms)}) must be before end ({iso(end_ms)}): "
                                                    "swap them or pick a range in the range picker")
    if end_ms - start_ms > MAX_RANGE_DAYS * DAY:
        raise HTTPException(status_code=422, detail=f"the range is {(end_ms - start_ms) / DAY:.0f} days; at most "
                                                    f"{MAX_RANGE_DAYS} days can be shown at once: choose a shorter range")
    return start_ms, end_ms


def nice_step(span_ms: int, points: int) -> int:
    """The smallest round bucket (1 s … 1 day) that gives at most ``points`` buckets over the span."""
    want = span_ms / points
    for step in _NICE_STEPS_MS:
        if step >= want:
            return step
    return int(math.ceil(want / DAY)) * DAY


def dominant_segments(step_starts: list[int], held: dict[int, dict[int, int]], step_ms: int, start_ms: int,
                      end_ms: int) -> list[dict]:
    """One state per step (the one held longest; no data when under half the step is known), runs merged."""
    out: list[dict] = []
    for t in step_starts:
        a, b = max(t, start_ms), min(t + step_ms, end_ms)
        if b <= a:
            continue
        per = held.get(t, {})
        known = sum(per.values())
        state = max(per, key=lambda code: per[code]) if per and known * 2 >= (b - a) else UNKNOWN
        if out and out[-1]["state"] == state and out[-1]["end_ms"] == a:
            out[-1]["end_ms"] = b
        else:
            out.append({"start_ms": a, "end_ms": b, "state": state})
    for seg in out:
        if seg["state"] == UNKNOWN:
            seg["state"] = None
    return out


def _machine(services: Services, tenant: str, site: str, line: str,
             machine: str) -> tuple[MachineRef, str, str, float, str | None]:
    """The machine as the plant model has it (name, line name, ideal cycle, English name); 404 when it is not there."""
    try:
        ref = MachineRef(tenant, site, line, machine)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    with services.plant.session() as s:
        q = in_tenant(select(Machine.name, Line.name, Machine.ideal_cycle_s, Machine.name_en).select_from(Machine), Machine, tenant)
        row = s.execute(q.where(Site.slug == site, Line.slug == line, Machine.slug == machine)).first()
    if row is None:
        raise HTTPException(status_code=404, detail=f"no machine {site}/{line}/{machine} in this tenant's plant model")
    return ref, row[0] or machine, row[1] or line, float(row[2] or 0), row[3]


def _line_machines(services: Services, tenant: str, site: str,
                   line: str) -> tuple[str, list[tuple[MachineRef, str, str | None]]]:
    with services.plant.session() as s:
        q = in_tenant(select(Line.name, Machine.slug, Machine.name, Machine.name_en).select_from(Machine), Machine, tenant)
        rows = s.execute(q.where(Site.slug == site, Line.slug == line).order_by(Machine.slug)).all()
    if not rows:
        raise HTTPException(status_code=404, detail=f"no line {site}/{line} with machines in this tenant's plant model")
    return rows[0][0] or line, [(MachineRef(tenant, site, line, slug), name or slug, name_en)
                                for _, slug, name, name_en in rows]


async def _machine_cached(services: Services, tenant: str, site: str, line: str,
                          machine: str) -> tuple[MachineRef, str, str, float, str | None]:
    """``_machine`` through ``services.plant_names``: every request of a machine page names its machine."""
    return await services.plant_names.get(("machine", tenant, site, line, machine),
                                          lambda: _machine(services, tenant, site, line, machine))


async def _line_machines_cached(services: Services, tenant: str, site: str,
                                line: str) -> tuple[str, list[tuple[MachineRef, str, str | None]]]:
    return await services.plant_names.get(("line", tenant, site, line),
                                          lambda: _line_machines(services, tenant, site, line))


def _live(start_ms: int, end_ms: int, now_ms: int) -> bool:
    """Whether a range ends now (within its end quantum): an earlier answer of it may stand in, briefly."""
    return end_ms - end_quantum(end_ms - start_ms) < now_ms <= end_ms


def _fresh_s(start_ms: int, end_ms: int) -> float | None:
    """How long a range's answer stays fresh: the cache's 15 s, or the long ranges' quantum."""
    q = end_quantum(end_ms - start_ms)
    return q / 1000 if q != END_QUANTUM_MS else None


async def _answer(services: Services, key: tuple, compute: Callable[[], dict], start_ms: int, end_ms: int, now_ms: int) -> bytes:
    """A range's answer from ``ANSWERS``: fresh for the range's quantum, borrowed briefly while it ends now."""
    return await ANSWERS.get(key, compute, _live(start_ms, end_ms, now_ms), _fresh_s(start_ms, end_ms),
                             services.shared_answers)


def _hours(start_ms: int, end_ms: int, bucket_ms: int) -> tuple[int, int]:
    return start_ms // bucket_ms * bucket_ms, -(-end_ms // bucket_ms) * bucket_ms


def _in_shifts(b, policy) -> np.ndarray:
    """Group 0 for buckets inside a shift, -1 outside: planned time as the reports count it."""
    cal = kpi.calendar(b.start_ms, policy)
    return np.where(cal.shift_of_bucket >= 0, 0, -1)


def _clean(v):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v


def _kpis(t: kpi.Totals) -> dict:
    s = kpi.scalar(t)
    keys = ("oee", "availability", "performance", "quality", "scrap_rate", "output_per_hour", "material_input_s",
            "mtbf_h", "mttr_min")
    return {k: _clean(s.get(k)) for k in keys} | {"coverage": _clean(s.get("coverage"))}


def _local_day_ms(ts: int, zone: ZoneInfo) -> int:
    local = datetime.fromtimestamp(ts / 1000, zone)
    return int(datetime(local.year, local.month, local.day, tzinfo=zone).timestamp() * 1000)


def _series(b, every_ms: int, clip: tuple[int, int], zone: ZoneInfo) -> list[dict]:
    """Good and scrap parts per display bucket (hour, or the tenant's local day), summed from the hourly tallies."""
    out: dict[int, list[float]] = {}
    for ts, g, sc, mi in zip(b.start_ms.tolist(), b.good.tolist(), b.scrap.tolist(), b.mi_ms.tolist()):
        if ts + b.bucket_ms <= clip[0] or ts >= clip[1]:
            continue
        k = _local_day_ms(ts, zone) if every_ms >= DAY else ts // every_ms * every_ms
        acc = out.setdefault(k, [0.0, 0.0, 0.0])
        acc[0] += g
        acc[1] += sc
        acc[2] += mi
    # material input seconds too, so a page can show input time per part over the range (the report's KPI)
    return [{"ts": k, "good": int(v[0]), "scrap": int(v[1]), "input_s": round(v[2] / 1000, 1)} for k, v in sorted(out.items())]


def _alarms(services: Services, ref: MachineRef, start_ms: int, end_ms: int, limit: int = 200) -> list[dict]:
    """Alarms of the machine that were open at some time in the range, newest first."""
    with services.plant.session() as s:
        q = (in_tenant(select(Alarm, AlarmRule).select_from(Alarm), Alarm, ref.tenant)
             .where(Site.slug == ref.site, Line.slug == ref.line, Machine.slug == ref.machine,
                    Alarm.raised_ms < end_ms, (Alarm.cleared_ms.is_(None)) | (Alarm.cleared_ms >= start_ms))
             .order_by(Alarm.raised_ms.desc()).limit(limit))
        return [{"id": a.id, "rule": r.name, "tag": r.tag, "kind": r.kind, "op": r.op, "threshold": r.threshold,
                 "value": a.value, "status": a.status, "raised_ms": a.raised_ms, "acknowledged_ms": a.acknowledged_ms,
                 "acknowledged_by": a.acknowledged_by, "cleared_ms": a.cleared_ms, "cleared_reason": a.cleared_reason}
                for a, r in s.execute(q).all()]


def _timeline(store, ref: MachineRef, policy, b, start_ms: int, end_ms: int,
              now_ms: int) -> tuple[int, list[dict]]:
    codes = [d.code for d in policy.states]
    if end_ms - start_ms <= FINE_TIMELINE_MS:
        step = max(MINUTE, nice_step(end_ms - start_ms, 1440))
        a, z = _hours(start_ms, end_ms, step)
        held: dict[int, dict[int, int]] = {}
        stale_ms, tag = int(policy.stale_s * 1000), policy.tags.state
        # kept as tuples of numbers, which the garbage collector stops tracking (a worker keeps thousands)
        rows = TIMELINES.rows((id(store), ref, tag, step, a, tuple(codes), stale_ms), a, z, step, now_ms,
                              lambda lo, hi: [(c.bucket_ms, int(c.value), c.held_ms) for c in
                                              store.state_durations(ref, tag, lo, hi, step, codes, stale_ms)],
                              lambda c: c[0])
        for bucket, code, held_ms in rows:
            held.setdefault(bucket, {})[code] = min(held_ms, step)
        return step, dominant_segments(list(range(a, z, step)), held, step, start_ms, end_ms)
    held = {ts: {c: int(b.state_ms[c][i]) for c in codes if b.state_ms[c][i] > 0}
            for i, ts in enumerate(b.start_ms.tolist())}
    return b.bucket_ms, dominant_segments(b.start_ms.tolist(), held, b.bucket_ms, start_ms, end_ms)


@router.get("/{tenant}/{site}/{line}/{machine}")
async def machine_history(tenant: str, site: str, line: str, machine: str, services: ServicesDep,
                          start: StartQ = None, end: EndQ = None) -> Response:
    """The machine page for [start, end): state timeline, KPIs, counters, downtime Pareto, alarms, its tags.

    Answers are shared for 15 s per worker (``Answers``)."""
    now_ms = int(time.time() * 1000)
    start_ms, end_ms = window(start, end, now_ms, f"{tenant}/{site}/{line}/{machine}")
    ref, name, line_name, _, name_en = await _machine_cached(services, tenant, site, line, machine)
    key = ("machine", ref, start_ms, end_ms)
    body = await _answer(services, key,
                         lambda: _machine_page(services, ref, name, line_name, start_ms, end_ms, name_en),
                         start_ms, end_ms, now_ms)
    return Response(body, media_type="application/json")


def _machine_page(services: Services, ref: MachineRef, name: str, line_name: str, start_ms: int, end_ms: int,
                  name_en: str | None = None) -> dict:
    started = time.perf_counter()
    tenant, site, line, machine = ref.tenant, ref.site, ref.line, ref.machine
    store = services.store
    policy = services.analytics.get().policy(tenant)
    a, z = _hours(start_ms, end_ms, policy.bucket_min * 60_000)
    b, total = _machine_range(services, ref, policy, a, z)
    step, segments = _timeline(store, ref, policy, b, start_ms, end_ms, int(time.time() * 1000))
    series_every = HOUR if end_ms - start_ms <= 3 * DAY else DAY
    latest = store.latest(ref)
    return {
        "tenant": tenant, "site": site, "line": line, "machine": machine, "name": name, "name_en": name_en,
        "line_name": line_name,
        "timezone": policy.timezone, "start_ms": start_ms, "end_ms": end_ms,
        "states": [{"code": d.code, "name": d.name, "kind": d.kind.value} for d in policy.states],
        "timeline": {"step_ms": step, "segments": segments},
        "kpis": _kpis(total), "time": kpi.time_elements(total),
        "counts": {"good": int(b.good.sum()), "scrap": int(b.scrap.sum()), "every_ms": series_every,
                   "series": _series(b, series_every, (start_ms, end_ms), policy.zone())},
        "pareto": kpi.pareto(total, policy),
        "corrections": len(b.corrections),
        "alarms": _alarms(services, ref, start_ms, end_ms),
        "tags": sorted(k for k, v in latest.items() if not isinstance(v.value, str)),
        "elapsed_s": round(time.perf_counter() - started, 3),
    }


def _joined(head: Buckets, tail: Buckets) -> Buckets:
    """Two adjacent tallies of one machine as one (each array, each state's arrays and the lists, in order)."""
    parts: dict = {}
    for f in dataclasses.fields(Buckets):
        a, b = getattr(head, f.name), getattr(tail, f.name)
        if isinstance(a, np.ndarray):
            parts[f.name] = np.concatenate([a, b])
        elif isinstance(a, dict):
            parts[f.name] = {k: np.concatenate([a[k], b[k]]) for k in a}
        elif isinstance(a, list):
            parts[f.name] = a + b
        else:  # bucket_ms, or an optional array that neither side has
            parts[f.name] = a
    return Buckets(**parts)


class _RecentTails:
    """The rollup cache, with its unsettled hours kept briefly instead of tallied from raw samples on every read.

    The rollups hold hours that ended more than ``settle_ms`` (2 h) ago; the newer hours are
    tallied from the raw samples, which is most of what a page costs (tens of milliseconds per
    tag and machine). They are split in two: the hours that have ended but are not settled yet
    (``recent``: kept for its ttl, 120 s, so late data there shows within two minutes) and the
    current hour (``memo``: kept for 15 s), so a recomputation of a live range reads the store
    for the current hour only. The 30-day page, today's page and the line page of a machine all
    end in the same hours and share both. Splitting a range at hour edges is what the rollup
    cache itself does between cached and missing hours, so the tallies are the same.
    """

    def __init__(self, cache, memo: SharedCache[tuple, Buckets], recent: SharedCache[tuple, Buckets]) -> None:
        self.cache, self.memo, self.recent = cache, memo, recent

    def machine_buckets(self, store, machine: MachineRef, policy, start_ms: int, end_ms: int, now_ms: int,
                        refresh: bool = False) -> Buckets:
        every = policy.bucket_min * 60_000
        edge = max(start_ms, min(end_ms, (now_ms - self.cache.settle_ms) // every * every))
        if refresh or edge >= end_ms:
            return self.cache.machine_buckets(store, machine, policy, start_ms, end_ms, now_ms, refresh)
        current = max(edge, min(end_ms, now_ms // every * every))
        shape = self.cache.shape(policy)
        parts = []
        if edge > start_ms:  # settled: the maintained rollups
            parts.append(self.cache.machine_buckets(store, machine, policy, start_ms, edge, now_ms))
        for memo, lo, hi in ((self.recent, edge, current), (self.memo, current, end_ms)):
            if hi <= lo:
                continue
            key = (id(self.cache), machine, shape, lo, hi)
            part = memo.get(key)
            if part is None:
                part = memo.put(key, self.cache.machine_buckets(store, machine, policy, lo, hi, now_ms))
            parts.append(part)
        out = parts[0]
        for part in parts[1:]:
            out = _joined(out, part)
        return out


def _rollups(services: Services):
    """What the range pages read tallies through: the rollup cache with its newest hours shared (or none)."""
    return None if services.rollup_cache is None else _RecentTails(services.rollup_cache, services.range_tails,
                                                                   services.range_recent)


def _machine_range(services: Services, ref: MachineRef, policy, a: int, z: int) -> tuple[Buckets, kpi.Totals]:
    """A machine's tallies and KPI totals of the hours [a, z), shared for 15 s by its page and its line's page.

    The line page pools its machines' totals; computed once here, a line's answer costs what
    its machines' answers already paid, not the same tallies and calendars again."""
    key = ("range", ref, a, z)
    hit = services.range_tails.get(key)
    if hit is not None and hit[0] is policy:  # the same effective policy (kept 30 s by EffectiveAnalytics)
        return hit[1], hit[2]
    b = load(services.store, [ref], policy, a, z, cache=_rollups(services))[ref]
    total = kpi.totals(b, _in_shifts(b, policy), 1, policy, policy.ideal_cycle(ref.line, ref.machine),
                       int(time.time() * 1000))
    services.range_tails.put(key, (policy, b, total))
    return b, total


def _trend_points(store, ref: MachineRef, tag: str, a: int, z: int, every: int) -> list[dict]:
    if z <= a:
        return []
    return [{"ts": ts, "mean": mean, "min": lo, "max": hi} for ts, mean, lo, hi in store.value_buckets(ref, tag, a, z, every)]


class TrendCache(SettledBuckets):
    """Settled trend buckets per (machine, tag, step, range start), so a 30-day trend costs its last bucket.

    Tags other than state and counters have no maintained rollup; this keeps what the store aggregated once.
    """

    def points(self, store, ref: MachineRef, tag: str, a: int, z: int, every: int, now_ms: int) -> list[dict]:
        return self.rows((ref, tag, every, a), a, z, every, now_ms,
                         lambda lo, hi: _trend_points(store, ref, tag, lo, hi, every), lambda p: p["ts"])


TRENDS = TrendCache()
#: ``/trends`` reads its tags side by side: each is one GROUP BY in the store (SQLite and HTTP release the GIL),
#: so a page's first 30-day view waits for its slowest tag, not their sum (bench/page.py, the cold view)
_TREND_READS = ThreadPoolExecutor(4, thread_name_prefix="trend-read")
#: the per-minute state timeline of short ranges (today, a shift), settled minutes kept
TIMELINES = SettledBuckets()


@router.get("/{tenant}/{site}/{line}/{machine}/trend")
async def machine_trend(tenant: str, site: str, line: str, machine: str, services: ServicesDep, tag: TagQ,
                        start: StartQ = None, end: EndQ = None) -> Response:
    """One tag over [start, end) in about 600 buckets (mean, min, max): the store's own GROUP BY time.

    Settled buckets are kept per worker (``TrendCache``), so a long range reads only its newest bucket.
    """
    now_ms = int(time.time() * 1000)
    start_ms, end_ms = window(start, end, now_ms, f"{tenant}/{site}/{line}/{machine}/{tag}")
    ref, *_ = await _machine_cached(services, tenant, site, line, machine)
    every = nice_step(end_ms - start_ms, TREND_POINTS)
    a, z = _hours(start_ms, end_ms, every)
    key = ("trend", ref, tag, start_ms, end_ms)
    body = await _answer(services, key, lambda: {
        "tag": tag, "start_ms": start_ms, "end_ms": end_ms, "every_ms": every,
        "points": TRENDS.points(services.store, ref, tag, a, z, every, int(time.time() * 1000))},
        start_ms, end_ms, now_ms)
    return Response(body, media_type="application/json")


def trend_tags(latest: dict, policy) -> list[str]:
    """The tags a machine page draws as trends: its numeric tags but the state and the counters (shown as
    the timeline and the counts) and the material-input signal (shown as input time)."""
    skip = {policy.tags.state, policy.tags.good, policy.tags.scrap, policy.tags.material_input}
    return sorted(k for k, v in latest.items() if k not in skip and not isinstance(v.value, str))


@router.get("/{tenant}/{site}/{line}/{machine}/trends")
async def machine_trends(tenant: str, site: str, line: str, machine: str, services: ServicesDep,
                         start: StartQ = None, end: EndQ = None) -> Response:
    """Every trend of the machine page over [start, end) in one answer, same buckets as ``/trend``.

    The page asks for it beside the range panels: with one request per tag it had to wait for the
    panels' tag list first (bench/page.py). Tags: the numeric ones but state, counters and material input.
    """
    now_ms = int(time.time() * 1000)
    start_ms, end_ms = window(start, end, now_ms, f"{tenant}/{site}/{line}/{machine}/trends")
    ref, *_ = await _machine_cached(services, tenant, site, line, machine)
    every = nice_step(end_ms - start_ms, TREND_POINTS)
    a, z = _hours(start_ms, end_ms, every)

    def compute() -> dict:
        policy = services.analytics.get().policy(tenant)
        tags = trend_tags(services.store.latest(ref), policy)
        at = int(time.time() * 1000)
        points = _TREND_READS.map(lambda tag: TRENDS.points(services.store, ref, tag, a, z, every, at), tags)
        return {"start_ms": start_ms, "end_ms": end_ms, "every_ms": every,
                "trends": [{"tag": tag, "points": p} for tag, p in zip(tags, points)]}

    key = ("trends", ref, start_ms, end_ms)
    body = await _answer(services, key, compute, start_ms, end_ms, now_ms)
    return Response(body, media_type="application/json")


@router.get("/{tenant}/{site}/{line}")
async def line_history(tenant: str, site: str, line: str, services: ServicesDep, start: StartQ = None,
                       end: EndQ = None) -> Response:
    """The line for [start, end): KPIs per machine and pooled, parts per hour or day, from the rollups."""
    now_ms = int(time.time() * 1000)
    start_ms, end_ms = window(start, end, now_ms, f"{tenant}/{site}/{line}")
    line_name, machines = await _line_machines_cached(services, tenant, site, line)
    key = ("line", tenant, site, line, start_ms, end_ms)
    body = await _answer(services, key, lambda: _line_page(services, tenant, site, line, line_name, machines,
                                                           start_ms, end_ms), start_ms, end_ms, now_ms)
    return Response(body, media_type="application/json")


def _line_page(services: Services, tenant: str, site: str, line: str, line_name: str,
               machines: list[tuple[MachineRef, str, str | None]], start_ms: int, end_ms: int) -> dict:
    policy = services.analytics.get().policy(tenant)
    a, z = _hours(start_ms, end_ms, policy.bucket_min * 60_000)
    series_every = HOUR if end_ms - start_ms <= 3 * DAY else DAY
    pooled: kpi.Totals = kpi.Totals.zeros(1, [d.code for d in policy.states])
    per: list[dict] = []
    series: dict[int, dict] = {}
    for ref, name, name_en in machines:
        b, t = _machine_range(services, ref, policy, a, z)
        pooled = pooled + t
        per.append({"machine": ref.machine, "name": name, "name_en": name_en, "kpis": _kpis(t), "good": int(b.good.sum()),
                    "scrap": int(b.scrap.sum())})
        for row in _series(b, series_every, (start_ms, end_ms), policy.zone()):
            acc = series.setdefault(row["ts"], {"ts": row["ts"], "good": 0, "scrap": 0, "input_s": 0.0})
            for k in ("good", "scrap", "input_s"):
                acc[k] += row[k]
    return {"tenant": tenant, "site": site, "line": line, "name": line_name, "timezone": policy.timezone,
            "start_ms": start_ms, "end_ms": end_ms, "kpis": _kpis(pooled), "machines": per,
            "counts": {"good": sum(m["good"] for m in per), "scrap": sum(m["scrap"] for m in per),
                       "every_ms": series_every, "series": [series[k] for k in sorted(series)]},
            "pareto": kpi.pareto(pooled, policy), "time": kpi.time_elements(pooled)}

"""Line snapshots for dashboards: reads the plant model and the store, computes with linedash.

A snapshot is computed at most once per ``ttl_s`` per line, however many browsers watch
it: every live view of a line shares it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import select

from api import linedash as ld
from api.plantdb import Alarm, AlarmRule, Line, Machine, PlantDb, Site, Tenant
from plant import MachineRef
from tsstore import TimeSeriesStore

MINUTE, HOUR = 60_000, 3_600_000
STATE_TAG, GOOD_TAG, SCRAP_TAG, INPUT_TAG = "state", "good_count", "scrap_count", "material_input"


class LineNotFound(LookupError):
    pass


@dataclass(frozen=True)
class LineModel:
    tenant: str
    site: str
    line: str
    name: str
    tz: str
    shifts: list[ld.ShiftSpec]
    machines: list[tuple[str, str, float]]  # slug, name, ideal cycle s


def load_line(plant: PlantDb, tenant: str, site: str, line: str) -> LineModel:
    with plant.session() as s:
        row = s.execute(
            select(Line, Tenant.timezone).join(Site, Line.site_id == Site.id).join(Tenant, Site.tenant_id == Tenant.id)
            .where(Tenant.slug == tenant, Site.slug == site, Line.slug == line)
        ).first()
        if row is None:
            raise LineNotFound(f"no line {tenant}/{site}/{line} in the plant model")
        ln, tz = row
        return LineModel(tenant, site, line, ln.name, tz,
                         [ld.ShiftSpec(x.name, x.start_minute, x.end_minute, x.weekdays) for x in ln.shifts],
                         [(m.slug, m.name, m.ideal_cycle_s) for m in ln.machines])


def alarms_of(plant: PlantDb, tenant: str, statuses: tuple[str, ...] = ("active", "acknowledged"),
              line: tuple[str, str] | None = None, limit: int = 200) -> list[dict]:
    with plant.session() as s:
        q = (select(Alarm, AlarmRule, Machine.slug, Line.slug, Site.slug).select_from(Alarm)
             .join(AlarmRule, Alarm.rule_id == AlarmRule.id).join(Machine, AlarmRule.machine_id == Machine.id)
             .join(Line, Machine.line_id == Line.id).join(Site, Line.site_id == Site.id).join(Tenant, Site.tenant_id == Tenant.id).where(Tenant.slug == tenant))
        if line:
            q = q.where(Site.slug == line[0], Line.slug == line[1])
        if "cleared" not in statuses:
            q = q.where(Alarm.cleared_ms.is_(None))
        out = []
        for a, rule, m, ln, site in s.execute(q.order_by(Alarm.raised_ms.desc()).limit(limit)).all():
            if a.status not in statuses:
                continue
            out.append({"id": a.id, "status": a.status, "rule": rule.name, "kind": rule.kind, "tag": rule.tag,
                        "tenant": tenant, "site": site, "line": ln, "machine": m, "raised_ms": a.raised_ms,
                        "value": a.value, "acknowledged_ms": a.acknowledged_ms, "acknowledged_by": a.acknowledged_by,
                        "cleared_ms": a.cleared_ms})
        return out


def build_snapshot(model: LineModel, store: TimeSeriesStore, alarms: list[dict], now_ms: int, stale_ms: int) -> dict:
    shift = ld.current_shift(model.shifts, model.tz, now_ms)
    day0 = ld.day_start_ms(model.tz, now_ms)
    shift_end = min(shift.end_ms, now_ms) if shift else now_ms
    trend_from = (now_ms // HOUR) * HOUR - 7 * HOUR
    state_from = min(shift.start_ms if shift else now_ms - HOUR, trend_from)
    count_from = min(day0, shift.start_ms if shift else day0, trend_from) - HOUR
    tiles, trend_acc = [], {}
    line_good = line_scrap = 0
    line_target = 0
    oee_inputs = []
    for slug, name, ideal_s in model.machines:
        ref = MachineRef(model.tenant, model.site, model.line, slug)
        st = store.history(ref, STATE_TAG, state_from, now_ms + 1, 0)
        ts, vals = [t for t, _ in st], [v for _, v in st]
        tile_iv = ld.intervals_for(ts, vals, state_from, now_ms, stale_ms)
        now_state = ld.state_now(tile_iv, state_from)
        good = store.history(ref, GOOD_TAG, count_from, now_ms + 1, MINUTE, "last")
        scrap = store.history(ref, SCRAP_TAG, count_from, now_ms + 1, MINUTE, "last")
        gts, gv = [t for t, _ in good], [float(v) for _, v in good]
        sts, sv = [t for t, _ in scrap], [float(v) for _, v in scrap]
        count_today, corrections = ld.count_since(gts, gv, day0)
        planned_today_ms = ld.planned_ms(model.shifts, model.tz, day0, now_ms)
        target = int(planned_today_ms / 1000 // ideal_s) if ideal_s > 0 else None
        oee = None
        if shift:
            iv = ld.intervals_for(ts, vals, shift.start_ms, shift_end, stale_ms)
            g, _ = ld.count_since(gts, gv, shift.start_ms)
            sc, _ = ld.count_since(sts, sv, shift.start_ms)
            oee = ld.oee_estimate(iv, g, sc, ideal_s)
            oee_inputs.append((iv, g, sc, ideal_s))
        last_seen = ts[-1] if ts else None
        tiles.append({
            "machine": slug, "name": name, "state": now_state.state, "state_since_ms": now_state.since_ms,
            "state_since_is_lower_bound": now_state.since_is_lower_bound,
            "stale": last_seen is None or now_ms - last_seen > stale_ms, "last_seen_ms": last_seen,
            "count_today": count_today, "counter_corrections_today": corrections, "target_today": target,
            "ideal_cycle_s": ideal_s, "oee": oee.as_dict() if oee else None,
        })
        line_good += count_today
        line_target += target or 0
        # material input trend: hourly mean of the 0/1 input signal, parts from the counter
        inp = store.history(ref, INPUT_TAG, trend_from, now_ms + 1, HOUR, "mean")
        for t, mean in inp:
            parts, _ = _parts_in(gts, gv, t, t + HOUR)
            secs = ld.input_seconds(float(mean), ld.known_ms_in(tile_iv, t, t + HOUR))
            acc_secs, acc_parts = trend_acc.get(t, (0.0, 0))
            trend_acc[t] = (acc_secs + secs, acc_parts + parts)
    trend = ld.input_trend(trend_acc)
    line_oee = _line_oee(oee_inputs)
    version = f"{max((t['last_seen_ms'] or 0) for t in tiles) if tiles else 0}:{len(alarms)}:" + ",".join(
        f"{a['id']}{a['status'][0]}" for a in alarms)
    return {
        "tenant": model.tenant, "site": model.site, "line": model.line, "name": model.name, "timezone": model.tz,
        "generated_ms": now_ms, "version": version,
        "shift": {"name": shift.name, "start_ms": shift.start_ms, "end_ms": shift.end_ms} if shift else None,
        "count_today": line_good, "target_today": line_target,
        "oee": line_oee, "machines": tiles, "material_input": trend, "alarms": alarms,
    }


def _parts_in(ts: list[int], values: list[float], start: int, end: int) -> tuple[int, int]:
    sub = [(t, v) for t, v in zip(ts, values) if start - MINUTE <= t < end]
    if len(sub) < 2:
        return 0, 0
    return ld.count_since([t for t, _ in sub], [v for _, v in sub], start)


def _line_oee(inputs: list) -> dict | None:
    """Line OEE: the machines' time and parts pooled, so each machine weighs by its planned time."""
    if not inputs:
        return None
    merged = [iv for ivs, *_ in inputs for iv in ivs]
    good = sum(g for _, g, _, _ in inputs)
    scrap = sum(sc for _, _, sc, _ in inputs)
    produced = good + scrap
    # standard-time output Σ(ideal cycle × count) keeps machines with different cycle times comparable
    std_s = sum(ideal * (g + sc) for _, g, sc, ideal in inputs)
    est = ld.oee_estimate(merged, good, scrap, std_s / produced if produced else 0.0)
    return est.as_dict()


class SnapshotCache:
    def __init__(self, plant: PlantDb, store: TimeSeriesStore, stale_ms: int, ttl_s: float = 1.0) -> None:
        self.plant, self.store, self.stale_ms, self.ttl_s = plant, store, stale_ms, ttl_s
        self._entries: dict[tuple[str, str, str], tuple[float, dict]] = {}
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, tenant: str, site: str, line: str) -> dict:
        key = (tenant, site, line)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one computation per line at a time; the others wait and share it
            hit = self._entries.get(key)
            if hit and time.monotonic() - hit[0] < self.ttl_s:
                return hit[1]
            model = load_line(self.plant, tenant, site, line)
            alarms = alarms_of(self.plant, tenant, line=(site, line))
            snap = build_snapshot(model, self.store, alarms, int(time.time() * 1000), self.stale_ms)
            self._entries[key] = (time.monotonic(), snap)
            return snap

    def invalidate(self, tenant: str) -> None:
        for key in [k for k in self._entries if k[0] == tenant]:
            self._entries.pop(key, None)

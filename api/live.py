"""Line snapshots for dashboards: reads the plant model and the store, computes with linedash.

A snapshot is computed at most once per ``ttl_s`` per line, however many browsers watch
it: every live view of a line shares it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select

from api import linedash as ld
from plantmodel.db import Alarm, AlarmRule, Line, Machine, PlantDb, Site, Tenant
from plantmodel.scoping import in_tenant
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
            in_tenant(select(Line, Tenant.timezone), Line, tenant).where(Site.slug == site, Line.slug == line)
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
        q = in_tenant(select(Alarm, AlarmRule, Machine.slug, Line.slug, Site.slug).select_from(Alarm), Alarm, tenant)
        if line:
            q = q.where(Site.slug == line[0], Line.slug == line[1])
        if "cleared" not in statuses:
            q = q.where(Alarm.cleared_ms.is_(None))
        out = []
        for a, rule, m, ln, site in s.execute(q.order_by(Alarm.raised_ms.desc()).limit(limit)).all():
            if a.status not in statuses:
                continue
            out.append({"id": a.id, "status": a.status, "rule_id": rule.id, "rule": rule.name, "kind": rule.kind, "tag": rule.tag,
                        "tenant": tenant, "site": site, "line": ln, "machine": m, "raised_ms": a.raised_ms,
                        "value": a.value, "acknowledged_ms": a.acknowledged_ms, "acknowledged_by": a.acknowledged_by,
                        "cleared_ms": a.cleared_ms, "cleared_reason": a.cleared_reason, "cleared_by": a.cleared_by})
        return out


class RecentAnswers:
    """JSON answers under ``ttl_s`` old, serialised once and shared by every caller in this worker.

    Dashboards poll alarms as often as snapshots; the database need not answer each poll.
    A change made through this worker drops the tenant's answers at once (``invalidate``);
    other workers show it within ``ttl_s``, as they do the snapshot.
    """

    def __init__(self, ttl_s: float = 0.5) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[tuple, tuple[float, bytes]] = {}

    def fresh(self, key: tuple) -> bytes | None:
        hit = self._entries.get(key)
        return hit[1] if hit and time.monotonic() - hit[0] < self.ttl_s else None

    def put(self, key: tuple, value) -> bytes:
        body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key] = (time.monotonic(), body)
        return body

    def invalidate(self, tenant: str) -> None:
        for key in [k for k in self._entries if k[0] == tenant]:
            self._entries.pop(key, None)


class MachineFeed:
    """One machine's samples as the dashboard needs them, kept in memory and topped up.

    A full read of the window (shift, today, the trend's hours) happens on the first
    refresh and then every ``reload_ms``; in between, each refresh folds in only the
    machine's newest values (``store.latest``, one indexed lookup). Range reads are kept
    rare on purpose: a window of 1 s samples is thousands of rows per tag and machine,
    which at every refresh of every viewer costs far more than the dashboard may.
    Between full reads a state shorter than the refresh interval can be missed and the
    hourly input trend is as old as the last full read; the full read corrects both, and
    also folds in data that arrived late (a gateway forwarding its buffer after an outage).
    """

    def __init__(self, ref: MachineRef, stale_ms: int, reload_ms: int = 300_000) -> None:
        self.ref, self.stale_ms, self.reload_ms = ref, stale_ms, reload_ms
        self.loaded_from: int | None = None
        self.loaded_at = 0
        self.last_ts: int | None = None
        self.runs: list[list[int]] = []
        self.counters: dict[str, dict[int, float]] = {GOOD_TAG: {}, SCRAP_TAG: {}}  # minute → last reading
        self.inputs: dict[int, float] = {}  # hour → mean of the material-input signal

    def refresh(self, store: TimeSeriesStore, need_from: int, now_ms: int) -> None:
        full = self.loaded_from is None or need_from < self.loaded_from or now_ms - self.loaded_at > self.reload_ms
        if full:
            self._load(store, need_from, now_ms)
        else:
            self._top_up(store)
        self._trim(need_from)

    def _load(self, store: TimeSeriesStore, need_from: int, now_ms: int) -> None:
        self.runs, self.last_ts = [], None
        self.counters = {GOOD_TAG: {}, SCRAP_TAG: {}}
        self.inputs = {}
        self.loaded_from, self.loaded_at = need_from, now_ms
        for ts, v in store.history(self.ref, STATE_TAG, need_from, now_ms + 1, 0):
            if not isinstance(v, str):
                ld.add_sample(self.runs, ts, int(v), self.stale_ms)
                self.last_ts = ts
        for tag, buckets in self.counters.items():
            for ts, v in store.history(self.ref, tag, need_from, now_ms + 1, MINUTE, "last"):
                if not isinstance(v, str):
                    buckets[ts] = float(v)
        for ts, v in store.history(self.ref, INPUT_TAG, (need_from // HOUR) * HOUR, now_ms + 1, HOUR, "mean"):
            self.inputs[ts] = float(v)

    def _top_up(self, store: TimeSeriesStore) -> None:
        latest = store.latest(self.ref)
        state = latest.get(STATE_TAG)
        if state is not None and not isinstance(state.value, str) and (self.last_ts is None
                                                                       or state.ts_ms > self.last_ts):
            ld.add_sample(self.runs, state.ts_ms, int(state.value), self.stale_ms)
            self.last_ts = state.ts_ms
        for tag, buckets in self.counters.items():
            lv = latest.get(tag)
            if lv is not None and not isinstance(lv.value, str):
                buckets[(lv.ts_ms // MINUTE) * MINUTE] = float(lv.value)

    def _trim(self, need_from: int) -> None:
        """Forget what no window needs any more (keeping one earlier bucket as a counter baseline)."""
        keep = 0
        while keep + 1 < len(self.runs) and self.runs[keep][1] + self.stale_ms < need_from:
            keep += 1
        del self.runs[:keep]
        for buckets in self.counters.values():
            for ts in [t for t in buckets if t < need_from - MINUTE]:
                del buckets[ts]
        self.loaded_from = max(self.loaded_from or need_from, need_from - MINUTE)

    def counter(self, tag: str) -> tuple[list[int], list[float]]:
        items = sorted(self.counters[tag].items())
        return [t for t, _ in items], [v for _, v in items]


def build_snapshot(model: LineModel, store: TimeSeriesStore, alarms: list[dict], now_ms: int, stale_ms: int,
                   feeds: dict[str, MachineFeed] | None = None) -> dict:
    feeds = feeds if feeds is not None else {}
    shift = ld.current_shift(model.shifts, model.tz, now_ms)
    day0 = ld.day_start_ms(model.tz, now_ms)
    shift_end = min(shift.end_ms, now_ms) if shift else now_ms
    trend_from = (now_ms // HOUR) * HOUR - 7 * HOUR
    tile_from = min(shift.start_ms if shift else now_ms - HOUR, trend_from)
    need_from = min(day0, tile_from) - HOUR  # one hour before: a counter baseline, and the state before
    tiles, trend_acc = [], {}
    line_good = line_target = 0
    oee_inputs = []
    planned_today_ms = ld.planned_ms(model.shifts, model.tz, day0, now_ms)
    for slug, name, ideal_s in model.machines:
        ref = MachineRef(model.tenant, model.site, model.line, slug)
        feed = feeds.get(slug)
        if feed is None:
            feed = feeds[slug] = MachineFeed(ref, stale_ms)
        feed.refresh(store, need_from, now_ms)
        now_state = ld.current_state(feed.runs, now_ms, tile_from, stale_ms)
        gts, gv = feed.counter(GOOD_TAG)
        sts, sv = feed.counter(SCRAP_TAG)
        count_today, corrections = ld.count_since(gts, gv, day0)
        target = int(planned_today_ms / 1000 // ideal_s) if ideal_s > 0 else None
        oee = None
        if shift:
            totals = ld.run_totals(feed.runs, (shift.start_ms, shift_end), stale_ms)
            g, _ = ld.count_since(gts, gv, shift.start_ms)
            sc, _ = ld.count_since(sts, sv, shift.start_ms)
            oee = ld.oee_from_totals(totals, g, sc, ideal_s)
            oee_inputs.append((totals, g, sc, ideal_s))
        last_seen = feed.last_ts
        tiles.append({
            "machine": slug, "name": name, "state": now_state.state, "state_since_ms": now_state.since_ms,
            "state_since_is_lower_bound": now_state.since_is_lower_bound,
            "stale": last_seen is None or now_ms - last_seen > stale_ms, "last_seen_ms": last_seen,
            "count_today": count_today, "counter_corrections_today": corrections, "target_today": target,
            "ideal_cycle_s": ideal_s, "oee": oee.as_dict() if oee else None,
        })
        line_good += count_today
        line_target += target or 0
        # material input trend: hourly mean of the 0/1 input signal over the time with data; parts per hour
        hours = [t for t in feed.inputs if t >= trend_from]
        known = ld.known_ms_per_bucket(feed.runs, (trend_from, now_ms), stale_ms, hours, HOUR)
        for t in hours:
            mean = feed.inputs[t]
            parts, _ = _parts_in(gts, gv, t, t + HOUR)
            secs = ld.input_seconds(mean, known[t])
            acc_secs, acc_parts = trend_acc.get(t, (0.0, 0))
            trend_acc[t] = (acc_secs + secs, acc_parts + parts)
    trend = ld.input_trend(trend_acc)
    line_oee = _line_oee(oee_inputs)
    version = f"{max((t['last_seen_ms'] or 0) for t in tiles) if tiles else 0}:{len(alarms)}:" + ",".join(
        f"{a['id']}{a['status'][0]}" for a in alarms)
    return {
        "tenant": model.tenant, "site": model.site, "line": model.line, "name": model.name, "timezone": model.tz,
        "generated_ms": now_ms, "version": version,
        "shift": ld.shift_info(model.shifts, model.tz, now_ms),
        # the target is for the planned (shift) time of today up to now, not the whole day: "target so far"
        "count_today": line_good, "target_today": line_target, "planned_today_ms": planned_today_ms,
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
    merged: dict[int, int] = {}
    for totals, *_ in inputs:
        for state, ms in totals.items():
            merged[state] = merged.get(state, 0) + ms
    good = sum(g for _, g, _, _ in inputs)
    scrap = sum(sc for _, _, sc, _ in inputs)
    produced = good + scrap
    # standard-time output Σ(ideal cycle × count) keeps machines with different cycle times comparable
    std_s = sum(ideal * (g + sc) for _, g, sc, ideal in inputs)
    est = ld.oee_from_totals(merged, good, scrap, std_s / produced if produced else 0.0)
    return est.as_dict()


class SnapshotCache:
    def __init__(self, plant: PlantDb, store: TimeSeriesStore, stale_ms: int, ttl_s: float = 0.5) -> None:
        self.plant, self.store, self.stale_ms, self.ttl_s = plant, store, stale_ms, ttl_s
        self._entries: dict[tuple[str, str, str], tuple[float, tuple[dict, bytes]]] = {}
        self._feeds: dict[tuple[str, str, str], dict[str, MachineFeed]] = {}
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, tenant: str, site: str, line: str) -> dict:
        return self.get_with_json(tenant, site, line)[0]

    def fresh(self, tenant: str, site: str, line: str) -> tuple[dict, bytes] | None:
        """The snapshot if one younger than ``ttl_s`` is at hand; never computes (safe on the event loop)."""
        hit = self._entries.get((tenant, site, line))
        return hit[1] if hit and time.monotonic() - hit[0] < self.ttl_s else None

    def get_with_json(self, tenant: str, site: str, line: str) -> tuple[dict, bytes]:
        """The snapshot and its JSON, serialised once per computation for every viewer."""
        key = (tenant, site, line)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        hit = self._entries.get(key)
        if hit and time.monotonic() - hit[0] < self.ttl_s:
            return hit[1]
        # one computation per line at a time; while it runs (a full reload can take seconds),
        # the other viewers get the previous snapshot instead of waiting
        if not lock.acquire(blocking=hit is None):
            return hit[1]  # type: ignore[index]
        try:
            hit = self._entries.get(key)
            if hit and time.monotonic() - hit[0] < self.ttl_s:
                return hit[1]
            model = load_line(self.plant, tenant, site, line)
            alarms = alarms_of(self.plant, tenant, line=(site, line))
            feeds = self._feeds.setdefault(key, {})
            snap = build_snapshot(model, self.store, alarms, int(time.time() * 1000), self.stale_ms, feeds)
            entry = (snap, json.dumps(snap, separators=(",", ":"), ensure_ascii=False).encode())
            self._entries[key] = (time.monotonic(), entry)
            return entry
        finally:
            lock.release()

    def invalidate(self, tenant: str) -> None:
        for key in [k for k in self._entries if k[0] == tenant]:
            self._entries.pop(key, None)

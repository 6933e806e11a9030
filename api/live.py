"""Line snapshots for dashboards: reads the plant model and the store, computes with ``analytics.live``.

A snapshot is computed at most once per ``ttl_s`` per line, however many browsers watch
it: every live view of a line shares it. A line with open event streams is also probed every
``api.follow.FOLLOW_S`` (per machine, one read of its state tag since the last sample folded
in): a machine's new state is computed into the snapshot at once, not after ``ttl_s``. It
follows the tenant's effective analytics policy (``plantmodel.policy``): its tag names,
counter widths, state classes, ideal cycle times and staleness, so the live figures are the
report's.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sqlalchemy import select

from analytics import live as ld
from analytics.states import UNKNOWN
from analytics.policy import Policy, Tags
from api.caches import SharedCache
from plantmodel.db import Alarm, AlarmRule, Line, Machine, PlantDb, Site, Tenant
from plantmodel.scoping import in_tenant
from plant import MachineRef
from tsstore import TimeSeriesStore

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000


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
    names_en: dict[str, str] | None = None  # machine slug -> English name, where the plant model has one
    name_en: str | None = None  # the line's English name


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
                         [(m.slug, m.name, m.ideal_cycle_s) for m in ln.machines],
                         {m.slug: m.name_en for m in ln.machines if m.name_en}, ln.name_en)


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
    other workers show it within ``ttl_s``, as they do the snapshot. At most ``maxsize``
    answers are kept (the least recently used go first); safe from any thread.
    """

    def __init__(self, ttl_s: float = 0.5, maxsize: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self._entries: SharedCache[tuple, bytes] = SharedCache(maxsize, ttl_s)

    def fresh(self, key: tuple) -> bytes | None:
        return self._entries.get(key)

    def put(self, key: tuple, value) -> bytes:
        body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        return self._entries.put(key, body)

    def invalidate(self, tenant: str) -> None:
        self._entries.drop_where(lambda key: key[0] == tenant)


class MachineFeed:
    """One machine's samples as the dashboard needs them, kept in memory and topped up.

    A full read of the window (shift, today, the trend's hours) happens on the first refresh
    and then every ``full_reload_ms`` (30 min); every ``reload_ms`` (5 min) in between, only the
    time since the previous re-read (and ``REREAD_MARGIN_MS`` before it) is read again from
    the store, from the start of the state run that was open then; on every other refresh,
    only the machine's newest values are folded in (``store.latest``, one indexed lookup).
    Range reads are kept short on purpose: a window of 1 s samples is thousands of rows per tag
    and machine, and the full read of every line's window every 5 minutes was what held the
    GIL longest in the API. Between re-reads a state shorter than the refresh interval can be
    missed and the hourly input trend is as old as the last re-read; the re-read corrects both.
    Data that arrives late (a gateway forwarding its buffer after an outage) shows at the next
    re-read if it is at most a re-read interval old, otherwise at the next full read.
    """

    #: A re-read starts this long before the previous one ended: samples stored a little late are not lost.
    REREAD_MARGIN_MS = MINUTE
    #: A window that was mostly without data at its last full read is read in full again this often: its past
    #: may still be arriving (a history backfill, a gateway forwarding its buffer), and such a read is small.
    #: A quarter minute: the demo's tiles showed a count of 0 for up to a minute after its backfill landed.
    SPARSE_RELOAD_MS = 15_000

    def __init__(self, ref: MachineRef, tags: Tags, stale_ms: int, reload_ms: int = 300_000,
                 full_reload_ms: int = 1_800_000) -> None:
        self.ref, self.tags, self.stale_ms, self.reload_ms = ref, tags, stale_ms, reload_ms
        self.full_reload_ms = full_reload_ms
        self.loaded_from: int | None = None
        self.loaded_at = 0  # the last full read
        self.sparse = False  # the last full read found data for less than half of the window
        self.reread_at = 0  # the last read from the store, full or not
        self.last_ts: int | None = None
        self.runs: list[ld.Run] = []
        self.counters: dict[str, dict[int, float]] = {tags.good: {}, tags.scrap: {}}  # minute → last reading
        self.inputs: dict[int, float] = {}  # hour → mean of the material-input signal
        self._closed: tuple[tuple[int, int] | None, np.ndarray] = (None, ld.runs_array([]))

    def runs_array(self) -> np.ndarray:
        """The runs as an array; all but the last (the only one a top-up changes) converted once, not per snapshot.

        A window of a busy machine holds thousands of runs: converting them all on every
        snapshot (twice a second) was the largest part of a snapshot's cost."""
        if not self.runs:
            return ld.runs_array([])
        key = (len(self.runs), self.runs[0][0])  # a new run or a trimmed front; a re-read resets it
        if self._closed[0] != key:
            self._closed = (key, ld.runs_array(self.runs[:-1]))
        return np.concatenate([self._closed[1], ld.runs_array([self.runs[-1]])])

    def state_changed(self, store: TimeSeriesStore, now_ms: int) -> bool:
        """Whether a state sample stored after the one folded in last differs from it (another state, or
        the same after a gap that made the machine stale): one read of the state tag since then, no more."""
        last_ts = self.last_ts
        since = last_ts + 1 if last_ts is not None else now_ms - self.stale_ms
        state = self.runs[-1][2] if self.runs and last_ts is not None else None
        for ts, v in store.history(self.ref, self.tags.state, since, now_ms + DAY, 0):
            if isinstance(v, str):
                continue
            if state is None or int(v) != state or (last_ts is not None and ts - last_ts > self.stale_ms):
                return True
            last_ts = ts
        return False

    def follows(self, tags: Tags, stale_ms: int) -> bool:
        """Whether this feed was read with these settings (a changed policy needs a fresh feed)."""
        return self.tags == tags and self.stale_ms == stale_ms

    def refresh(self, store: TimeSeriesStore, need_from: int, now_ms: int) -> None:
        full_every = self.SPARSE_RELOAD_MS if self.sparse else self.full_reload_ms
        if self.loaded_from is None or need_from < self.loaded_from or now_ms - self.loaded_at > full_every:
            self._load(store, need_from, now_ms)
        elif now_ms - self.reread_at > self.reload_ms:
            self._reread(store, max(need_from, self.reread_at - self.REREAD_MARGIN_MS), now_ms)
        else:
            self._top_up(store)
        self._trim(need_from)

    def _load(self, store: TimeSeriesStore, need_from: int, now_ms: int) -> None:
        self.runs, self.last_ts = [], None
        self._closed = (None, self._closed[1])
        self.counters = {self.tags.good: {}, self.tags.scrap: {}}
        self.inputs = {}
        self.loaded_from, self.loaded_at = need_from, now_ms
        self._read(store, need_from, need_from, (need_from // HOUR) * HOUR, now_ms)
        # right after a demo starts, the API reads while the history is still being written: without this the
        # shift's figures stood on its last minutes (coverage 0.3%) until the next full read, 30 minutes on
        unknown = ld.run_totals(self.runs_array(), (need_from, now_ms), self.stale_ms).get(UNKNOWN, 0)
        self.sparse = unknown > (now_ms - need_from) / 2
    def _reread(self, store: TimeSeriesStore, since: int, now_ms: int) -> None:
        """Read [since, now] again, as a full read would have folded it, keeping what came before."""
        k = 0  # the first run still open at ``since``: it and every later one are read again
        while k < len(self.runs) and self.runs[k][1] < since:
            k += 1
        state_from = self.runs[k][0] if k < len(self.runs) else since
        del self.runs[k:]
        self._closed = (None, self._closed[1])
        self.last_ts = self.runs[-1][1] if self.runs else None
        minute = since // MINUTE * MINUTE
        for buckets in self.counters.values():
            for ts in [t for t in buckets if t >= minute]:
                del buckets[ts]
        hour = since // HOUR * HOUR
        for ts in [t for t in self.inputs if t >= hour]:
            del self.inputs[ts]
        self._read(store, state_from, minute, hour, now_ms)

    def _read(self, store: TimeSeriesStore, state_from: int, counters_from: int, inputs_from: int,
              now_ms: int) -> None:
        self.reread_at = now_ms
        # the store folds the samples into runs (a day of 1 s samples is tens of thousands of rows);
        # the first may continue the run this feed already holds, as add_sample would have it
        runs = store.state_runs(self.ref, self.tags.state, state_from, now_ms + 1, self.stale_ms)
        if runs:
            first, last, state = runs[0]
            held = self.runs[-1] if self.runs else None
            if held is not None and held[2] == state and first - held[1] <= self.stale_ms:
                self.runs[-1] = (held[0], max(held[1], last), state)
            else:
                self.runs.append((first, last, state))
            self.runs.extend(runs[1:])  # apart by the same rule already
            self.last_ts = runs[-1][1]
        for tag, buckets in self.counters.items():
            for ts, v in store.history(self.ref, tag, counters_from, now_ms + 1, MINUTE, "last"):
                if not isinstance(v, str):
                    buckets[ts] = float(v)
        if self.tags.material_input:
            for ts, v in store.history(self.ref, self.tags.material_input, inputs_from, now_ms + 1, HOUR, "mean"):
                self.inputs[ts] = float(v)

    def _top_up(self, store: TimeSeriesStore) -> None:
        latest = store.latest(self.ref)
        state = latest.get(self.tags.state)
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


def build_snapshot(model: LineModel, store: TimeSeriesStore, alarms: list[dict], now_ms: int, policy: Policy,
                   feeds: dict[str, MachineFeed] | None = None) -> dict:
    """The line's live view at ``now_ms``, computed with the tenant's policy (``policy``)."""
    feeds = feeds if feeds is not None else {}
    tags, stale_ms = policy.tags, int(policy.stale_s * 1000)
    names = {d.code: (d.name, d.kind.value) for d in policy.states}
    closed = ld.closed_days(policy)  # the reports' calendar: public holidays and closure days are not planned
    shift = ld.current_shift(model.shifts, model.tz, now_ms, closed)
    day0 = ld.day_start_ms(model.tz, now_ms)
    shift_end = min(shift.end_ms, now_ms) if shift else now_ms
    trend_from = (now_ms // HOUR) * HOUR - 7 * HOUR
    tile_from = min(shift.start_ms if shift else now_ms - HOUR, trend_from)
    need_from = min(day0, tile_from) - HOUR  # one hour before: a counter baseline, and the state before
    tiles, trend_acc = [], {}
    line_good = line_target = 0
    line_totals = None
    line_min_running, line_machines = 0.0, 0  # the machines' own added up: the pooled count is off by a part of each
    planned_today_ms = ld.planned_ms(model.shifts, model.tz, day0, now_ms, closed)
    for slug, name, _ in model.machines:
        ref = MachineRef(model.tenant, model.site, model.line, slug)
        ideal_s = policy.ideal_cycle(model.line, slug)  # the report's ideal cycle (from the plant model by default)
        feed = feeds.get(slug)
        if feed is None or not feed.follows(tags, stale_ms):
            feed = feeds[slug] = MachineFeed(ref, tags, stale_ms)
        feed.refresh(store, need_from, now_ms)
        runs = feed.runs_array()
        now_state = ld.current_state(feed.runs, now_ms, tile_from, stale_ms)
        gts, gv = feed.counter(tags.good)
        sts, sv = feed.counter(tags.scrap)
        count_today, corrections = ld.count_since(gts, gv, day0, tags.good_bits)
        target = int(planned_today_ms / 1000 // ideal_s) if ideal_s > 0 else None
        oee = None
        if shift:
            state_ms = ld.run_totals(runs, (shift.start_ms, shift_end), stale_ms)
            # the rates count only parts made while the state was seen (as the reports: parts across a gap are in
            # the count of the day, not in performance); a minute bucket apart plus the staleness is a gap
            gap = stale_ms + MINUTE
            g, _ = ld.count_since(gts, gv, shift.start_ms, tags.good_bits, until_ms=shift_end, gap_ms=gap)
            sc, _ = ld.count_since(sts, sv, shift.start_ms, tags.scrap_bits, until_ms=shift_end, gap_ms=gap)
            totals = ld.window_totals(state_ms, shift_end - shift.start_ms, g, sc, ideal_s, policy)
            min_running = ld.min_running_s(ideal_s)
            oee = ld.estimate(totals, min_running)
            line_totals = totals if line_totals is None else line_totals + totals
            line_min_running += min_running
            line_machines += 1
        last_seen = feed.last_ts
        state_name, state_kind = names.get(now_state.state, (None, None))
        tiles.append({
            "machine": slug, "name": name, "name_en": (model.names_en or {}).get(slug), "state": now_state.state, "state_name": state_name,
            "state_kind": state_kind, "state_since_ms": now_state.since_ms,
            "state_since_is_lower_bound": now_state.since_is_lower_bound,
            "stale": last_seen is None or now_ms - last_seen > stale_ms, "last_seen_ms": last_seen,
            "count_today": count_today, "counter_corrections_today": corrections, "target_today": target,
            "ideal_cycle_s": ideal_s, "oee": oee,
        })
        line_good += count_today
        line_target += target or 0
        # material input trend: hourly mean of the 0/1 input signal over the time with data; parts per hour
        hours = [t for t in feed.inputs if t >= trend_from]
        known = ld.known_ms_per_bucket(runs, (trend_from, now_ms), stale_ms, hours, HOUR)
        for t in hours:
            mean = feed.inputs[t]
            parts, _ = _parts_in(gts, gv, t, t + HOUR, tags.good_bits)
            secs = ld.input_seconds(mean, known[t])
            acc_secs, acc_parts = trend_acc.get(t, (0.0, 0))
            trend_acc[t] = (acc_secs + secs, acc_parts + parts)
    trend = ld.input_trend(trend_acc)
    # line OEE: the machines' time and parts pooled (a ratio of sums, as in the reports), so each
    # machine weighs by its planned time and standard time keeps different cycle times comparable
    line_oee = ld.estimate(line_totals, line_min_running, line_machines) if line_totals is not None else None
    version = f"{max((t['last_seen_ms'] or 0) for t in tiles) if tiles else 0}:{len(alarms)}:" + ",".join(
        f"{a['id']}{a['status'][0]}" for a in alarms)
    return {
        "tenant": model.tenant, "site": model.site, "line": model.line, "name": model.name, "name_en": model.name_en,
        "timezone": model.tz,
        "generated_ms": now_ms, "version": version,
        "shift": ld.shift_info(model.shifts, model.tz, now_ms, closed),
        # the target is for the planned (shift) time of today up to now, not the whole day: "target so far"
        "count_today": line_good, "target_today": line_target, "planned_today_ms": planned_today_ms,
        "oee": line_oee, "machines": tiles, "material_input": trend, "alarms": alarms,
    }


def _parts_in(ts: list[int], values: list[float], start: int, end: int, bits: int) -> tuple[int, int]:
    lo, hi = bisect.bisect_left(ts, start - MINUTE), bisect.bisect_left(ts, end)  # ts is sorted: slice, not scan
    if hi - lo < 2:
        return 0, 0
    return ld.count_since(ts[lo:hi], values[lo:hi], start, bits)


class _LineView:
    """One line's live state in this worker: its computation lock, machine feeds and last snapshot."""

    __slots__ = ("lock", "feeds", "entry")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.feeds: dict[str, MachineFeed] = {}
        self.entry: tuple[float, tuple[dict, bytes]] | None = None  # (monotonic time, (snapshot, JSON))


class SnapshotCache:
    """Line snapshots shared by every viewer in this worker, for the ``max_lines`` lines watched last."""

    def __init__(self, plant: PlantDb, store: TimeSeriesStore, policy_for: Callable[[str], Policy],
                 ttl_s: float = 0.5, max_lines: int = 2048) -> None:
        self.plant, self.store, self.policy_for, self.ttl_s = plant, store, policy_for, ttl_s
        # a view evicted while a request computes it stays that request's; the next one starts afresh,
        # so two computations never share feeds
        self._lines: SharedCache[tuple[str, str, str], _LineView] = SharedCache(max_lines)

    def get(self, tenant: str, site: str, line: str) -> dict:
        return self.get_with_json(tenant, site, line)[0]

    def _fresh(self, hit: tuple[float, tuple[dict, bytes]] | None) -> tuple[dict, bytes] | None:
        return hit[1] if hit and time.monotonic() - hit[0] < self.ttl_s else None

    def fresh(self, tenant: str, site: str, line: str) -> tuple[dict, bytes] | None:
        """The snapshot if one younger than ``ttl_s`` is at hand; never computes (safe on the event loop)."""
        view = self._lines.get((tenant, site, line))
        return self._fresh(view.entry) if view else None

    def recent(self, tenant: str, site: str, line: str, max_age_s: float) -> tuple[dict, bytes] | None:
        """The snapshot if one younger than ``max_age_s`` is at hand, fresh or not; never computes."""
        view = self._lines.get((tenant, site, line))
        hit = view.entry if view else None
        return hit[1] if hit and time.monotonic() - hit[0] < max_age_s else None

    def get_with_json(self, tenant: str, site: str, line: str, probe: bool = False) -> tuple[dict, bytes]:
        """The snapshot and its JSON, serialised once per computation for every viewer.

        ``probe`` (the refresh of a followed line): a snapshot younger than ``ttl_s`` is computed
        again too if a machine's state changed since (``MachineFeed.state_changed``)."""
        key = (tenant, site, line)
        view = self._lines.get_or_put(key, _LineView)
        hit = view.entry
        if not probe and (fresh := self._fresh(hit)) is not None:
            return fresh
        # one computation per line at a time; while it runs (a full reload can take seconds),
        # the other viewers get the previous snapshot instead of waiting
        if not view.lock.acquire(blocking=hit is None):
            return hit[1]  # type: ignore[index]
        try:
            if (fresh := self._fresh(view.entry)) is not None and not (
                    probe and any(f.state_changed(self.store, int(time.time() * 1000)) for f in view.feeds.values())):
                return fresh
            try:
                model = load_line(self.plant, tenant, site, line)
            except LineNotFound:
                self._lines.pop(key)  # no line: keep no state for it
                raise
            alarms = alarms_of(self.plant, tenant, line=(site, line))
            snap = build_snapshot(model, self.store, alarms, int(time.time() * 1000), self.policy_for(tenant), view.feeds)
            entry = (snap, json.dumps(snap, separators=(",", ":"), ensure_ascii=False).encode())
            view.entry = (time.monotonic(), entry)
            return entry
        finally:
            view.lock.release()

    def invalidate(self, tenant: str) -> None:
        """The tenant's next snapshots are computed afresh (the feeds, which hold data, are kept)."""
        for view in self._lines.values_where(lambda key: key[0] == tenant):
            view.entry = None

"""What a live line dashboard shows, computed from samples: pure functions, no I/O, no clock.

Times are epoch ms; calendars are evaluated in the tenant's time zone. The live OEE is the
report's (``analytics.kpi``) over the shift so far, with the tenant's policy: its state
classes, ideal cycle times and staleness, so a dashboard and a report of the same window
give the same figures. Samples are kept as runs of one state (``add_sample``), whose spans
come from ``analytics.states.spans``, the rule ``state_intervals`` uses too.
"""

from __future__ import annotations

import bisect
from typing import Any

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from analytics import kpi
from analytics.counters import counter_deltas
from analytics.policy import Policy, StateKind
from analytics.states import UNKNOWN, spans
from analytics.workcalendar import is_closed

#: A day the plant is closed (a public holiday, a closure day): no shift of it is planned time.
Closed = Callable[[date], bool]

OEE_LABEL = "live estimate for the shift so far (state register and counters); reports give the audited figure"


@dataclass(frozen=True)
class ShiftSpec:
    name: str
    start_minute: int
    end_minute: int
    weekdays: str = "0123456"


@dataclass(frozen=True)
class ShiftWindow:
    name: str
    start_ms: int
    end_ms: int


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def closed_days(policy: Policy) -> Closed:
    """The tenant's closed days as the reports count them (``analytics.workcalendar``): public holidays
    of the policy's country and its own closure days."""
    return lambda day: is_closed(day, policy)


def shift_occurrences(shifts: list[ShiftSpec], tz: str, around_ms: int, closed: Closed | None = None) -> list[ShiftWindow]:
    """Every planned shift that starts between two days before and one day after the instant: on
    its weekdays, and not on a closed day (a night shift belongs to the day it starts)."""
    zone = ZoneInfo(tz)
    local = datetime.fromtimestamp(around_ms / 1000, zone)
    out = []
    for day_offset in (-2, -1, 0, 1):
        day = (local + timedelta(days=day_offset)).date()
        if closed is not None and closed(day):
            continue
        for s in shifts:
            if str(day.weekday()) not in s.weekdays:
                continue
            start = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=s.start_minute)
            length = (s.end_minute - s.start_minute) % (24 * 60) or 24 * 60
            out.append(ShiftWindow(s.name, _ms(start), _ms(start + timedelta(minutes=length))))
    return sorted(out, key=lambda w: w.start_ms)


def current_shift(shifts: list[ShiftSpec], tz: str, now_ms: int, closed: Closed | None = None) -> ShiftWindow | None:
    """The shift running now, else the one that ended last (within a day), else None."""
    occ = shift_occurrences(shifts, tz, now_ms, closed)
    running = [w for w in occ if w.start_ms <= now_ms < w.end_ms]
    if running:
        return running[-1]
    ended = [w for w in occ if now_ms - 86_400_000 <= w.end_ms <= now_ms]
    return ended[-1] if ended else None


def day_start_ms(tz: str, now_ms: int) -> int:
    local = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(tz))
    return _ms(datetime(local.year, local.month, local.day, tzinfo=ZoneInfo(tz)))


def next_shift(shifts: list[ShiftSpec], tz: str, now_ms: int, closed: Closed | None = None) -> ShiftWindow | None:
    """The next shift to start after now (within a day), for "no shift now: the next starts at ..."."""
    upcoming = [w for w in shift_occurrences(shifts, tz, now_ms, closed) if now_ms < w.start_ms <= now_ms + 86_400_000]
    return upcoming[0] if upcoming else None


def shift_info(shifts: list[ShiftSpec], tz: str, now_ms: int, closed: Closed | None = None) -> dict[str, Any] | None:
    """The shift the dashboard's OEE is for, and whether it is running now.

    Between shifts (at 02:51 for a day-only tenant) the OEE shown is the last shift's, which
    ended yesterday: ``running`` false and ``next`` let the page say so instead of calling
    yesterday's day shift the current one.
    """
    w = current_shift(shifts, tz, now_ms, closed)
    if w is None:
        return None
    nxt = next_shift(shifts, tz, now_ms, closed)
    return {"name": w.name, "start_ms": w.start_ms, "end_ms": w.end_ms, "running": w.start_ms <= now_ms < w.end_ms,
            "next": {"name": nxt.name, "start_ms": nxt.start_ms, "end_ms": nxt.end_ms} if nxt else None}


def planned_ms(shifts: list[ShiftSpec], tz: str, start_ms: int, end_ms: int, closed: Closed | None = None) -> int:
    """Shift time inside [start, end): the planned time a count target is based on."""
    total = 0
    for w in shift_occurrences(shifts, tz, end_ms, closed):
        total += max(0, min(w.end_ms, end_ms) - max(w.start_ms, start_ms))
    return total


def count_since(bucket_ts: list[int], values: list[float], since_ms: int, bits: int | None = 16,
                until_ms: int | None = None, gap_ms: int | None = None) -> tuple[int, int]:
    """Parts counted in [since_ms, until_ms) from per-bucket last counter readings.

    The bucket before ``since_ms`` (if any) is the baseline; buckets from ``until_ms`` on are
    left out (a shift that has ended). Returns (count, corrections): wraps at 2**bits (the
    policy's register width) and PLC resets are corrected by ``analytics.counters`` and counted.
    Assumes fewer than 10% of the register range per bucket (presses: a few parts a minute).
    ``bucket_ts`` is in time order: the bounds are found by bisection (a snapshot counts a day of
    minutes per machine twice a second).

    With ``gap_ms``, an increment between readings further apart than that is left out: parts
    made across a data gap, at a time with no known state, as the reports keep them out of every
    rate (``gap_good``). Counted in a rate, they raised performance over 100% (the demo's 220%:
    a feed read while the history was being backfilled saw the counter jump across the hours
    not yet written, whose run time it did not have).
    """
    if until_ms is not None:
        keep = bisect.bisect_left(bucket_ts, until_ms)
        bucket_ts, values = bucket_ts[:keep], values[:keep]
    if not values:
        return 0, 0
    first = bisect.bisect_left(bucket_ts, since_ms)
    if first == len(bucket_ts):
        return 0, 0
    base = max(first - 1, 0)
    # delta k lies between readings base+k and base+k+1; when there is no baseline bucket the
    # first reading itself is the start
    d = counter_deltas([int(v) for v in values[base:]], bits=bits)
    if gap_ms is None or not d.deltas.size:
        return d.total, len(d.corrections)
    seen = np.diff(np.asarray(bucket_ts[base:], dtype=np.int64)) <= gap_ms
    return int(d.deltas[seen].sum()), len(d.corrections)


def input_seconds(mean_signal: float, known_ms: int) -> float:
    """Seconds the 0/1 material-input signal was on, from its mean over the time that has data.

    Scaling by the whole bucket instead would count hours without data as input time.
    """
    return float(mean_signal) * known_ms / 1000


def input_trend(buckets: dict[int, tuple[float, int]]) -> list[dict[str, Any]]:
    """Material input time per bucket: bucket start → (input seconds, parts made), with seconds per part."""
    return [{"ts": start, "input_s": round(secs, 1), "parts": parts,
             "input_s_per_part": round(secs / parts, 1) if parts else None}
            for start, (secs, parts) in sorted(buckets.items())]


# -- state runs: what the dashboard keeps instead of every sample ---------------------------------
#: (first ts, last ts, state): a tuple, not a list, because the garbage collector stops tracking a tuple
#: of ints, and a worker keeps a day of runs per followed machine (hundreds of thousands: as lists they
#: made each full collection pause the API for a quarter of a second)
Run = tuple[int, int, int]


def add_sample(runs: list[Run], ts: int, state: int, stale_ms: int) -> None:
    """Fold one state sample (in time order) into runs of (first ts, last ts, state).

    A run continues while the state repeats and samples are at most ``stale_ms`` apart, so
    runs hold exactly what ``analytics.states.spans`` needs, in a fraction of the samples.
    """
    if runs and runs[-1][2] == state and ts - runs[-1][1] <= stale_ms:
        if ts > runs[-1][1]:
            runs[-1] = (runs[-1][0], ts, state)
        return
    runs.append((ts, ts, state))


def runs_array(runs: list[Run] | np.ndarray) -> np.ndarray:
    """The runs as an (n, 3) int64 array: convert once per snapshot, then pass it to the functions below."""
    return np.asarray(runs, dtype=np.int64).reshape(-1, 3)


def _run_spans(runs: list[Run] | np.ndarray, window: tuple[int, int], stale_ms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arr = runs_array(runs)
    return spans(arr[:, 0], arr[:, 1], arr[:, 2], window, stale_ms)


def run_totals(runs: list[Run] | np.ndarray, window: tuple[int, int], stale_ms: int) -> dict[int, int]:
    """Time in each state inside the window, UNKNOWN for the rest (``time_in_state`` of the samples)."""
    a, b, state = _run_spans(runs, window, stale_ms)
    dur = b - a
    totals: dict[int, int] = {}
    if dur.size:
        for s in np.unique(state):
            ms = int(dur[state == s].sum())
            if ms:
                totals[int(s)] = ms
    unknown = (window[1] - window[0]) - int(dur.sum())
    if unknown:
        totals[UNKNOWN] = unknown
    return totals


def known_ms_per_bucket(runs: list[Run] | np.ndarray, window: tuple[int, int], stale_ms: int,
                        bucket_starts: list[int], every_ms: int) -> dict[int, int]:
    """Time with a known state in each bucket [t, t + every) of the window."""
    a, b, _ = _run_spans(runs, window, stale_ms)
    out = {}
    for t in bucket_starts:
        lo, hi = max(t, window[0]), min(t + every_ms, window[1])
        out[t] = int((b.clip(lo, hi) - a.clip(lo, hi)).sum()) if hi > lo and a.size else 0
    return out


@dataclass(frozen=True)
class StateNow:
    state: int | None  # None: no recent data
    since_ms: int | None
    since_is_lower_bound: bool  # the state already held at the start of what was read


def current_state(runs: list[Run], now_ms: int, window_start_ms: int, stale_ms: int) -> StateNow:
    """The state now, since when (the start of its run), or None when the last sample is stale."""
    if not runs or now_ms - runs[-1][1] > stale_ms:
        return StateNow(None, runs[-1][1] + stale_ms if runs else None, False)
    first, _, state = runs[-1]
    return StateNow(state, max(first, window_start_ms), first <= window_start_ms)


# -- KPIs: the report's, over one window ----------------------------------------------------------
def window_totals(state_ms: dict[int, int], window_ms: int, good: int, scrap: int, ideal_cycle_s: float,
                  policy: Policy) -> kpi.Totals:
    """One machine's window as one group of ``analytics.kpi.Totals``, the sums a report makes of its buckets.

    The same classification as ``kpi.totals`` (the policy's kinds and failure codes); time in a
    code the policy does not list is, as in the reports, time with no known state.
    """
    def one(v: float) -> kpi.FloatArray:
        return np.array([float(v)])

    def by_kind(*kinds: StateKind) -> int:
        return sum(state_ms.get(c, 0) for c in policy.codes(*kinds))

    codes = [s.code for s in policy.states]
    produced = good + scrap
    return kpi.Totals(
        calendar_ms=one(window_ms), known_ms=one(min(sum(state_ms.get(c, 0) for c in codes), window_ms)),
        run_ms=one(by_kind(StateKind.RUN)), speed_ms=one(by_kind(StateKind.SPEED_LOSS)),
        unplanned_ms=one(by_kind(StateKind.UNPLANNED)), planned_ms=one(by_kind(StateKind.PLANNED)),
        failures=one(0), failure_ms=one(sum(state_ms.get(c, 0) for c in policy.failure_codes())),
        good=one(good), scrap=one(scrap), std_s=one(ideal_cycle_s * produced), std_good_s=one(ideal_cycle_s * good),
        mi_ms=one(0), mi_runs=one(0), energy_wh=one(0), energy_good=one(0), gap_good=one(0), gap_scrap=one(0),
        state_ms={c: one(state_ms.get(c, 0)) for c in codes}, state_runs={c: one(0) for c in codes})


#: The report's KPIs the live view shows.
LIVE_KPIS = tuple(kpi.KPI_BY_KEY[k] for k in ("oee", "availability", "performance", "quality"))


#: Running time, in ideal cycles, before the live estimate gives performance (and so OEE). The count
#: moves by whole parts while running time grows smoothly, so on n cycles' running the figure is off
#: by up to 1/n: at a shift's start one part in 16 s of a 22 s cycle would read 137% and look like a
#: wrong ideal cycle time. Ten cycles bound that to 10%.
MIN_RUNNING_CYCLES = 10


def min_running_s(ideal_cycle_s: float) -> float:
    """Running time before a machine of this ideal cycle gets a live performance figure (``MIN_RUNNING_CYCLES``)."""
    return MIN_RUNNING_CYCLES * max(ideal_cycle_s, 0.0)


def estimate(t: kpi.Totals, min_running: float = 0.0, machines: int = 1) -> dict[str, Any]:
    """The live OEE block: the report's OEE, availability, performance and quality (``kpi.ratios``), coverage, counts.

    Time without data lowers coverage, not availability, as in the reports. ``t`` is one group
    (a machine, or a line's machines added together). Below ``min_running`` seconds of running
    time (``min_running_s``) performance is None and ``performance_after_s`` says when it comes:
    too few parts for a figure, not a bad one. OEE is ideal time of good parts over planned time,
    so it waits for as much planned time instead (a machine down all shift has OEE 0, at once).
    For a line, ``t`` and ``min_running`` are its ``machines``' sums; ``performance_after_s`` is
    per machine, as a user reads "after 4 min of running" on a line whose presses run together.
    """
    k = {key: (None if np.isnan(v[0]) else float(v[0])) for key, v in kpi.ratios(LIVE_KPIS, t).items()}
    calendar, known = float(t.calendar_ms[0]), float(t.known_ms[0])
    planned_s, running_s = float(t.pbt_ms[0]) / 1000, float(t.apt_ms[0]) / 1000
    early = running_s < min_running
    return {"availability": k["availability"], "performance": None if early else k["performance"],
            "quality": k["quality"], "oee": None if planned_s < min_running else k["oee"],
            "coverage": known / calendar if calendar else 0.0,
            "planned_s": planned_s, "running_s": running_s,
            "performance_after_s": min_running / max(machines, 1) if early else None,
            "unknown_s": (calendar - known) / 1000, "good": int(t.good[0]), "scrap": int(t.scrap[0]),
            "label": OEE_LABEL}

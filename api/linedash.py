"""What a line dashboard shows, computed from samples: pure functions, no I/O, no clock.

Times are epoch ms; calendars are evaluated in the tenant's time zone. The OEE here is a
live estimate for the shift so far (ISO 22400 factors from the state register and the
counters), labelled as such on the dashboard; period reports come from analytics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from analytics.counters import counter_deltas
from analytics.policy import DEFAULT_STATES, StateKind
from analytics.states import UNKNOWN, Interval, state_intervals, time_in_state

# State register values (simulators/kinds.py MachineState; the press PLC's map).
IDLE, LOADING, PROCESSING, UNLOADING, FAULT, PLANNED_STOP, MICRO_STOP, CHANGEOVER, NOT_SCHEDULED = range(9)
# The same classes the reports use (analytics.policy.DEFAULT_STATES), so the live estimate and
# the report agree on what is production time: run and speed-loss states form APT, planned
# states leave PBT, everything else (faults, changeovers, unknown codes) is delay inside PBT.
RUNNING_STATES = tuple(d.code for d in DEFAULT_STATES if d.kind in (StateKind.RUN, StateKind.SPEED_LOSS))
PLANNED_STATES = tuple(d.code for d in DEFAULT_STATES if d.kind is StateKind.PLANNED)

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


def shift_occurrences(shifts: list[ShiftSpec], tz: str, around_ms: int) -> list[ShiftWindow]:
    """Every shift that starts between two days before and one day after the instant."""
    zone = ZoneInfo(tz)
    local = datetime.fromtimestamp(around_ms / 1000, zone)
    out = []
    for day_offset in (-2, -1, 0, 1):
        day = (local + timedelta(days=day_offset)).date()
        for s in shifts:
            if str(day.weekday()) not in s.weekdays:
                continue
            start = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=s.start_minute)
            length = (s.end_minute - s.start_minute) % (24 * 60) or 24 * 60
            out.append(ShiftWindow(s.name, _ms(start), _ms(start + timedelta(minutes=length))))
    return sorted(out, key=lambda w: w.start_ms)


def current_shift(shifts: list[ShiftSpec], tz: str, now_ms: int) -> ShiftWindow | None:
    """The shift running now, else the one that ended last (within a day), else None."""
    occ = shift_occurrences(shifts, tz, now_ms)
    running = [w for w in occ if w.start_ms <= now_ms < w.end_ms]
    if running:
        return running[-1]
    ended = [w for w in occ if now_ms - 86_400_000 <= w.end_ms <= now_ms]
    return ended[-1] if ended else None


def next_shift(shifts: list[ShiftSpec], tz: str, now_ms: int) -> ShiftWindow | None:
    """The next shift to start after now (within a day), for "no shift now: the next starts at ..."."""
    upcoming = [w for w in shift_occurrences(shifts, tz, now_ms) if now_ms < w.start_ms <= now_ms + 86_400_000]
    return upcoming[0] if upcoming else None


def shift_info(shifts: list[ShiftSpec], tz: str, now_ms: int) -> dict | None:
    """The shift the dashboard's OEE is for, and whether it is running now.

    Between shifts (at 02:51 for a day-only tenant) the OEE shown is the last shift's, which
    ended yesterday: ``running`` false and ``next`` let the page say so instead of calling
    yesterday's day shift the current one.
    """
    w = current_shift(shifts, tz, now_ms)
    if w is None:
        return None
    nxt = next_shift(shifts, tz, now_ms)
    return {"name": w.name, "start_ms": w.start_ms, "end_ms": w.end_ms, "running": w.start_ms <= now_ms < w.end_ms,
            "next": {"name": nxt.name, "start_ms": nxt.start_ms, "end_ms": nxt.end_ms} if nxt else None}


def day_start_ms(tz: str, now_ms: int) -> int:
    local = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(tz))
    return _ms(datetime(local.year, local.month, local.day, tzinfo=ZoneInfo(tz)))


def planned_ms(shifts: list[ShiftSpec], tz: str, start_ms: int, end_ms: int) -> int:
    """Shift time inside [start, end): the planned time a count target is based on."""
    total = 0
    for w in shift_occurrences(shifts, tz, end_ms):
        total += max(0, min(w.end_ms, end_ms) - max(w.start_ms, start_ms))
    return total


def count_since(bucket_ts: list[int], values: list[float], since_ms: int, bits: int = 16) -> tuple[int, int]:
    """Parts counted after ``since_ms`` from per-bucket last counter readings.

    The bucket before ``since_ms`` (if any) is the baseline. Returns (count, corrections):
    wraps at 2**bits and PLC resets are corrected by ``analytics.counters`` and counted.
    Assumes fewer than 10% of the register range per bucket (presses: a few parts a minute).
    """
    if not values:
        return 0, 0
    first = next((i for i, t in enumerate(bucket_ts) if t >= since_ms), None)
    if first is None:
        return 0, 0
    base = max(first - 1, 0)
    d = counter_deltas([int(v) for v in values[base:]], bits=bits)
    # delta k lies between readings base+k and base+k+1; when there is no baseline bucket the
    # first reading itself is the start
    return d.total, len(d.corrections)


@dataclass(frozen=True)
class OeeEstimate:
    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    coverage: float
    planned_s: float
    running_s: float
    unknown_s: float
    label: str = OEE_LABEL

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("availability", "performance", "quality", "oee", "coverage",
                                              "planned_s", "running_s", "unknown_s", "label")}


def oee_estimate(intervals: list[Interval], good: int, scrap: int, ideal_cycle_s: float) -> OeeEstimate:
    """ISO 22400: A = APT/PBT, P = PRU·PQ/APT, Q = GQ/PQ.

    PBT is the window minus planned stops; time without data stays in PBT (as not
    producing) and is reported as coverage, rather than silently dropped.
    """
    return oee_from_totals(time_in_state(intervals), good, scrap, ideal_cycle_s)


@dataclass(frozen=True)
class StateNow:
    state: int | None  # None: no recent data
    since_ms: int | None
    since_is_lower_bound: bool  # the state already held at the start of what was read


def state_now(intervals: list[Interval], window_start_ms: int) -> StateNow:
    if not intervals or intervals[-1].state == UNKNOWN:
        return StateNow(None, intervals[-1].start_ms if intervals else None, False)
    last = intervals[-1]
    return StateNow(last.state, last.start_ms, last.start_ms <= window_start_ms)


def intervals_for(ts: list[int], states: list[float], start_ms: int, end_ms: int, stale_ms: int) -> list[Interval]:
    return state_intervals(ts, [int(s) for s in states], (start_ms, end_ms), stale_ms)


def known_ms_in(intervals: list[Interval], start_ms: int, end_ms: int) -> int:
    """Time with a known state inside [start, end): the part of a bucket that has data."""
    return sum(max(0, min(iv.end_ms, end_ms) - max(iv.start_ms, start_ms)) for iv in intervals if iv.state != UNKNOWN)


def input_seconds(mean_signal: float, known_ms: int) -> float:
    """Seconds the 0/1 material-input signal was on, from its mean over the time that has data.

    Scaling by the whole bucket instead would count hours without data as input time.
    """
    return float(mean_signal) * known_ms / 1000


def input_trend(buckets: dict[int, tuple[float, int]]) -> list[dict]:
    """Material input time per bucket: bucket start → (input seconds, parts made), with seconds per part."""
    return [{"ts": start, "input_s": round(secs, 1), "parts": parts,
             "input_s_per_part": round(secs / parts, 1) if parts else None}
            for start, (secs, parts) in sorted(buckets.items())]


def add_sample(runs: list[list[int]], ts: int, state: int, stale_ms: int) -> None:
    """Fold one state sample (in time order) into runs of [first ts, last ts, state].

    A run continues while the state repeats and samples are at most ``stale_ms`` apart, so
    runs hold exactly what ``state_intervals`` needs, in a fraction of the samples.
    """
    if runs and runs[-1][2] == state and ts - runs[-1][1] <= stale_ms:
        if ts > runs[-1][1]:
            runs[-1][1] = ts
        return
    runs.append([ts, ts, state])


def runs_to_intervals(runs: list[list[int]], window: tuple[int, int], stale_ms: int) -> list[Interval]:
    """The same intervals ``analytics.states.state_intervals`` gives for the samples behind the runs."""
    start, end = window
    out: list[Interval] = []

    def emit(a: int, b: int, state: int) -> None:
        a, b = max(a, start), min(b, end)
        if b <= a:
            return
        if out and out[-1].state == state and out[-1].end_ms == a:
            out[-1] = Interval(out[-1].start_ms, b, state)
        else:
            out.append(Interval(a, b, state))

    cursor = start
    for i, (first, last, state) in enumerate(runs):
        if first >= end:
            break
        nxt = runs[i + 1][0] if i + 1 < len(runs) else end
        valid_until = min(nxt, last + stale_ms, end)
        if valid_until <= start:
            continue
        emit(cursor, first, UNKNOWN)
        emit(first, valid_until, state)
        cursor = max(cursor, valid_until)
    emit(cursor, end, UNKNOWN)
    return out


def _run_spans(runs: list[list[int]], window: tuple[int, int], stale_ms: int):
    """Per run, the clipped span [a, b) its state holds inside the window (vectorised)."""
    import numpy as np

    start, end = window
    if not runs:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    arr = np.asarray(runs, dtype=np.int64)
    first, last, state = arr[:, 0], arr[:, 1], arr[:, 2]
    nxt = np.append(first[1:], end)
    valid = np.minimum(np.minimum(nxt, last + stale_ms), end)
    a = np.maximum(first, start)
    b = np.maximum(np.minimum(valid, end), a)
    return a, b, state


def run_totals(runs: list[list[int]], window: tuple[int, int], stale_ms: int) -> dict[int, int]:
    """Time in each state inside the window, UNKNOWN for the rest: ``time_in_state`` without building intervals."""
    import numpy as np

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


def known_ms_per_bucket(runs: list[list[int]], window: tuple[int, int], stale_ms: int,
                        bucket_starts: list[int], every_ms: int) -> dict[int, int]:
    a, b, _ = _run_spans(runs, window, stale_ms)
    out = {}
    for t in bucket_starts:
        lo, hi = max(t, window[0]), min(t + every_ms, window[1])
        out[t] = int((b.clip(lo, hi) - a.clip(lo, hi)).sum()) if hi > lo and a.size else 0
    return out


def current_state(runs: list[list[int]], now_ms: int, window_start_ms: int, stale_ms: int) -> StateNow:
    """The state now, since when (the start of its run), or None when the last sample is stale."""
    if not runs or now_ms - runs[-1][1] > stale_ms:
        return StateNow(None, runs[-1][1] + stale_ms if runs else None, False)
    first, _, state = runs[-1]
    return StateNow(state, max(first, window_start_ms), first <= window_start_ms)


def oee_from_totals(totals: dict[int, int], good: int, scrap: int, ideal_cycle_s: float) -> OeeEstimate:
    """ISO 22400 as in ``oee_estimate``, from time-in-state totals (UNKNOWN included)."""
    window = sum(totals.values())
    pbt = window - sum(totals.get(s, 0) for s in PLANNED_STATES)
    apt = sum(totals.get(s, 0) for s in RUNNING_STATES)
    produced = good + scrap
    availability = apt / pbt if pbt > 0 else None
    performance = (ideal_cycle_s * 1000 * produced / apt) if apt > 0 else None
    quality = good / produced if produced > 0 else None
    parts = (availability, performance, quality)
    oee = parts[0] * parts[1] * parts[2] if all(p is not None for p in parts) else None  # type: ignore[operator]
    known = window - totals.get(UNKNOWN, 0)
    return OeeEstimate(availability, performance, quality, oee, known / window if window else 0.0, pbt / 1000,
                       apt / 1000, totals.get(UNKNOWN, 0) / 1000)

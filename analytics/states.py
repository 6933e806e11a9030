"""Machine-state intervals from sampled state values, with explicit UNKNOWN time.

A state lasts until the next sample, but only up to a staleness limit: after that the
machine is UNKNOWN, never assumed running or down, and the coverage says how much of the
window had data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNKNOWN = -1


@dataclass(frozen=True)
class Interval:
    start_ms: int
    end_ms: int
    state: int  # a state code, or UNKNOWN

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


def state_intervals(
    ts_ms: np.ndarray | list[int], states: np.ndarray | list[int], window: tuple[int, int], stale_ms: int
) -> list[Interval]:
    """Intervals covering exactly [window start, window end), merged where the state repeats.

    The last sample's state is closed at the window end (or earlier when stale), never left
    open-ended. Samples must be in time order.
    """
    start, end = window
    t = np.asarray(ts_ms, dtype=np.int64)
    s = np.asarray(states, dtype=np.int64)
    out: list[Interval] = []

    def emit(a: int, b: int, state: int) -> None:
        if b <= a:
            return
        if out and out[-1].state == state and out[-1].end_ms == a:
            out[-1] = Interval(out[-1].start_ms, b, state)
        else:
            out.append(Interval(a, b, state))

    cursor = start
    for i in range(len(t)):
        sample_t, sample_s = int(t[i]), int(s[i])
        valid_until = min(int(t[i + 1]) if i + 1 < len(t) else end, sample_t + stale_ms, end)
        if valid_until <= start:
            continue
        if sample_t >= end:
            break
        a = max(sample_t, start)
        emit(cursor, a, UNKNOWN)
        emit(a, valid_until, sample_s)
        cursor = max(cursor, valid_until)
    emit(cursor, end, UNKNOWN)
    return out


def time_in_state(intervals: list[Interval]) -> dict[int, int]:
    totals: dict[int, int] = {}
    for iv in intervals:
        totals[iv.state] = totals.get(iv.state, 0) + iv.duration_ms
    return totals


def coverage(intervals: list[Interval]) -> float:
    """Share of the window with known state (0..1)."""
    total = sum(iv.duration_ms for iv in intervals)
    known = sum(iv.duration_ms for iv in intervals if iv.state != UNKNOWN)
    return known / total if total else 0.0

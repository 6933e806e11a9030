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


def spans(first_ms, last_ms, states, window: tuple[int, int], stale_ms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per run of samples (first and last timestamp, state), the span [a, b) its state holds in the window.

    A run's state holds from its first sample until the next run starts, at most
    ``stale_ms`` past its last sample, and never past the window end; a lone sample is a run
    whose first and last are the same. Empty spans (a == b) are runs outside the window.
    This is the one place that rule is written; ``state_intervals`` and the live dashboard's
    runs (``analytics.live``) both use it. Runs must be in time order.
    """
    start, end = window
    first = np.asarray(first_ms, dtype=np.int64)
    last = np.asarray(last_ms, dtype=np.int64)
    state = np.asarray(states, dtype=np.int64)
    if not first.size:
        return first, first, state
    nxt = np.append(first[1:], end)
    valid = np.minimum(np.minimum(nxt, last + stale_ms), end)
    a = np.minimum(np.maximum(first, start), end)
    return a, np.maximum(valid, a), state


def state_intervals(
    ts_ms: np.ndarray | list[int], states: np.ndarray | list[int], window: tuple[int, int], stale_ms: int
) -> list[Interval]:
    """Intervals covering exactly [window start, window end), merged where the state repeats.

    The last sample's state is closed at the window end (or earlier when stale), never left
    open-ended. Samples must be in time order.
    """
    start, end = window
    a, b, s = spans(ts_ms, ts_ms, states, window, stale_ms)
    out: list[Interval] = []

    def emit(lo: int, hi: int, state: int) -> None:
        if hi <= lo:
            return
        if out and out[-1].state == state and out[-1].end_ms == lo:
            out[-1] = Interval(out[-1].start_ms, hi, state)
        else:
            out.append(Interval(lo, hi, state))

    cursor = start
    for lo, hi, state in zip(a.tolist(), b.tolist(), s.tolist()):
        if hi <= lo:
            continue
        emit(cursor, lo, UNKNOWN)
        emit(lo, hi, state)
        cursor = hi
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

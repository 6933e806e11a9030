"""Counter deltas that survive PLC counter wraps, resets and corrections, with every correction flagged.

A uint16 part counter wraps at 65535 and restarts at 0 when the PLC restarts; summing raw
differences would count -65535 parts. Peers get this wrong (InfluxDB's Flux ``oee``
package undercounts across resets), so each correction is reported, not hidden.

A drop alone does not say what happened, so each one is judged:

- a small step back (``max_back`` parts or fewer, the counter not near zero) is a
  *correction*: a PLC that corrects its count, or a sample that arrived out of order. Nothing
  new is counted, and the parts between the lower reading and the highest one seen are not
  counted a second time when the counter climbs back;
- a drop from near the top of the register is a *wrap* only if the parts a wrap implies
  (cur + 2**bits - prev) fit the time between the readings at the machine's top rate
  (``max_rate_per_s``); otherwise it is a *reset* (a PLC restarted near the top: 65317 -> 0
  would be 219 parts in 60 s);
- a drop from near the top that the readings cannot decide (across a data gap, where both
  fit, or where neither fits) is *ambiguous*: the certain part (cur) is counted and the case
  is flagged, never silently guessed;
- any other drop is a reset: delta = cur.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

#: Largest backward step read as a correction rather than a reset (parts).
MAX_BACK = 10
#: Headroom over the ideal rate when judging what a wrap implies: the ideal cycle is the
#: machine's best, but an ideal set a little too slow must not turn real wraps into resets.
RATE_SLACK = 2.0


class Correction(str, Enum):
    WRAP = "wrap"  # passed the top of the register: delta = cur + 2**bits - prev
    RESET = "reset"  # PLC restart or manual reset: delta = cur
    STEP_BACK = "step_back"  # a small backward step (PLC correction, out-of-order sample): delta = 0
    AMBIGUOUS = "wrap_or_reset"  # near the top, the readings cannot tell wrap from reset: delta = cur, flagged


@dataclass(frozen=True)
class CounterDeltas:
    deltas: np.ndarray  # int64, one per consecutive pair of samples
    corrections: list[tuple[int, Correction]]  # (index into deltas, kind)

    @property
    def total(self) -> int:
        return int(self.deltas.sum())


def max_parts(dt_ms: float, max_rate_per_s: float) -> float:
    """Most parts a machine can add in ``dt_ms`` at its top rate, plus one cycle in flight."""
    return dt_ms / 1000 * max_rate_per_s * RATE_SLACK + 1


def counter_deltas(values: np.ndarray | list[int], bits: int | None = 16, wrap_margin: float = 0.1,
                   ts_ms: np.ndarray | list[int] | None = None, max_rate_per_s: float | None = None,
                   stale_ms: int | None = None, max_back: int = MAX_BACK) -> CounterDeltas:
    """Increments between consecutive counter readings (see the module docstring for the rules).

    Without ``ts_ms`` and ``max_rate_per_s`` a drop from within ``wrap_margin`` of the top is
    a wrap, as before; with them the implied rate decides. ``stale_ms``: readings further apart
    than this straddle a data gap, where a drop near the top is ambiguous.
    """
    v = np.asarray(values, dtype=np.int64)
    if v.size < 2:
        return CounterDeltas(np.zeros(0, dtype=np.int64), [])
    prev, cur = v[:-1], v[1:]
    deltas = cur - prev
    decreased = np.flatnonzero(deltas < 0)
    corrections: list[tuple[int, Correction]] = []
    if not len(decreased):
        return CounterDeltas(deltas, corrections)
    top = 2**bits if bits else None
    dt = np.diff(np.asarray(ts_ms, dtype=np.int64)) if ts_ms is not None else None
    for i in decreased.tolist():
        if deltas[i] >= 0:  # already settled while recovering from an earlier step back
            continue
        p, c = int(prev[i]), int(cur[i])
        if p - c <= max_back and c > max_back:
            deltas[i] = 0
            corrections.append((i, Correction.STEP_BACK))
            _recover(deltas, cur, i, high=p)
            continue
        if top is None or p < top * (1 - wrap_margin):
            deltas[i] = c
            corrections.append((i, Correction.RESET))
            continue
        wrapped = c + top - p
        if dt is None or max_rate_per_s is None:
            deltas[i] = wrapped
            corrections.append((i, Correction.WRAP))
            continue
        bound = max_parts(float(dt[i]), max_rate_per_s)
        across_gap = stale_ms is not None and dt[i] > stale_ms
        if wrapped <= bound and not across_gap:
            deltas[i], kind = wrapped, Correction.WRAP
        elif c <= bound and wrapped > bound:
            deltas[i], kind = c, Correction.RESET
        else:  # both fit (a gap hides it) or neither does: count the certain part, flag it
            deltas[i], kind = c, Correction.AMBIGUOUS
        corrections.append((i, kind))
    return CounterDeltas(deltas, corrections)


def _recover(deltas: np.ndarray, cur: np.ndarray, i: int, high: int) -> None:
    """After a step back at ``i``, readings count again only once they pass the highest one seen."""
    j = i + 1
    while j < len(deltas) and deltas[j] >= 0 and cur[j] < high:
        deltas[j] = 0
        j += 1
    if j < len(deltas) and deltas[j] >= 0:
        deltas[j] = cur[j] - high

"""Counter deltas that survive PLC counter wraps and resets, with every correction flagged.

A uint16 part counter wraps at 65535 and restarts at 0 when the PLC restarts; summing raw
differences would count -65535 parts. Peers get this wrong (InfluxDB's Flux ``oee``
package undercounts across resets), so each correction is reported, not hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


class Correction(str, Enum):
    WRAP = "wrap"  # passed the top of the register: delta = cur + 2**bits - prev
    RESET = "reset"  # PLC restart or manual reset: delta = cur


@dataclass(frozen=True)
class CounterDeltas:
    deltas: np.ndarray  # int64, one per consecutive pair of samples
    corrections: list[tuple[int, Correction]]  # (index into deltas, kind)

    @property
    def total(self) -> int:
        return int(self.deltas.sum())


def counter_deltas(values: np.ndarray | list[int], bits: int | None = 16, wrap_margin: float = 0.1) -> CounterDeltas:
    """Increments between consecutive counter readings.

    A decrease is a wrap when the register width is known and the previous reading was
    within ``wrap_margin`` of the top (2**bits); any other decrease is a reset.
    """
    v = np.asarray(values, dtype=np.int64)
    if v.size < 2:
        return CounterDeltas(np.zeros(0, dtype=np.int64), [])
    prev, cur = v[:-1], v[1:]
    deltas = cur - prev
    decreased = np.flatnonzero(deltas < 0)
    corrections: list[tuple[int, Correction]] = []
    top = 2**bits if bits else None
    for i in decreased:
        if top is not None and prev[i] >= top * (1 - wrap_margin):
            deltas[i] = cur[i] + top - prev[i]
            corrections.append((int(i), Correction.WRAP))
        else:
            deltas[i] = cur[i]
            corrections.append((int(i), Correction.RESET))
    return CounterDeltas(deltas, corrections)

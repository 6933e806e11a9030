"""What every store backend provides, and the errors that tell a caller whether to retry."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from plant import MachineRef

#: Aggregates a history query may ask for; every backend computes them in the store.
AGGREGATES = ("mean", "min", "max", "last", "count")

#: Stored values: numbers (and booleans, as 0.0/1.0) are floats, text stays text.
StoredValue = float | str


@dataclass(frozen=True, slots=True)
class Point:
    """The values of one machine at one source timestamp (epoch ms)."""

    machine: MachineRef
    ts_ms: int
    values: Mapping[str, bool | int | float | str]


@dataclass(frozen=True, slots=True)
class LatestValue:
    ts_ms: int
    value: StoredValue


@dataclass(frozen=True, slots=True)
class ValueCount:
    """How long one value of a tag held in one bucket, and how many runs of it started there.

    A sample's value holds until the tag's next sample, at most ``stale_ms`` (then the time
    is unknown); the newest sample, with no successor yet, holds nothing. Hold time is
    booked to the bucket its hold ends in, (a, a + every]; a run starts at a sample whose
    value differs from the previous sample's and is booked to that sample's bucket. Works
    for fixed-rate polling and for report-on-change with a heartbeat alike.
    """

    bucket_ms: int
    value: float
    held_ms: int
    runs: int


class StoreError(Exception):
    """Base of store failures."""


class StoreUnavailable(StoreError):
    """The store could not be reached or failed transiently: retry later, keep the data."""


class StoreRejected(StoreError):
    """The store refused the data itself (bad line, type conflict): retrying will not help."""


class TimeSeriesStore(Protocol):
    def write(self, points: Sequence[Point]) -> None:
        """Store points idempotently: the same machine, tag and timestamp overwrite."""

    def write_columns(self, machine: MachineRef, columns: Mapping[str, tuple[Sequence[int], Sequence[float]]]) -> None:
        """Bulk write of numbers for one machine: tag -> (epoch ms, values), same rows as ``write``."""

    def machines(self) -> list[MachineRef]: ...

    def latest(self, machine: MachineRef) -> dict[str, LatestValue]:
        """The newest value of every tag of the machine, each with its own timestamp."""

    def history(
        self, machine: MachineRef, tag: str, start_ms: int, end_ms: int, every_ms: int, agg: str = "mean"
    ) -> list[tuple[int, StoredValue]]:
        """Values of one tag in [start, end), aggregated in epoch-aligned buckets of every_ms.

        Buckets without data are left out. ``every_ms=0`` returns the raw points.
        """

    def counter_buckets(
        self, machine: MachineRef, tag: str, start_ms: int, end_ms: int, every_ms: int
    ) -> list[tuple[int, float, float, float]]:
        """(bucket, last, max, min) of a numeric tag per epoch-aligned bucket of [start, end), in one pass.

        What counter increments need (``analytics.rollup``): a bucket that only rose ends at its
        max and never dipped below the previous bucket's last. Buckets without numbers are left out.
        """

    def value_buckets(
        self, machine: MachineRef, tag: str, start_ms: int, end_ms: int, every_ms: int
    ) -> list[tuple[int, float, float, float]]:
        """(bucket, mean, min, max) of a numeric tag per epoch-aligned bucket of [start, end), in one pass.

        What a trend draws; the same figures as ``history`` with mean, min and max, read once
        instead of three times. Buckets without numbers are left out; a text tag is rejected.
        """

    def state_durations(
        self, machine: MachineRef, tag: str, start_ms: int, end_ms: int, every_ms: int, values: Sequence[float],
        stale_ms: int,
    ) -> list[ValueCount]:
        """Time held and runs started of each of ``values`` of a numeric tag, per epoch-aligned bucket.

        Computed in the store (SQL window functions; InfluxQL elapsed/difference subqueries):
        time in each machine state without pulling raw points. Empty results are left out.
        ``start_ms`` and ``end_ms`` should be multiples of ``every_ms``.
        """

    def state_runs(
        self, machine: MachineRef, tag: str, start_ms: int, end_ms: int, stale_ms: int
    ) -> list[tuple[int, int, int]]:
        """The numeric samples of [start, end) folded into runs of (first ts, last ts, int(value)).

        A run goes on while the value repeats and samples are at most ``stale_ms`` apart
        (``fold_runs``; ``analytics.live.add_sample`` folds one sample at a time by the same rule).
        A live dashboard needs the runs of a day, not its tens of thousands of samples: the
        store folds them instead of handing every row to Python.
        """

    def edge_samples(
        self, machine: MachineRef, tag: str, edges_ms: Sequence[int], stale_ms: int
    ) -> list[tuple[tuple[int, float] | None, int | None]]:
        """Per edge a: the last numeric sample in [a - stale, a) as (ts, value), and the time of the
        first one in [a, a + stale]; None where there is none. In as few requests as the store allows.

        What a report needs to split the hold that crosses an edge (``analytics.rollup.correct_edges``):
        ``state_durations`` books a hold to the bucket it ends in.
        """

    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""

    def close(self) -> None: ...


def stored_value(value: bool | int | float | str) -> StoredValue:
    """Numbers are stored as floats so that one tag never changes type in the store.

    InfluxDB rejects a field whose type changes (int vs float) within a shard; a JSON
    publisher cannot always tell 100 from 100.0. Floats are exact for integers up to 2**53.
    """
    if isinstance(value, str):
        return value
    return float(value)


def fold_runs(ts: Sequence[int] | Any, values: Sequence[float] | Any, stale_ms: int) -> list[tuple[int, int, int]]:
    """Samples in time order (numpy-compatible arrays of epoch ms and numbers) as runs (first, last, int(value)).

    A new run starts where the value (as an integer) changes or the gap to the previous sample
    exceeds ``stale_ms``; the same rule as ``analytics.live.add_sample``, vectorised.
    """
    import numpy as np

    t = np.asarray(ts, dtype=np.int64)
    v = np.trunc(np.asarray(values, dtype=np.float64)).astype(np.int64)
    if not t.size:
        return []
    start = np.ones(t.size, dtype=bool)
    start[1:] = (v[1:] != v[:-1]) | (t[1:] - t[:-1] > stale_ms)
    first = np.flatnonzero(start)
    last = np.append(first[1:] - 1, t.size - 1)
    return list(zip(t[first].tolist(), t[last].tolist(), v[first].tolist()))


def machines_of(store: TimeSeriesStore, tenants: Collection[str] | None) -> list[MachineRef]:
    """The machines of these tenants (None: every tenant), reading only the stores that hold them.

    On a sharded store a tenant's list must not depend on another tenant's shard being up
    (``ShardedStore.machines_of``); a single store lists everything and filters."""
    pick = getattr(store, "machines_of", None)
    if tenants is not None and pick is not None:
        chosen: list[MachineRef] = pick(tenants)
        return chosen
    return [m for m in store.machines() if tenants is None or m.tenant in tenants]


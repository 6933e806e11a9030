"""ISO 22400-2 KPIs as ratios of sums, per group of buckets (a shift, a day, a whole window).

- APT (actual production time) = run + speed-loss states; ADET = unplanned stops;
  planned stops leave planned busy time: PBT = time with data - planned stops.
- Availability = APT / PBT; performance = ideal cycle x produced / APT (never from time
  alone, and never over planned time, which would count availability twice);
  quality = good / produced; OEE = A x P x Q = ideal x good / PBT.
- Time without data is in no state: it lowers coverage, not availability, and every
  result carries its coverage so a reader can see how much was measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any, Callable, Generic, Iterable, TypeVar

import numpy as np
import numpy.typing as npt

from analytics import deadline
from analytics.buckets import Buckets
from analytics.policy import Policy, StateKind


#: One value per group (per day, per shift...).
FloatArray = npt.NDArray[np.float64]


@dataclass
class Totals:
    """Sums per group; every field has one entry per group."""

    calendar_ms: FloatArray
    known_ms: FloatArray
    run_ms: FloatArray
    speed_ms: FloatArray
    unplanned_ms: FloatArray
    planned_ms: FloatArray
    failures: FloatArray
    failure_ms: FloatArray
    good: FloatArray
    scrap: FloatArray
    std_s: FloatArray  # sum of ideal cycle x produced: standard time earned, controls for product mix
    std_good_s: FloatArray
    mi_ms: FloatArray
    mi_runs: FloatArray
    energy_wh: FloatArray
    energy_good: FloatArray  # good parts in buckets where the meter had data
    gap_good: FloatArray  # parts counted across data gaps: made at some time nobody saw, so in no rate
    gap_scrap: FloatArray
    state_ms: dict[int, FloatArray] = field(default_factory=dict)
    state_runs: dict[int, FloatArray] = field(default_factory=dict)

    @classmethod
    def zeros(cls, groups: int, codes: list[int]) -> Totals:
        def z() -> FloatArray:
            return np.zeros(groups)

        plain = {f.name: z() for f in fields(cls) if f.name not in ("state_ms", "state_runs")}
        return cls(**plain, state_ms={c: z() for c in codes}, state_runs={c: z() for c in codes})

    def __add__(self, other: Totals) -> Totals:
        out = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self) if f.name not in ("state_ms", "state_runs")}
        return Totals(**out, state_ms={c: v + other.state_ms[c] for c, v in self.state_ms.items()},
                      state_runs={c: v + other.state_runs[c] for c, v in self.state_runs.items()})

    def total(self) -> Totals:
        """All groups summed into one."""
        plain = {f.name: np.array([getattr(self, f.name).sum()]) for f in fields(self) if f.name not in ("state_ms", "state_runs")}
        return Totals(**plain, state_ms={c: np.array([v.sum()]) for c, v in self.state_ms.items()},
                      state_runs={c: np.array([v.sum()]) for c, v in self.state_runs.items()})

    def take(self, mask: np.ndarray) -> Totals:
        plain = {f.name: getattr(self, f.name)[mask] for f in fields(self) if f.name not in ("state_ms", "state_runs")}
        return Totals(**plain, state_ms={c: v[mask] for c, v in self.state_ms.items()},
                      state_runs={c: v[mask] for c, v in self.state_runs.items()})

    @property
    def apt_ms(self) -> np.ndarray:
        return self.run_ms + self.speed_ms

    @property
    def pbt_ms(self) -> np.ndarray:
        return self.known_ms - self.planned_ms


def totals(b: Buckets, labels: np.ndarray, groups: int, policy: Policy, ideal_cycle_s: float,
           now_ms: int | None = None) -> Totals:
    """Sum one machine's buckets into groups; buckets labelled -1 (outside every shift) are left out.

    With ``now_ms``, the calendar time of a bucket ends at now: the rest of the running hour has
    not happened yet, so it is neither data nor "no data" (it lowered coverage and filled the
    no-data figure of today by up to an hour per machine)."""
    keep = labels >= 0
    lab = labels[keep]

    def g(values: np.ndarray) -> np.ndarray:
        return np.bincount(lab, weights=np.nan_to_num(values[keep]), minlength=groups)[:groups]

    codes = [s.code for s in policy.states]

    def by_kind(*k: StateKind) -> np.ndarray:
        return sum((b.state_ms[c] for c in policy.codes(*k)), np.zeros(len(b.start_ms)))

    known = b.known_ms()
    calendar = np.full(len(b.start_ms), float(b.bucket_ms))
    if now_ms is not None:
        calendar = np.clip(now_ms - b.start_ms.astype(float), 0.0, float(b.bucket_ms))
    fail_codes = policy.failure_codes()
    energy_known = ~np.isnan(b.energy_wh)
    # standard time per part: the product's ideal cycle where the bucket knows its product (mix control)
    ideal = np.full(len(b.start_ms), ideal_cycle_s) if b.ideal_s is None else np.where(np.isnan(b.ideal_s), ideal_cycle_s, b.ideal_s)
    return Totals(
        calendar_ms=g(calendar),
        # a hold that crosses an hour edge is credited whole to one bucket, so a bucket may hold more than its
        # hour (capping it lost coverage); only the running hour is capped at the time that has passed
        known_ms=g(np.where(calendar < b.bucket_ms, np.minimum(known, calendar), known)),
        run_ms=g(by_kind(StateKind.RUN)),
        speed_ms=g(by_kind(StateKind.SPEED_LOSS)),
        unplanned_ms=g(by_kind(StateKind.UNPLANNED)),
        planned_ms=g(by_kind(StateKind.PLANNED)),
        failures=g(sum((b.state_runs[c] for c in fail_codes), np.zeros(len(b.start_ms)))),
        failure_ms=g(sum((b.state_ms[c] for c in fail_codes), np.zeros(len(b.start_ms)))),
        good=g(b.good),
        scrap=g(b.scrap),
        std_s=g(ideal * (b.good + b.scrap)),
        std_good_s=g(ideal * b.good),
        mi_ms=g(b.mi_ms),
        mi_runs=g(b.mi_runs),
        energy_wh=g(np.where(energy_known, b.energy_wh, 0.0)),
        energy_good=g(np.where(energy_known, b.good, 0.0)),
        gap_good=g(b.gap_good if b.gap_good is not None else np.zeros(len(b.start_ms))),
        gap_scrap=g(b.gap_scrap if b.gap_scrap is not None else np.zeros(len(b.start_ms))),
        state_ms={c: g(b.state_ms[c]) for c in codes},
        state_runs={c: g(b.state_runs[c]) for c in codes},
    )


#: What a KPI's num/den read: Totals (machine KPIs) or analytics.delivery.DeliveryDays.
Source = TypeVar("Source")


@dataclass(frozen=True)
class KpiSpec(Generic[Source]):
    key: str
    unit: str  # "%" for ratios shown as percent
    higher_is_better: bool
    is_rate: bool  # a share: its change is also given in percentage points
    pqcd: str  # P, Q, C (machine KPIs) or D (delivery, from order records: analytics.delivery)
    num: Callable[[Source], np.ndarray]
    den: Callable[[Source], np.ndarray]
    scale: float = 1.0  # value = scale x num / den


H = 3_600_000.0

#: Every KPI the reports carry, in report order.
KPIS: tuple[KpiSpec[Totals], ...] = (
    KpiSpec("oee", "%", True, True, "P", lambda t: t.std_good_s * 1000, lambda t: t.pbt_ms),
    KpiSpec("availability", "%", True, True, "P", lambda t: t.apt_ms, lambda t: t.pbt_ms),
    KpiSpec("performance", "%", True, True, "P", lambda t: t.std_s * 1000, lambda t: t.apt_ms),
    KpiSpec("quality", "%", True, True, "Q", lambda t: t.good, lambda t: t.good + t.scrap),
    KpiSpec("output_per_hour", "pcs/h", True, False, "P", lambda t: t.good, lambda t: t.pbt_ms / H),
    KpiSpec("throughput_rate", "pcs/h", True, False, "P", lambda t: t.good + t.scrap, lambda t: t.apt_ms / H),
    KpiSpec("standard_output", "h/h", True, False, "P", lambda t: t.std_good_s / 3600, lambda t: t.pbt_ms / H),
    # per produced part, not per observed input phase: at 1 s resolution an input shorter than
    # a second can fall between two scans and leave no edge, while the total on-time stays unbiased
    KpiSpec("material_input_s", "s", False, False, "P", lambda t: t.mi_ms / 1000, lambda t: t.good + t.scrap),
    # per input cycle (load): where one load feeds a batch of parts, a rollout that shortens loads
    # may also change parts per load, which moves the per-part figure; this one does not
    KpiSpec("material_input_per_cycle_s", "s", False, False, "P", lambda t: t.mi_ms / 1000, lambda t: t.mi_runs),
    KpiSpec("mtbf_h", "h", True, False, "P", lambda t: t.apt_ms / H, lambda t: t.failures),
    KpiSpec("mttr_min", "min", False, False, "P", lambda t: t.failure_ms / 60_000, lambda t: t.failures),
    KpiSpec("scrap_rate", "%", False, True, "Q", lambda t: t.scrap, lambda t: t.good + t.scrap),
    KpiSpec("energy_per_good_wh", "Wh/pc", False, False, "C", lambda t: t.energy_wh, lambda t: t.energy_good),
    KpiSpec("coverage", "%", True, True, "-", lambda t: t.known_ms, lambda t: t.calendar_ms),
)
KPI_BY_KEY = {k.key: k for k in KPIS}


def ratios(specs: Iterable[KpiSpec[Source]], source: Source) -> dict[str, np.ndarray]:
    """Each spec's num/den per group from ``source``; nan where the denominator is zero."""
    out: dict[str, np.ndarray] = {}
    for k in specs:
        num, den = k.num(source).astype(float), k.den(source).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[k.key] = np.where(den > 0, k.scale * num / np.where(den > 0, den, 1), np.nan)
    return out


def values(t: Totals) -> dict[str, np.ndarray]:
    """Each KPI per group; nan where its denominator is zero (no planned time, no failures...)."""
    return ratios(KPIS, t)


def scalar(t: Totals) -> dict[str, float | None]:
    """KPIs of the groups taken together (a ratio of sums, not a mean of ratios)."""
    return {k: (None if np.isnan(v[0]) else float(v[0])) for k, v in values(t.total()).items()}


def time_elements(t: Totals) -> dict[str, float]:
    """ISO 22400 time elements in hours, summed over all groups."""
    s = t.total()
    return {
        "calendar_h": float(s.calendar_ms[0] / H),
        "no_data_h": float((s.calendar_ms - s.known_ms)[0] / H),
        "pbt_h": float(s.pbt_ms[0] / H),
        "apt_h": float(s.apt_ms[0] / H),
        "speed_loss_h": float(s.speed_ms[0] / H),
        "adet_h": float(s.unplanned_ms[0] / H),
        "planned_stop_h": float(s.planned_ms[0] / H),
        "produced": float(s.good[0] + s.scrap[0]),
        "good": float(s.good[0]),
        "scrap": float(s.scrap[0]),
        "failures": float(s.failures[0]),
        "cycles": float(s.mi_runs[0]),
        "good_across_gaps": float(s.gap_good[0]),
        "scrap_across_gaps": float(s.gap_scrap[0]),
    }


def pareto(t: Totals, policy: Policy) -> list[dict[str, Any]]:
    """Stop time by reason (unplanned and planned stops), largest first, with cumulative share.

    Time without data is no reason for a stop and is not a row: it is ``no_data_h`` of
    ``time_elements``, shown beside the Pareto (a demo that had just started showed "no data"
    as its largest "reason")."""
    s = t.total()
    rows = [
        {"code": d.code, "reason": d.name, "kind": d.kind.value, "hours": float(s.state_ms[d.code][0] / H),
         "episodes": int(s.state_runs[d.code][0])}
        for d in policy.states
        if d.kind in (StateKind.UNPLANNED, StateKind.PLANNED)
    ]
    rows = sorted((r for r in rows if r["hours"] > 0), key=lambda r: -r["hours"])
    total = sum(r["hours"] for r in rows) or 1.0
    cum = 0.0
    for r in rows:
        cum += r["hours"]
        r["share"] = r["hours"] / total
        r["cumulative_share"] = cum / total
    return rows


# -- calendar ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Calendar:
    """Which production day and shift each bucket belongs to (a night shift belongs to the day it starts)."""

    days: list[date]
    day_of_bucket: np.ndarray  # index into days, -1 outside every shift
    shift_of_bucket: np.ndarray  # index into policy.shifts, -1 outside


def calendar(start_ms: np.ndarray, policy: Policy) -> Calendar:
    """Each bucket's shift and production day; a shift on a weekday it does not list, a public
    holiday or a closure day is not planned time (``analytics.workcalendar``)."""
    from analytics.workcalendar import shift_at

    zone = policy.zone()
    n = len(start_ms)
    shift_idx = np.full(n, -1, dtype=np.int64)
    day_ord = np.zeros(n, dtype=np.int64)
    for i, ms in enumerate(start_ms.tolist()):
        if not i & 4095:
            deadline.check()
        hit = shift_at(datetime.fromtimestamp(ms / 1000, tz=zone), policy)
        if hit is not None:
            shift_idx[i] = hit[0]
            day_ord[i] = hit[1].toordinal()
    inside = shift_idx >= 0
    ords = sorted(set(day_ord[inside].tolist()))
    pos = {o: k for k, o in enumerate(ords)}
    day_idx = np.array([pos[o] if ok else -1 for o, ok in zip(day_ord.tolist(), inside.tolist())], dtype=np.int64)
    return Calendar([date.fromordinal(o) for o in ords], day_idx, shift_idx)

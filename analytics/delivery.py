"""Delivery (the D of PQCD) from an SME's order records: pure functions, no I/O.

Machine signals say nothing about promises to customers, so D comes from the orders an SME
exports from its ERP (imported by ``plantmodel.orders``; the report builder gets them passed in).

Per calendar day in the tenant's time zone:

- **On-time delivery rate** = orders completed on or before their due date / orders judged.
  A completed order is judged on its completion day (the local date of ``completed``), on time
  when that date is on or before ``due``. An order still **open** after its due date is judged
  **late on the first day past due** (due + 1): on the due day itself it could still ship on
  time. Counting only completed orders would let an order that never ships drop out of the
  rate. Only orders open as of ``as_of`` (the day the data stands for, default today) count
  this way; an open order not yet past due is not judged.
- **Manufacturing lead time** (days) = Σ (completed − ordered) / orders completed, by
  completion day. In fractional days when both are date-times, else whole calendar days
  between the local dates (an order placed and finished the same day: 0).

Both are ratios of sums per day, so the before/after comparison (``analytics.beforeafter``)
treats them like the machine KPIs: a day with no judged (or completed) order carries no
information and is left out; n is the number of days with one.
"""

from __future__ import annotations
from typing import Any

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

import numpy as np

from analytics.kpi import FloatArray, KpiSpec, ratios


@dataclass(frozen=True)
class Order:
    """One customer order as the ERP exported it; naive date-times are the tenant's local time."""

    order_id: str
    quantity: float
    ordered: date | datetime
    due: date
    completed: date | datetime | None = None  # None: still open
    line: str | None = None  # None: not tied to one line (counts for every line of the tenant)
    product: str | None = None


def local_date(v: date | datetime, zone: tzinfo) -> date:
    """The calendar day of a date or date-time in the tenant's zone (naive date-times are local already)."""
    if isinstance(v, datetime):
        return (v.astimezone(zone) if v.tzinfo else v).date()
    return v


def lead_days(o: Order, zone: tzinfo) -> float | None:
    """Completed − ordered in days; None for an open order."""
    if o.completed is None:
        return None
    a, b = o.ordered, o.completed
    if isinstance(a, datetime) and isinstance(b, datetime):
        a = a if a.tzinfo else a.replace(tzinfo=zone)
        b = b if b.tzinfo else b.replace(tzinfo=zone)
        return (b - a).total_seconds() / 86_400
    return float((local_date(b, zone) - local_date(a, zone)).days)


@dataclass(frozen=True)
class DeliveryDays:
    """Per-day sums over ``days`` (consecutive calendar days); every array has one entry per day."""

    days: list[date]
    completed: FloatArray  # orders completed that day
    on_time: FloatArray  # of those, completed on or before due
    late_open: FloatArray  # orders still open whose first day past due is this day
    lead_days: FloatArray  # sum of lead times of the orders completed that day

    @property
    def judged(self) -> np.ndarray:
        return self.completed + self.late_open

    def take(self, mask: np.ndarray) -> DeliveryDays:
        return DeliveryDays([d for d, k in zip(self.days, mask) if k], self.completed[mask], self.on_time[mask],
                            self.late_open[mask], self.lead_days[mask])

    def totals(self) -> dict[str, Any]:
        return {"completed": int(self.completed.sum()), "on_time": int(self.on_time.sum()),
                "late_open": int(self.late_open.sum()), "days_with_orders": int((self.judged > 0).sum()),
                "days": len(self.days)}


def daily(orders: list[Order], zone: tzinfo, first: date, end: date, as_of: date) -> DeliveryDays:
    """Per-day delivery sums for the days [first, end) in ``zone``; orders outside fall away."""
    n = max(0, (end - first).days)
    days = [first + timedelta(days=i) for i in range(n)]
    completed, on_time, late_open, lead = (np.zeros(n) for _ in range(4))
    for o in orders:
        if o.completed is not None:
            i = (local_date(o.completed, zone) - first).days
            if 0 <= i < n:
                completed[i] += 1
                on_time[i] += local_date(o.completed, zone) <= o.due
                lead[i] += lead_days(o, zone)
        else:
            late_day = o.due + timedelta(days=1)
            i = (late_day - first).days
            if late_day <= as_of and 0 <= i < n:
                late_open[i] += 1
    return DeliveryDays(days, completed, on_time, late_open, lead)


def for_lines(orders: list[Order], lines: set[str] | None) -> list[Order]:
    """The orders of a report over ``lines`` (None: every line): an order without a line counts for every line."""
    if lines is None:
        return list(orders)
    return [o for o in orders if o.line is None or o.line in lines]


#: D in the programme's PQCD summary; num/den take a DeliveryDays.
DELIVERY_KPIS: tuple[KpiSpec[DeliveryDays], ...] = (
    KpiSpec("on_time_delivery", "%", True, True, "D", lambda d: d.on_time, lambda d: d.judged),
    KpiSpec("lead_time_days", "d", False, False, "D", lambda d: d.lead_days, lambda d: d.completed),
)
DELIVERY_BY_KEY = {k.key: k for k in DELIVERY_KPIS}


def values(d: DeliveryDays) -> dict[str, np.ndarray]:
    """Each delivery KPI per day; nan on a day without a judged (or completed) order."""
    return ratios(DELIVERY_KPIS, d)

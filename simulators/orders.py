"""Customer orders for a simulated line's history, with a known delivery effect at the rollout.

The demo (and tests) need an ERP export that fits the machines' history: orders finished on
the history's days, on one line, with a better on-time rate and a shorter lead time after the
rollout. ``generate`` returns that export as CSV (the header the import takes, in Korean as an
SME's ERP writes it) together with the design values, so a test can check the report finds them.
Seeded: the same arguments give the same file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

import csvcells


@dataclass(frozen=True)
class DeliveryDesign:
    """The effect built in: on-time probability and mean lead time (days), before and after the rollout."""

    on_time_before: float = 0.78
    on_time_after: float = 0.93
    lead_before_days: float = 6.0
    lead_after_days: float = 4.0
    orders_per_day: int = 8
    open_at_end: int = 3  # orders placed near the end, not finished yet (not due: not judged)

    def on_time_change_pct(self) -> float:
        return (self.on_time_after - self.on_time_before) / self.on_time_before * 100

    def lead_time_improvement_pct(self) -> float:
        return (self.lead_before_days - self.lead_after_days) / self.lead_before_days * 100


def generate(start: date, days: int, rollout: date, line: str | None, seed: int = 1,
             design: DeliveryDesign = DeliveryDesign(), products: tuple[str, ...] = ("브래킷-A", "힌지-B", "패널-C")) -> str:
    """Orders completed on each of ``days`` days from ``start`` (commissioning days included), as CSV.

    Each order's lead time is whole days around the phase's mean (±1); an on-time order is due on
    or after its completion day (0–2 days of slack), a late one 1–3 days before it.
    """
    rng = np.random.default_rng(seed)
    out = io.StringIO()
    w = csvcells.writer(out, lineterminator="\n")
    w.writerow(["주문번호", "라인", "품목", "수량", "주문일", "납기", "완료일"])
    n = 0
    for day in range(days):
        done = start + timedelta(days=day)
        after = done >= rollout
        p = design.on_time_after if after else design.on_time_before
        mean_lead = design.lead_after_days if after else design.lead_before_days
        for _ in range(design.orders_per_day):
            n += 1
            lead = max(0, int(round(mean_lead)) + int(rng.integers(-1, 2)))
            ordered = done - timedelta(days=lead)
            if rng.random() < p:
                due = done + timedelta(days=int(rng.integers(0, 3)))
            else:
                due = max(ordered, done - timedelta(days=int(rng.integers(1, 4))))
            w.writerow([f"SO-{n:05d}", line or "", products[int(rng.integers(len(products)))],
                        int(rng.integers(1, 40)) * 50, ordered.isoformat(), due.isoformat(), done.isoformat()])
    end = start + timedelta(days=days)
    for k in range(design.open_at_end):
        n += 1
        w.writerow([f"SO-{n:05d}", line or "", products[k % len(products)], 500, (end - timedelta(days=1)).isoformat(),
                    (end + timedelta(days=7)).isoformat(), ""])
    return out.getvalue()

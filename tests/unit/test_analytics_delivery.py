"""Delivery (D of PQCD) from order records: the pure per-day computation and its edge cases."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np

from analytics import delivery
from analytics.beforeafter import compare
from analytics.delivery import Order

SEOUL = ZoneInfo("Asia/Seoul")
D0 = date(2026, 3, 2)


def days(orders, first=D0, n=10, as_of=date(2026, 12, 31)):
    return delivery.daily(orders, SEOUL, first, first + timedelta(days=n), as_of)


def test_no_orders_gives_empty_days():
    d = days([])
    assert d.judged.sum() == 0 and d.completed.sum() == 0
    v = delivery.values(d)
    assert np.isnan(v["on_time_delivery"]).all() and np.isnan(v["lead_time_days"]).all()


def test_on_time_late_and_early_completions_by_completion_day():
    orders = [
        Order("a", 10, date(2026, 3, 1), due=date(2026, 3, 5), completed=date(2026, 3, 3)),  # early: on time
        Order("b", 10, date(2026, 3, 1), due=date(2026, 3, 3), completed=date(2026, 3, 3)),  # on the due day: on time
        Order("c", 10, date(2026, 2, 20), due=date(2026, 3, 1), completed=date(2026, 3, 3)),  # late
    ]
    d = days(orders)
    i = (date(2026, 3, 3) - D0).days
    assert d.completed[i] == 3 and d.on_time[i] == 2 and d.lead_days[i] == 2 + 2 + 11
    v = delivery.values(d)
    assert v["on_time_delivery"][i] == 2 / 3
    assert v["lead_time_days"][i] == 15 / 3
    assert d.judged.sum() == 3  # nothing else was judged


def test_all_open_orders_count_late_on_the_first_day_past_due_only_once_due_has_passed():
    orders = [Order("a", 1, date(2026, 3, 1), due=date(2026, 3, 4)),  # late from 3-5 on
              Order("b", 1, date(2026, 3, 1), due=date(2026, 3, 8))]  # not yet due as of 3-8
    d = days(orders, as_of=date(2026, 3, 8))
    assert d.completed.sum() == 0 and d.late_open.sum() == 1
    assert d.late_open[(date(2026, 3, 5) - D0).days] == 1
    assert delivery.values(d)["on_time_delivery"][(date(2026, 3, 5) - D0).days] == 0.0
    assert np.isnan(delivery.values(d)["lead_time_days"]).all()  # open orders have no lead time
    # a day later order b is past due as well
    assert days(orders, as_of=date(2026, 3, 9)).late_open.sum() == 2


def test_completion_day_is_the_local_date_in_the_tenant_zone():
    """23:30 UTC on 3-3 is 08:30 on 3-4 in Seoul: completed a day after a due date of 3-3, so late."""
    o = Order("a", 1, datetime(2026, 3, 2, 9, 0), due=date(2026, 3, 3),
              completed=datetime(2026, 3, 3, 23, 30, tzinfo=timezone.utc))
    d = days([o])
    i = (date(2026, 3, 4) - D0).days
    assert d.completed[i] == 1 and d.on_time[i] == 0
    # the naive order time is Seoul time: 09:00 KST on 3-2 to 08:30 KST on 3-4
    assert abs(d.lead_days[i] - (47.5 / 24)) < 1e-9
    # the same instant written as Seoul local time, naive, lands on the same day
    naive = Order("b", 1, date(2026, 3, 2), due=date(2026, 3, 3), completed=datetime(2026, 3, 4, 8, 30))
    assert days([naive]).completed[i] == 1


def test_date_only_lead_time_is_whole_days_and_same_day_is_zero():
    o = Order("a", 1, date(2026, 3, 3), due=date(2026, 3, 3), completed=datetime(2026, 3, 3, 17, 0))
    d = days([o])
    assert d.lead_days.sum() == 0 and d.on_time.sum() == 1


def test_orders_outside_the_days_fall_away_and_lines_filter():
    orders = [Order("in", 1, D0, due=D0, completed=D0, line="l1"),
              Order("other-line", 1, D0, due=D0, completed=D0, line="l2"),
              Order("any-line", 1, D0, due=D0, completed=D0),
              Order("before", 1, D0 - timedelta(days=9), due=D0, completed=D0 - timedelta(days=1), line="l1")]
    picked = delivery.for_lines(orders, {"l1"})
    assert [o.order_id for o in picked] == ["in", "any-line", "before"]
    assert days(picked).completed.sum() == 2


def test_a_known_on_time_improvement_is_found_with_the_block_bootstrap():
    """Eight weeks before at 80% on time, eight after at 95%: the comparison sees it, with a CI around it."""
    rng = np.random.default_rng(3)
    orders = []
    for day in range(112):
        d = D0 + timedelta(days=day)
        p = 0.80 if day < 56 else 0.95
        for k in range(6):
            late = rng.random() > p
            due = d - timedelta(days=1) if late else d
            orders.append(Order(f"{day}-{k}", 5, d - timedelta(days=4), due=due, completed=d))
    dd = days(orders, n=112)
    spec = delivery.DELIVERY_BY_KEY["on_time_delivery"]
    b = dd.take(np.arange(112) < 56)
    a = dd.take(np.arange(112) >= 56)
    c = compare(spec, spec.num(b), spec.den(b), spec.num(a), spec.den(a), replicates=1000)
    assert c.significant and c.n_before == 56 and c.n_after == 56
    true_change = (0.95 - 0.80) / 0.80 * 100
    assert c.ci95_improvement_pct[0] < true_change < c.ci95_improvement_pct[1]
    assert c.pp_change is not None and 10 < c.pp_change < 20

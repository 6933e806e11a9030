"""Before/after statistics: windows, conventions, block-bootstrap intervals, XmR, portfolio."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.beforeafter import (
    WindowError,
    block_length,
    circular_block_indices,
    compare,
    portfolio,
    windows,
    xmr,
)
from analytics.kpi import KPI_BY_KEY

OUT = KPI_BY_KEY["output_per_hour"]
MI = KPI_BY_KEY["material_input_s"]
SCRAP = KPI_BY_KEY["scrap_rate"]


def ar1(n: int, phi: float, sd: float, rng: np.random.Generator) -> np.ndarray:
    e = rng.normal(0, sd, n)
    x = np.zeros(n)
    for i in range(n):
        x[i] = (phi * x[i - 1] if i else 0) + e[i]
    return x


def test_windows_are_equal_whole_weeks_on_the_same_weekdays_without_commissioning():
    w = windows(date(2026, 4, 1), commissioning_days=10, first_day=date(2026, 1, 1), last_day=date(2026, 6, 30))
    room = min((date(2026, 4, 1) - date(2026, 1, 1)).days, (date(2026, 6, 30) - date(2026, 4, 11)).days + 1)
    assert w.days % 7 == 0 and w.days == room // 7 * 7 == 77
    assert w.baseline[1] == date(2026, 4, 1) and w.post[0] == date(2026, 4, 11)
    assert (w.baseline[1] - w.baseline[0]) == (w.post[1] - w.post[0])
    weekdays = lambda a, b: sorted((a + timedelta(days=i)).weekday() for i in range((b - a).days))  # noqa: E731
    assert weekdays(*w.baseline) == weekdays(*w.post)
    assert w.phase(date(2026, 4, 5)) is None  # commissioning
    assert w.phase(date(2026, 3, 31)) == "before" and w.phase(w.post[0]) == "after"


def test_windows_refuse_too_little_data_with_a_reason():
    with pytest.raises(WindowError, match=r"31 day\(s\) of data before the rollout 2026-04-01 and 4 after it "
                       r"\(data from 2026-03-01 to 2026-04-18; the 14 commissioning day\(s\) after the rollout "
                       r"excluded\): need at least 7 on each side"):
        windows(date(2026, 4, 1), commissioning_days=14, first_day=date(2026, 3, 1), last_day=date(2026, 4, 18))


def test_windows_with_no_data_before_the_rollout_say_none_not_a_negative_count():
    with pytest.raises(WindowError, match=r"^0 day\(s\) of data before the rollout 2026-04-01 and 72 after it"):
        windows(date(2026, 4, 1), commissioning_days=14, first_day=date(2026, 4, 20), last_day=date(2026, 6, 30))


def test_lower_is_better_convention_and_percentage_points():
    days = 28
    mi = compare(MI, np.full(days, 8.0 * 100), np.full(days, 100.0), np.full(days, 2.0 * 100), np.full(days, 100.0))
    assert mi.change_pct == pytest.approx(-75.0) and mi.improvement_pct == pytest.approx(75.0)
    assert mi.pp_change is None
    sc = compare(SCRAP, np.full(days, 1.0), np.full(days, 100.0), np.full(days, 0.5), np.full(days, 100.0))
    assert sc.improvement_pct == pytest.approx(50.0)  # "a 50% reduction"...
    assert sc.pp_change == pytest.approx(-0.5)  # ...but only 0.5 points


def test_window_value_is_a_ratio_of_sums_not_a_mean_of_daily_ratios():
    c = compare(OUT, np.array([100.0, 10.0, 100.0]), np.array([10.0, 1.0, 10.0]),
                np.array([200.0, 1.0, 200.0]), np.array([10.0, 1.0, 10.0]))
    assert c.before == pytest.approx(210 / 21) and c.after == pytest.approx(401 / 21)


def test_days_without_planned_time_are_dropped_from_n():
    num = np.array([10.0, 0.0, 12.0, 11.0, 0.0])
    den = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    c = compare(OUT, num, den, num * 1.1, den)
    assert (c.n_before, c.n_after) == (3, 3)


def test_block_bootstrap_interval_covers_the_truth_on_autocorrelated_days():
    """AR(1) days (phi 0.6) with a true +10% step: the 95% interval should hold the truth ~95% of the time."""
    hits = significant = 0
    runs = 120
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        before = 100 + ar1(56, 0.6, 4.0, rng)
        after = 110 + ar1(56, 0.6, 4.0, rng)
        c = compare(OUT, before, np.ones(56), after, np.ones(56), replicates=600, seed=seed)
        lo, hi = c.ci95_change_pct
        hits += lo <= 10.0 <= hi
        significant += c.significant
    assert hits / runs >= 0.85
    assert significant / runs >= 0.95


def test_placebo_is_rarely_significant():
    false_alarms = 0
    runs = 120
    for seed in range(runs):
        rng = np.random.default_rng(1000 + seed)
        before = 100 + ar1(56, 0.6, 4.0, rng)
        after = 100 + ar1(56, 0.6, 4.0, rng)
        false_alarms += compare(OUT, before, np.ones(56), after, np.ones(56), replicates=600, seed=seed).significant
    assert false_alarms / runs <= 0.12


def test_circular_blocks_are_runs_of_consecutive_days():
    idx = circular_block_indices(10, 4, 50, np.random.default_rng(0))
    assert idx.shape == (50, 10)
    for row in idx:
        for start in range(0, 8, 4):
            block = row[start : start + 4]
            assert all((b - a) % 10 == 1 for a, b in zip(block, block[1:]))
    assert block_length(56) == 6 and block_length(1) == 1


def test_xmr_limits_are_mean_plus_minus_2_66_moving_range():
    chart = xmr(np.array([10.0, 12.0, 11.0, 13.0]))
    assert chart["mean"] == pytest.approx(11.5)
    assert chart["mr_bar"] == pytest.approx((2 + 1 + 2) / 3)
    assert chart["ucl"] == pytest.approx(11.5 + 2.66 * 5 / 3) and chart["lcl"] == pytest.approx(11.5 - 2.66 * 5 / 3)
    assert xmr(np.array([1.0])) is None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(1, 1000), min_size=3, max_size=30), st.lists(st.floats(1, 1000), min_size=3, max_size=30),
       st.floats(0.01, 100))
def test_change_does_not_depend_on_units(before, after, scale):
    b, a = np.array(before), np.array(after)
    one = compare(OUT, b, np.ones(len(b)), a, np.ones(len(a)), replicates=200)
    scaled = compare(OUT, b * scale, np.ones(len(b)), a * scale, np.ones(len(a)), replicates=200)
    assert scaled.change_pct == pytest.approx(one.change_pct, rel=1e-6, abs=1e-9)
    assert scaled.significant == one.significant


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(1, 1000), min_size=3, max_size=30), st.lists(st.floats(1, 1000), min_size=3, max_size=30))
def test_improvement_is_the_signed_change_in_the_better_direction(before, after):
    b, a = np.array(before), np.array(after)
    hi = compare(OUT, b, np.ones(len(b)), a, np.ones(len(a)), replicates=100)
    lo = compare(MI, b, np.ones(len(b)), a, np.ones(len(a)), replicates=100)
    assert hi.improvement_pct == pytest.approx(-lo.improvement_pct)
    assert hi.ci95_improvement_pct[0] == pytest.approx(-lo.ci95_improvement_pct[1])


def _report(tenant: str, gain: float, significant: bool, coverage: float = 0.99) -> dict:
    return {"scope": {"tenant": tenant, "line": "l1"}, "coverage": {"before": coverage, "after": coverage},
            "kpis": [{"key": "output_per_hour", "improvement_pct": gain, "significant": significant}]}


def test_portfolio_counts_improvers_and_flags_who_needs_attention():
    reports = [_report("a", 12.0, True), _report("b", 3.0, False), _report("c", -8.0, True), _report("d", 20.0, True, 0.5)]
    p = portfolio(reports, headline=("output_per_hour",))
    k = p["kpis"]["output_per_hour"]
    assert (p["tenants"], p["improved"]) == (4, 2)
    assert (k["improved_significantly"], k["worsened_significantly"]) == (2, 1)
    assert k["median_improvement_pct"] == pytest.approx(7.5)
    flagged = {a["tenant"]: a["reasons"] for a in p["attention"]}
    assert set(flagged) == {"b", "c", "d"}
    assert any("worse" in r for r in flagged["c"]) and any("coverage" in r for r in flagged["d"])


def test_student_t_matches_tabulated_quantiles():
    from analytics.beforeafter import t_quantile, t_sf

    assert t_quantile(0.975, 5) == pytest.approx(2.5706, abs=1e-3)
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-2)
    assert t_quantile(0.975, 1e6) == pytest.approx(1.95996, abs=1e-3)
    assert t_sf(0.0, 7) == pytest.approx(0.5) and t_sf(-2.0, 7) == pytest.approx(1 - t_sf(2.0, 7))

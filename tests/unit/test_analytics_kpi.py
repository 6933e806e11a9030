"""KPIs from raw signals: time elements, OEE factors, counters, cycles, gaps, shifts across midnight."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import kpi
from analytics.buckets import cycles, from_samples, time_per_bucket
from analytics.policy import Policy, ShiftDef
from analytics.states import state_intervals
from simulators.press import MachineState, PressModel

H = 3_600_000
T0 = int(datetime(2026, 3, 2, tzinfo=timezone.utc).timestamp() * 1000)  # a Monday, 00:00 UTC
POLICY = Policy(timezone="UTC", default_ideal_cycle_s=2.0)
CODES = [s.code for s in POLICY.states]


def one_hour(states_by_minute: list[int | None], good_per_run_minute: int = 30, scrap_per_run_minute: int = 0):
    """1 Hz samples for 60 minutes; None = no data that minute. Counts rise only while processing."""
    ts, st_, good, scrap = [], [], [], []
    g = s = 0
    for minute, state in enumerate(states_by_minute):
        for sec in range(60):
            if state is None:
                continue
            if state == MachineState.PROCESSING and sec % 2 == 0:
                g += good_per_run_minute / 30
                s += scrap_per_run_minute / 30
            ts.append(T0 + (minute * 60 + sec) * 1000)
            st_.append(state)
            good.append(int(g) % 65536)
            scrap.append(int(s) % 65536)
    return np.array(ts), np.array(st_), np.array(good), np.array(scrap)


def hour_totals(states_by_minute, **kw):
    ts, states, good, scrap = one_hour(states_by_minute, **kw)
    b = from_samples((T0, T0 + H), H, CODES, stale_ms=3000, state=(ts, states), good=(ts, good), scrap=(ts, scrap))
    return b, kpi.totals(b, np.zeros(1, dtype=np.int64), 1, POLICY, ideal_cycle_s=2.0)


def test_oee_factors_follow_iso_22400_and_no_data_is_neither_run_nor_down():
    # 30 min processing, 10 min fault, 10 min planned stop, 10 min without data
    minutes = [2] * 30 + [4] * 10 + [5] * 10 + [None] * 10
    b, t = hour_totals(minutes, good_per_run_minute=30)
    el = kpi.time_elements(t)
    assert el["no_data_h"] == pytest.approx(10 / 60, abs=1e-3)  # at most the 3 s staleness bleeds in
    assert el["apt_h"] == pytest.approx(0.5, abs=1e-3)
    assert el["adet_h"] == pytest.approx(10 / 60, abs=1e-3)
    assert el["planned_stop_h"] == pytest.approx(10 / 60, abs=1e-3)
    v = kpi.scalar(t)
    assert v["availability"] == pytest.approx(30 / 40, abs=2e-3)  # APT / (known 50 - planned 10)
    assert v["performance"] == pytest.approx(2.0 * 900 / 1800, abs=2e-3)  # ideal x count / APT
    assert v["quality"] == 1.0
    assert v["oee"] == pytest.approx(v["availability"] * v["performance"] * v["quality"])
    assert v["coverage"] == pytest.approx(50 / 60, abs=1e-3)
    assert v["mtbf_h"] == pytest.approx(0.5, abs=1e-3) and v["mttr_min"] == pytest.approx(10, abs=0.1)
    assert el["failures"] == 1


def test_performance_uses_ideal_cycle_time_not_time_alone():
    slow = hour_totals([2] * 60, good_per_run_minute=15)[1]  # half the ideal rate, always "running"
    v = kpi.scalar(slow)
    assert v["availability"] == 1.0
    assert v["performance"] == pytest.approx(0.5, abs=0.01)


def test_scrap_rate_and_quality():
    _, t = hour_totals([2] * 60, good_per_run_minute=27, scrap_per_run_minute=3)
    v = kpi.scalar(t)
    assert v["scrap_rate"] == pytest.approx(0.1, abs=0.005)
    assert v["quality"] == pytest.approx(0.9, abs=0.005)


def test_counter_wrap_and_reset_inside_buckets_are_counted_and_flagged():
    ts = T0 + np.arange(8) * 60_000
    good = [65530, 65534, 2, 6, 10, 3, 5, 9]  # wrap after 65534, PLC reset after 10
    b = from_samples((T0, T0 + H), H, CODES, 90_000, good=(ts, good))  # readings 60 s apart: no gap
    assert b.good.sum() == 4 + 4 + 4 + 4 + 3 + 2 + 4
    assert [c["kind"] for c in b.corrections] == ["wrap", "reset"]


def test_gap_is_unknown_and_coverage_says_so():
    ts = np.array([T0, T0 + 1000, T0 + 2000, T0 + 1_800_000])
    b = from_samples((T0, T0 + H), H, CODES, 3000, state=(ts, np.array([2, 2, 2, 2])))
    t = kpi.totals(b, np.zeros(1, dtype=np.int64), 1, POLICY, 2.0)
    assert kpi.scalar(t)["availability"] == 1.0  # what was seen was running...
    assert kpi.scalar(t)["coverage"] == pytest.approx(8000 / H)  # ...but only 2 s + 3 s + 3 s (stale limit) were seen


def test_night_shift_across_midnight_belongs_to_the_day_it_started():
    policy = Policy(timezone="Asia/Seoul", shifts=[ShiftDef(name="day", start="08:00", end="20:00"),
                                                    ShiftDef(name="night", start="20:00", end="04:00")],
                    holidays=None)  # 1 and 2 March 2026 are Korean public holidays; this test is about midnight
    # 2026-03-02 00:00 KST is 2026-03-01 15:00 UTC; 48 hourly buckets
    start = int(datetime(2026, 3, 1, 15, tzinfo=timezone.utc).timestamp() * 1000)
    starts = start + np.arange(48, dtype=np.int64) * H
    cal = kpi.calendar(starts, policy)
    local_hour = lambda i: i % 24  # noqa: E731  (bucket i starts at i:00 KST on 2 March)
    assert cal.days == [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)]
    for i in range(48):
        h = local_hour(i)
        if 4 <= h < 8:
            assert cal.day_of_bucket[i] == -1 and cal.shift_of_bucket[i] == -1  # no shift: not planned time
        elif 8 <= h < 20:
            assert cal.shift_of_bucket[i] == 0 and cal.days[cal.day_of_bucket[i]] == date(2026, 3, 2 + i // 24)
        else:
            started = date(2026, 3, 2 + i // 24) if h >= 20 else date(2026, 3, 1 + i // 24)
            assert cal.shift_of_bucket[i] == 1 and cal.days[cal.day_of_bucket[i]] == started


def test_shift_boundaries_must_fit_the_bucket_size():
    with pytest.raises(ValueError, match="bucket_min"):
        Policy(shifts=[ShiftDef(name="a", start="06:30", end="14:30")])
    assert Policy(shifts=[ShiftDef(name="a", start="06:30", end="14:30")], bucket_min=30)


def test_cycles_measure_the_press_material_input_phase():
    """The press's loading phase has a 6 s median (lognormal, sigma 0.25): mean 6 x exp(sigma^2/2)."""
    start_s = T0 / 1000
    model = PressModel(seed=3, start_s=start_s)
    t = start_s + np.arange(0, 4 * 3600, 1.0)
    snaps = [model.at(x) for x in t]
    mi = np.array([s.material_input for s in snaps])
    c = cycles((t * 1000).astype(np.int64), mi, (T0, T0 + 4 * H), stale_ms=3000)
    assert len(c.input_ms) > 600
    assert np.mean(c.input_ms) / 1000 == pytest.approx(6 * np.exp(0.25**2 / 2), rel=0.05)
    assert np.nanmedian(c.cycle_ms) / 1000 == pytest.approx(6 + 4 + 2 + 1.5, rel=0.1)


def test_cycles_cut_by_a_gap_are_dropped_not_guessed():
    ts = np.array([0, 1, 2, 3, 4, 5, 6, 20, 21, 22, 23]) * 1000
    mi = np.array([0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0])
    c = cycles(ts, mi, (0, 24_000), stale_ms=2000)
    # phase at 1-3 s is whole; the one at 5 s runs into the gap; the one at 20 s starts after it; 22 s is whole
    assert c.start_ms.tolist() == [1000, 22_000]
    assert c.input_ms.tolist() == [2000.0, 1000.0]
    assert c.cycle_ms[0] == 4000.0  # 1 s to the next rising edge at 5 s, all inside data
    assert np.isnan(c.cycle_ms[1])  # the last phase has no next edge in the window


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7200_000), st.sampled_from(CODES)), max_size=80), st.integers(500, 600_000))
def test_bucket_times_plus_unknown_tile_the_window(samples, stale):
    samples.sort()
    ts = np.array([s for s, _ in samples], dtype=np.int64)
    states = np.array([c for _, c in samples], dtype=np.int64)
    b = from_samples((T0 - T0, 2 * H), H, CODES, stale, state=(ts, states))
    known = b.known_ms()
    iv = state_intervals(ts, states, (0, 2 * H), stale)
    unknown = sum(i.duration_ms for i in iv if i.state == -1)
    assert known.sum() + unknown == 2 * H
    assert (known <= H).all()
    t = kpi.totals(b, np.zeros(2, dtype=np.int64), 1, POLICY, 2.0)
    v = kpi.scalar(t)
    if v["availability"] is not None:
        assert 0.0 <= v["availability"] <= 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)), max_size=20), st.lists(st.integers(1, 10_000), min_size=2, max_size=8))
def test_time_per_bucket_conserves_interval_time(raw, cuts):
    from analytics.states import Interval

    edges = np.unique(np.array([0, 10_000, *cuts], dtype=np.int64))
    ivs, cursor = [], 0
    for a, _ in sorted(raw):
        if a > cursor:
            ivs.append(Interval(cursor, a, 1 if len(ivs) % 2 else 2))
            cursor = a
    ivs.append(Interval(cursor, 10_000, 1 if len(ivs) % 2 else 2))
    for s in (1, 2):
        got = time_per_bucket(ivs, edges, s)
        assert got.sum() == sum(i.duration_ms for i in ivs if i.state == s)
        assert (got >= 0).all()


@settings(max_examples=80, deadline=None)
@given(st.floats(0.01, 1e5), st.floats(0, 1e5), st.floats(0, 1e5), st.integers(0, 10_000), st.integers(0, 1000),
       st.floats(0.1, 100))
def test_oee_is_the_product_of_its_factors(run_s, speed_s, down_s, good, scrap, ideal):
    t = kpi.Totals.zeros(1, CODES)
    t.run_ms[:], t.speed_ms[:], t.unplanned_ms[:] = run_s * 1000, speed_s * 1000, down_s * 1000
    t.known_ms[:] = t.calendar_ms[:] = (run_s + speed_s + down_s) * 1000
    t.good[:], t.scrap[:] = good, scrap
    t.std_s[:], t.std_good_s[:] = ideal * (good + scrap), ideal * good
    v = kpi.scalar(t)
    if good + scrap:
        assert v["oee"] == pytest.approx(v["availability"] * v["performance"] * v["quality"], rel=1e-9)


def test_raw_path_books_each_bucket_to_its_last_product():
    ts = np.array([T0 + 10_000, T0 + 3_000_000, T0 + 3_700_000])
    b = from_samples((T0, T0 + 3 * H), H, CODES, 3000, product_ideal=(ts, np.array([10.0, 20.0, 30.0])))
    assert b.ideal_s[:2].tolist() == [20.0, 30.0] and np.isnan(b.ideal_s[2])


def test_a_policy_refuses_a_time_zone_it_cannot_load_and_says_what_to_write():
    import pydantic

    with pytest.raises(pydantic.ValidationError, match="unknown time zone 'Asia/Changwon': use an IANA name"):
        Policy(timezone="Asia/Changwon")


def test_pareto_lists_stop_reasons_only_and_no_data_stands_apart():
    # 20 min processing, 10 min fault, 5 min planned stop, 25 min without data: no data is the largest
    minutes = [2] * 20 + [4] * 10 + [5] * 5 + [None] * 25
    _, t = hour_totals(minutes)
    rows = kpi.pareto(t, POLICY)
    assert [r["reason"] for r in rows] == ["fault", "planned_stop"]
    assert rows[-1]["cumulative_share"] == pytest.approx(1.0)
    assert kpi.time_elements(t)["no_data_h"] == pytest.approx(25 / 60, abs=1e-3)


def test_the_rest_of_the_running_hour_is_not_no_data():
    # 20 minutes into the hour, all of it processing: the 40 minutes still to come are no data yet
    b, _ = hour_totals([2] * 20 + [None] * 40)
    t = kpi.totals(b, np.zeros(1, dtype=np.int64), 1, POLICY, ideal_cycle_s=2.0, now_ms=T0 + 20 * 60_000)
    assert kpi.time_elements(t)["no_data_h"] == pytest.approx(0, abs=1e-3)
    assert kpi.scalar(t)["coverage"] == pytest.approx(1.0, abs=1e-3)
    later = kpi.totals(b, np.zeros(1, dtype=np.int64), 1, POLICY, ideal_cycle_s=2.0, now_ms=T0 + 30 * 60_000)
    assert kpi.time_elements(later)["no_data_h"] == pytest.approx(10 / 60, abs=1e-3)  # past now, unseen: no data

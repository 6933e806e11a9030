"""Line dashboard computations (pure) and the snapshot built from a real SQLite store."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api import linedash as ld
from api.live import LineModel, build_snapshot
from analytics.states import UNKNOWN, Interval, state_intervals, time_in_state
from plant import MachineRef
from tsstore import Point
from tsstore.sqlite import SqliteStore

SEOUL = "Asia/Seoul"


def _ms(y, mo, d, h, mi=0, tz=SEOUL) -> int:
    return int(datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


DAY = ld.ShiftSpec("day", 6 * 60, 18 * 60)
NIGHT = ld.ShiftSpec("night", 18 * 60, 6 * 60)


def test_current_shift_runs_past_midnight_in_local_time():
    now = _ms(2026, 11, 24, 2, 30)  # 02:30 in Seoul = 17:30 UTC the day before
    w = ld.current_shift([DAY, NIGHT], SEOUL, now)
    assert (w.name, w.start_ms, w.end_ms) == ("night", _ms(2026, 11, 23, 18), _ms(2026, 11, 24, 6))


def test_between_shifts_the_last_ended_shift_is_shown_and_weekdays_count():
    weekday_day = ld.ShiftSpec("day", 8 * 60, 17 * 60, "01234")
    tuesday_evening = _ms(2026, 11, 24, 20)
    assert ld.current_shift([weekday_day], SEOUL, tuesday_evening).end_ms == _ms(2026, 11, 24, 17)
    sunday_noon = _ms(2026, 11, 29, 12)  # no shift on the weekend, and Friday's ended > 1 day ago
    assert ld.current_shift([weekday_day], SEOUL, sunday_noon) is None


def test_planned_time_today_from_the_calendar():
    day0 = ld.day_start_ms(SEOUL, _ms(2026, 11, 24, 10))
    assert day0 == _ms(2026, 11, 24, 0)
    # 00:00-06:00 of last night's shift + 06:00-10:00 of the day shift
    assert ld.planned_ms([DAY, NIGHT], SEOUL, day0, _ms(2026, 11, 24, 10)) == 10 * 3_600_000


def test_count_since_corrects_the_uint16_wrap_and_flags_it():
    ts = [0, 60_000, 120_000, 180_000]
    values = [65_530.0, 65_534.0, 3.0, 10.0]
    assert ld.count_since(ts, values, since_ms=60_000) == (4 + 5 + 7, 1)
    assert ld.count_since(ts, values, since_ms=0) == (4 + 5 + 7, 1)
    assert ld.count_since(ts, values, since_ms=10**9) == (0, 0)


def test_count_since_treats_a_drop_far_from_the_top_as_a_reset():
    assert ld.count_since([0, 1, 2], [500.0, 510.0, 4.0], 0) == (10 + 4, 1)


def test_oee_estimate_is_iso_22400_and_keeps_unknown_time_in_the_denominator():
    h = 3_600_000
    intervals = [Interval(0, 4 * h, ld.PROCESSING), Interval(4 * h, 5 * h, ld.FAULT),
                 Interval(5 * h, 6 * h, ld.PLANNED_STOP), Interval(6 * h, 8 * h, UNKNOWN)]
    est = ld.oee_estimate(intervals, good=900, scrap=100, ideal_cycle_s=12.0)
    assert est.availability == pytest.approx(4 / 7)  # planned stop leaves PBT; unknown stays in
    assert est.performance == pytest.approx(12 * 1000 / (4 * 3600))
    assert est.quality == pytest.approx(0.9)
    assert est.oee == pytest.approx(4 / 7 * 12 * 1000 / (4 * 3600) * 0.9)
    assert est.coverage == pytest.approx(6 / 8)
    assert "estimate" in est.label


def test_oee_estimate_without_production_has_no_fake_numbers():
    est = ld.oee_estimate([Interval(0, 1000, ld.FAULT)], good=0, scrap=0, ideal_cycle_s=10)
    assert (est.availability, est.performance, est.quality, est.oee) == (0.0, None, None, None)


def test_state_classes_match_the_reports():
    """Idle and micro-stops are speed losses inside production time; not-scheduled time is planned."""
    h = 3_600_000
    ivs = [Interval(0, h, ld.PROCESSING), Interval(h, 2 * h, ld.IDLE), Interval(2 * h, 3 * h, ld.MICRO_STOP),
           Interval(3 * h, 4 * h, ld.CHANGEOVER), Interval(4 * h, 5 * h, ld.NOT_SCHEDULED)]
    est = ld.oee_estimate(ivs, good=360, scrap=0, ideal_cycle_s=10)
    assert est.availability == pytest.approx(3 / 4)
    assert est.performance == pytest.approx(360 * 10 / (3 * 3600))


def test_state_now_says_when_the_start_is_only_a_lower_bound():
    ivs = [Interval(0, 10, ld.PROCESSING)]
    assert ld.state_now(ivs, 0) == ld.StateNow(ld.PROCESSING, 0, True)
    ivs = [Interval(0, 5, ld.IDLE), Interval(5, 10, ld.FAULT)]
    assert ld.state_now(ivs, 0) == ld.StateNow(ld.FAULT, 5, False)
    assert ld.state_now([Interval(0, 10, UNKNOWN)], 0).state is None


def test_input_time_counts_only_time_with_data_and_is_given_per_part():
    h = 3_600_000
    ivs = [Interval(0, h // 2, ld.LOADING), Interval(h // 2, h, UNKNOWN)]
    assert ld.known_ms_in(ivs, 0, h) == h // 2
    assert ld.input_seconds(0.5, ld.known_ms_in(ivs, 0, h)) == 900.0
    assert ld.input_trend({0: (900.0, 100), h: (10.0, 0)}) == [
        {"ts": 0, "input_s": 900.0, "parts": 100, "input_s_per_part": 9.0},
        {"ts": h, "input_s": 10.0, "parts": 0, "input_s_per_part": None}]


def test_snapshot_from_a_store(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    now = _ms(2026, 11, 24, 10)
    m1 = MachineRef("acme", "s", "l", "m1")
    points = []
    for i in range(0, 600):  # the last 10 minutes, one sample a second
        t = now - 600_000 + i * 1000
        points.append(Point(m1, t, {"state": ld.PROCESSING if i < 590 else ld.FAULT, "good_count": (65_500 + i // 10) % 65_536,
                                    "scrap_count": 0, "material_input": i % 2}))
    store.write(points)
    model = LineModel("acme", "s", "l", "Line", SEOUL, [DAY, NIGHT], [("m1", "M1", 10.0), ("m2", "M2", 10.0)])
    snap = build_snapshot(model, store, [], now, stale_ms=10_000)
    tiles = {t["machine"]: t for t in snap["machines"]}
    assert tiles["m1"]["state"] == ld.FAULT and tiles["m1"]["state_since_ms"] == now - 10_000
    # one part per 10 s, wrapping 65535 → 0; counted from the first minute's last reading (65505) on, since
    # nothing earlier today exists to count from: 65505 → 65559 (= 23 after the wrap) is 54 parts
    assert tiles["m1"]["count_today"] == 54 and tiles["m1"]["counter_corrections_today"] == 1
    assert tiles["m1"]["target_today"] == 10 * 3600 // 10
    assert tiles["m2"]["state"] is None and tiles["m2"]["stale"] and tiles["m2"]["count_today"] == 0
    assert snap["shift"]["name"] == "day" and snap["count_today"] == 54
    assert snap["oee"]["coverage"] < 0.1  # ten minutes of data in a four-hour shift
    assert snap["material_input"][-1]["input_s"] == pytest.approx(300, abs=2)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5000), st.integers(0, 5)), max_size=40), st.integers(0, 30_000),
       st.integers(1, 30_000), st.integers(1, 3000))
def test_runs_give_the_same_intervals_and_totals_as_the_samples(steps, start, span, stale):
    """The dashboard keeps runs instead of samples; it must not change a single interval."""
    ts, states, t = [], [], 0
    for gap, s in steps:
        t += gap
        ts.append(t)
        states.append(s)
    runs: list[list[int]] = []
    for x, s in zip(ts, states):
        ld.add_sample(runs, x, s, stale)
    window = (start, start + span)
    expected = state_intervals(ts, states, window, stale)
    assert ld.runs_to_intervals(runs, window, stale) == expected
    assert ld.run_totals(runs, window, stale) == time_in_state(expected)
    hour = 5000
    buckets = list(range((start // hour) * hour, start + span, hour))
    known = ld.known_ms_per_bucket(runs, window, stale, buckets, hour)
    assert known == {b: ld.known_ms_in(expected, b, b + hour) for b in buckets}


def test_incremental_snapshot_equals_a_fresh_one(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    now = _ms(2026, 11, 24, 10)
    m1 = MachineRef("acme", "s", "l", "m1")
    pts = [Point(m1, now - 300_000 + i * 1000, {"state": (i // 7) % 4, "good_count": i // 14, "scrap_count": 0,
                                                 "material_input": int((i // 7) % 4 == 1)}) for i in range(300)]
    model = LineModel("acme", "s", "l", "Line", SEOUL, [DAY, NIGHT], [("m1", "M1", 10.0)])
    feeds: dict = {}
    store.write(pts[:200])
    build_snapshot(model, store, [], now - 100_000, 10_000, feeds)
    for k in range(200, 300):  # one new sample per refresh, as a watched dashboard sees them
        store.write([pts[k]])
        incremental = build_snapshot(model, store, [], now - 300_000 + k * 1000 + 1, 10_000, feeds)
    fresh = build_snapshot(model, store, [], now - 300_000 + 299 * 1000 + 1, 10_000)
    for key in ("count_today", "oee", "machines"):
        assert incremental[key] == fresh[key], key


def test_centre_coverage_is_the_share_of_minutes_with_data(tmp_path):
    import time as _time

    from fastapi.testclient import TestClient

    from api.app import create_app
    from plantmodel.admin import PlantSeed, apply_seed
    from plantmodel.db import open_plant

    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({
        "tenants": [{"slug": "acme", "sites": [{"slug": "s", "lines": [{"slug": "l", "machines": [
            {"slug": "full"}, {"slug": "half"}]}]}]}],
        "users": [{"username": "eng", "password": "engineer-1", "role": "centre_engineer"}]}))
    store = SqliteStore(tmp_path / "s.db")
    now = int(_time.time() * 1000)
    store.write([Point(MachineRef("acme", "s", "l", "full"), now - k * 60_000, {"state": 2}) for k in range(1, 1500)])
    store.write([Point(MachineRef("acme", "s", "l", "half"), now - k * 60_000, {"state": 2}) for k in range(1, 721)])
    with TestClient(create_app(store, plant=plant, run_alarms=False)) as c:
        c.post("/api/v1/auth/login", json={"username": "eng", "password": "engineer-1"})
        (tenant,) = c.get("/api/v1/centre/overview").json()["tenants"]
    assert tenant["coverage_24h"] == pytest.approx((1.0 + 0.5) / 2, abs=0.01)

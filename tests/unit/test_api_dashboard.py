"""Line dashboard computations (pure) and the snapshot built from a real SQLite store."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import live as ld
from analytics.policy import Policy
from analytics.states import UNKNOWN, state_intervals, time_in_state
from api.live import LineModel, build_snapshot
from plant import MachineRef
from plant.states import MachineState as S
from tsstore import Point
from tsstore.sqlite import SqliteStore

SEOUL = "Asia/Seoul"
#: The default policy with the staleness these tests were written for.
POLICY = Policy(stale_s=10, ideal_cycle_s={"m1": 10.0, "m2": 10.0})
H = 3_600_000


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
    assert ld.count_since(ts, values, bits=16, since_ms=60_000) == (4 + 5 + 7, 1)
    assert ld.count_since(ts, values, bits=16, since_ms=0) == (4 + 5 + 7, 1)
    assert ld.count_since(ts, values, bits=16, since_ms=10**9) == (0, 0)


def test_count_since_treats_a_drop_far_from_the_top_as_a_reset():
    assert ld.count_since([0, 1, 2], [500.0, 510.0, 4.0], 0) == (10 + 4, 1)


def _estimate(state_ms: dict[int, int], good: int, scrap: int, ideal_s: float, policy: Policy = POLICY) -> dict:
    return ld.estimate(ld.window_totals(state_ms, sum(state_ms.values()), good, scrap, ideal_s, policy))


def test_live_oee_is_the_reports_and_keeps_unknown_time_out_of_planned_time():
    est = _estimate({S.PROCESSING: 4 * H, S.FAULT: H, S.PLANNED_STOP: H, UNKNOWN: 2 * H}, good=900, scrap=100, ideal_s=12.0)
    assert est["availability"] == pytest.approx(4 / 5)  # planned stop leaves PBT; no-data time is in no state
    assert est["performance"] == pytest.approx(12 * 1000 / (4 * 3600))
    assert est["quality"] == pytest.approx(0.9)
    assert est["oee"] == pytest.approx(4 / 5 * 12 * 1000 / (4 * 3600) * 0.9)
    assert est["coverage"] == pytest.approx(6 / 8)
    assert (est["planned_s"], est["running_s"], est["unknown_s"]) == (5 * 3600, 4 * 3600, 2 * 3600)
    assert (est["good"], est["scrap"]) == (900, 100)
    assert "estimate" in est["label"]


def test_live_oee_without_production_has_no_fake_ratios():
    est = _estimate({S.FAULT: 1000}, good=0, scrap=0, ideal_s=10)
    # no parts: no performance or quality to speak of; a window of faults is no OEE at all, as in the report
    assert (est["availability"], est["performance"], est["quality"], est["oee"]) == (0.0, None, None, 0.0)


def test_live_performance_waits_for_ten_ideal_cycles_of_running():
    """At a shift's start one part in 16 s of a 22 s cycle would read 137%: too few parts for a figure."""
    def early(run_s: float, planned_extra_s: float, good: int) -> dict:
        t = ld.window_totals({S.PROCESSING: int(run_s * 1000), S.FAULT: int(planned_extra_s * 1000)},
                             int((run_s + planned_extra_s) * 1000), good, 0, 22.0, POLICY)
        return ld.estimate(t, ld.min_running_s(22.0))
    assert ld.min_running_s(22.0) == pytest.approx(220.0) == ld.MIN_RUNNING_CYCLES * 22.0
    est = early(16, 0, 1)
    assert est["performance"] is None and est["oee"] is None and est["performance_after_s"] == pytest.approx(220)
    assert est["availability"] == 1.0 and est["quality"] == 1.0  # measured, not counted: shown at once
    est = early(220, 0, 10)
    assert est["performance"] == pytest.approx(1.0) and est["oee"] == pytest.approx(1.0)
    assert est["performance_after_s"] is None
    # down most of the shift: performance waits for running time, OEE (good parts' ideal time over planned
    # time) does not, and a machine that never ran has OEE 0 at once
    est = early(30, 3600, 1)
    assert est["performance"] is None and est["oee"] == pytest.approx(22 / 3630)
    est = early(0, 3600, 0)
    assert est["oee"] == 0.0 and est["performance"] is None
    # a line pools its machines' running time against their cycles added up, and says when per machine
    two = [ld.window_totals({S.PROCESSING: 100_000}, 100_000, 4, 0, 22.0, POLICY) for _ in range(2)]
    est = ld.estimate(two[0] + two[1], 2 * ld.min_running_s(22.0), machines=2)
    assert est["performance"] is None and est["performance_after_s"] == pytest.approx(220)


def test_time_in_codes_the_policy_does_not_list_is_time_without_a_known_state():
    policy = Policy(states=[{"code": 2, "name": "run", "kind": "run"}, {"code": 4, "name": "jam", "kind": "unplanned"}])
    est = _estimate({2: 3 * H, 4: H, 9: 4 * H}, good=360, scrap=0, ideal_s=10, policy=policy)
    assert est["availability"] == pytest.approx(3 / 4) and est["coverage"] == pytest.approx(4 / 8)


def test_input_time_counts_only_time_with_data_and_is_given_per_part():
    runs: list[ld.Run] = []
    for t in range(0, H // 2, 1000):
        ld.add_sample(runs, t, S.LOADING, 10_000)
    known = ld.known_ms_per_bucket(runs, (0, H), 10_000, [0], H)[0]
    assert known == H // 2 - 1000 + 10_000  # the last sample holds for the staleness limit
    assert ld.input_seconds(0.5, known) == known / 2000
    assert ld.input_trend({0: (900.0, 100), H: (10.0, 0)}) == [
        {"ts": 0, "input_s": 900.0, "parts": 100, "input_s_per_part": 9.0},
        {"ts": H, "input_s": 10.0, "parts": 0, "input_s_per_part": None}]


def test_snapshot_from_a_store(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    now = _ms(2026, 11, 24, 10)
    m1 = MachineRef("acme", "s", "l", "m1")
    points = []
    for i in range(0, 600):  # the last 10 minutes, one sample a second
        t = now - 600_000 + i * 1000
        points.append(Point(m1, t, {"state": S.PROCESSING if i < 590 else S.FAULT, "good_count": (65_500 + i // 10) % 65_536,
                                    "scrap_count": 0, "material_input": i % 2}))
    store.write(points)
    model = LineModel("acme", "s", "l", "Line", SEOUL, [DAY, NIGHT], [("m1", "M1", 10.0), ("m2", "M2", 10.0)])
    snap = build_snapshot(model, store, [], now, POLICY)
    tiles = {t["machine"]: t for t in snap["machines"]}
    assert tiles["m1"]["state"] == S.FAULT and tiles["m1"]["state_name"] == "fault" and tiles["m1"]["state_since_ms"] == now - 10_000
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
def test_runs_give_the_same_totals_as_the_samples(steps, start, span, stale):
    """The dashboard keeps runs instead of samples; it must not change a millisecond of any state."""
    ts, states, t = [], [], 0
    for gap, s in steps:
        t += gap
        ts.append(t)
        states.append(s)
    runs: list[ld.Run] = []
    for x, s in zip(ts, states):
        ld.add_sample(runs, x, s, stale)
    window = (start, start + span)
    expected = state_intervals(ts, states, window, stale)
    assert ld.run_totals(runs, window, stale) == time_in_state(expected)
    hour = 5000
    buckets = list(range((start // hour) * hour, start + span, hour))
    known = ld.known_ms_per_bucket(runs, window, stale, buckets, hour)
    assert known == {b: sum(max(0, min(iv.end_ms, b + hour) - max(iv.start_ms, b))
                            for iv in expected if iv.state != UNKNOWN) for b in buckets}


def test_incremental_snapshot_equals_a_fresh_one(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    now = _ms(2026, 11, 24, 10)
    m1 = MachineRef("acme", "s", "l", "m1")
    pts = [Point(m1, now - 300_000 + i * 1000, {"state": (i // 7) % 4, "good_count": i // 14, "scrap_count": 0,
                                                 "material_input": int((i // 7) % 4 == 1)}) for i in range(300)]
    model = LineModel("acme", "s", "l", "Line", SEOUL, [DAY, NIGHT], [("m1", "M1", 10.0)])
    feeds: dict = {}
    store.write(pts[:200])
    build_snapshot(model, store, [], now - 100_000, POLICY, feeds)
    for k in range(200, 300):  # one new sample per refresh, as a watched dashboard sees them
        store.write([pts[k]])
        incremental = build_snapshot(model, store, [], now - 300_000 + k * 1000 + 1, POLICY, feeds)
    fresh = build_snapshot(model, store, [], now - 300_000 + 299 * 1000 + 1, POLICY)
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
        "users": [{"username": "eng", "password": "engineer-pass-1", "role": "centre_engineer"}]}))
    store = SqliteStore(tmp_path / "s.db")
    now = int(_time.time() * 1000)
    store.write([Point(MachineRef("acme", "s", "l", "full"), now - k * 60_000, {"state": 2}) for k in range(1, 1500)])
    store.write([Point(MachineRef("acme", "s", "l", "half"), now - k * 60_000, {"state": 2}) for k in range(1, 721)])
    with TestClient(create_app(store, plant=plant, run_alarms=False)) as c:
        c.post("/api/v1/auth/login", json={"username": "eng", "password": "engineer-pass-1"})
        (tenant,) = c.get("/api/v1/centre/overview").json()["tenants"]
    assert tenant["coverage_24h"] == pytest.approx((1.0 + 0.5) / 2, abs=0.01)


# -- the live figures are the report's, for a tenant with its own policy ----------------------------
CUSTOM = {
    "timezone": SEOUL,
    # the tenant's PLCs use their own codes; 2 (the default PROCESSING) is not among them
    "states": [{"code": 10, "name": "cutting", "kind": "run"}, {"code": 11, "name": "clamping", "kind": "run"},
               {"code": 20, "name": "waiting", "kind": "speed_loss"},
               {"code": 30, "name": "jam", "kind": "unplanned", "failure": True},
               {"code": 40, "name": "lunch", "kind": "planned"}],
    "shifts": [{"name": "day", "start": "06:00", "end": "18:00"}],
    "tags": {"state": "st", "good": "ok_parts", "scrap": "ng_parts", "material_input": "feed", "energy": None,
             "product": None, "good_bits": 32, "scrap_bits": 32},
    "stale_s": 30,  # the API's stale_after_s (90 s) would bridge the minute-long gaps below
    "ideal_cycle_s": {"l/m1": 20.0, "m2": 25.0},  # the policy's, not the plant model's 10 s
}


def _custom_line(tmp_path):
    from plantmodel.admin import PlantSeed, apply_seed
    from plantmodel.db import open_plant

    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({"tenants": [{"slug": "acme", "timezone": SEOUL, "sites": [{"slug": "s", "lines": [{
        "slug": "l", "shifts": [{"name": "day", "start": "06:00", "end": "18:00"}],
        "machines": [{"slug": "m1", "ideal_cycle_s": 10}, {"slug": "m2", "ideal_cycle_s": 10}]}]}]}]}))
    store = SqliteStore(tmp_path / "s.db")
    day0 = _ms(2026, 11, 24, 5)
    top = 2**32
    for k, (machine, good0, scrap0) in enumerate((("m1", top - 700, top - 3), ("m2", 5_000_000, 70_000))):
        ref = MachineRef("acme", "s", "l", machine)
        points, good, scrap = [], good0, scrap0
        # 05:00-18:00, a sample every 10 s: on whole minutes too, like a gateway's heartbeat, so the store's
        # rollups (which book a hold to the bucket of the sample that ends it) split exactly at the hours
        for i in range(0, 13 * 60 * 6 + 1):
            if i % 181 < 6:  # a minute without data now and then
                continue
            t = day0 + i * 10_000
            if _ms(2026, 11, 24, 12) <= t < _ms(2026, 11, 24, 12, 30):
                state = 40
            else:
                state = (10, 10, 10, 10, 10, 11, 20, 10, 10, 30, 2, 10 + k)[i % 12]
            if i % 3 == 0:
                good, scrap = (good + 1) % top, (scrap + (i % 30 == 0)) % top
            points.append(Point(ref, t, {"st": state, "ok_parts": good, "ng_parts": scrap, "feed": int(state == 11)}))
        store.write(points)
    return plant, store


def test_live_shift_figures_equal_the_report_for_a_tenant_with_its_own_policy(tmp_path):
    """Custom state map, tag names, 32-bit counters, staleness and ideal cycles: the dashboard says what the report says."""
    from datetime import date

    from analytics.report import period_report
    from analytics.settings import AnalyticsSettings
    from api.live import load_line
    from plantmodel.policy import effective_settings

    plant, store = _custom_line(tmp_path)
    policy = effective_settings(AnalyticsSettings.model_validate({"tenants": {"acme": CUSTOM}}), plant).policy("acme")
    model = load_line(plant, "acme", "s", "l")
    now = _ms(2026, 11, 24, 18)  # the day shift has just ended
    snap = build_snapshot(model, store, [], now, policy)
    assert snap["shift"]["name"] == "day"
    m1, m2 = (MachineRef("acme", "s", "l", m) for m in ("m1", "m2"))
    day = date(2026, 11, 24)
    keys = ("oee", "availability", "performance", "quality")
    tiles = {t["machine"]: t for t in snap["machines"]}
    for live, machines in ((tiles["m1"]["oee"], [m1]), (tiles["m2"]["oee"], [m2]), (snap["oee"], [m1, m2])):
        by_shift = period_report(store, machines, policy, day, day, by="shift")
        (row,) = [r for r in by_shift["rows"] if r["date"] == day.isoformat() and r["shift"] == "day"]
        # the one difference (issue 13): the report keeps the parts counted across a data gap (the
        # minute-long holes, longer than stale_s) out of its rates; the live estimate reads minute buckets, so
        # it leaves out those across a gap of more than a bucket plus stale_s, and counts the shorter ones
        t = row["time"]
        assert t["good"] <= live["good"] <= t["good"] + t["good_across_gaps"]
        assert t["scrap"] <= live["scrap"] <= t["scrap"] + t["scrap_across_gaps"]
        assert t["good_across_gaps"] > 0
        assert live["availability"] == pytest.approx(row["kpis"]["availability"], rel=1e-9), machines
        share = (t["good_across_gaps"] + t["scrap_across_gaps"]) / (t["good"] + t["scrap"])
        for k in keys:
            assert live[k] == pytest.approx(row["kpis"][k], rel=share + 1e-9), (machines, k)
        assert 0.3 < live["availability"] < 0.99 and 0.1 < live["performance"] < 2 and live["quality"] < 1
        assert live["good"] > 1000
    # today is since local midnight: the shift's parts and the hour of data before it, the 32-bit wrap corrected once
    assert tiles["m1"]["count_today"] > tiles["m1"]["oee"]["good"] and tiles["m1"]["counter_corrections_today"] == 1
    assert tiles["m1"]["ideal_cycle_s"] == 20.0 and tiles["m2"]["ideal_cycle_s"] == 25.0
    assert (tiles["m1"]["state"], tiles["m1"]["state_name"], tiles["m1"]["stale"]) == (10, "cutting", False)


def test_the_dashboard_endpoint_reads_the_tenants_policy(tmp_path):
    """The served snapshot uses the configured tenant policy (the app's analytics settings), not the defaults."""
    import time as _time

    from fastapi.testclient import TestClient

    from analytics.settings import AnalyticsSettings
    from api.app import create_app
    from plantmodel.admin import PlantSeed, apply_seed
    from plantmodel.db import open_plant

    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({
        "tenants": [{"slug": "acme", "timezone": "UTC", "sites": [{"slug": "s", "lines": [{"slug": "l", "machines": [
            {"slug": "m1"}]}]}]}],
        "users": [{"username": "eng", "password": "lathe-morning-cactus-47", "role": "centre_engineer"}]}))
    store = SqliteStore(tmp_path / "s.db")
    now = int(_time.time() * 1000)
    ref = MachineRef("acme", "s", "l", "m1")
    # two minutes of a 32-bit counter passing its top, under the tenant's own tag names and state code
    store.write([Point(ref, now - 120_000 + i * 1000, {"st": 10, "ok_parts": (2**32 - 30 + i // 2) % 2**32})
                 for i in range(121)])
    analytics = AnalyticsSettings.model_validate({"tenants": {"acme": {**CUSTOM, "timezone": "UTC",
                                                                      "shifts": [{"name": "day"}]}}})
    app = create_app(store, plant=plant, run_alarms=False, analytics=analytics)
    with TestClient(app) as c:
        c.post("/api/v1/auth/login", json={"username": "eng", "password": "lathe-morning-cactus-47"})
        (tile,) = c.get("/api/v1/lines/acme/s/l/dashboard").json()["machines"]
    assert (tile["state"], tile["state_name"], tile["stale"]) == (10, "cutting", False)
    if _time.gmtime(now / 1000 - 120).tm_mday == _time.gmtime(now / 1000).tm_mday:  # all two minutes are "today"
        # counted from the first minute's last reading (nothing earlier today), across the wrap; read as a 16-bit
        # register, the drop from 2**32 - 1 would be taken for a 16-bit wrap and the count be off by billions
        assert 30 <= tile["count_today"] <= 60 and tile["counter_corrections_today"] == 1


def test_between_shifts_the_snapshot_says_the_shift_has_ended(tmp_path):
    """At 02:51 a day-shift tenant's OEE is yesterday's shift: the snapshot must not call it current."""
    weekday_day = ld.ShiftSpec("주간", 8 * 60, 17 * 60, "01234")
    now = _ms(2026, 11, 25, 2, 51)  # a Wednesday
    model = LineModel("acme", "s", "l", "Line", SEOUL, [weekday_day], [("m1", "M1", 10.0)])
    snap = build_snapshot(model, SqliteStore(tmp_path / "s.db"), [], now, Policy())
    assert snap["shift"]["running"] is False
    assert snap["shift"]["end_ms"] == _ms(2026, 11, 24, 17)
    assert snap["shift"]["next"]["start_ms"] == _ms(2026, 11, 25, 8)
    during = build_snapshot(model, SqliteStore(tmp_path / "s.db"), [], _ms(2026, 11, 25, 9), Policy())
    assert during["shift"]["running"] is True and during["shift"]["start_ms"] == _ms(2026, 11, 25, 8)


def test_a_feed_reread_reads_only_the_recent_time_and_ends_as_a_full_read(tmp_path):
    """Every 5 minutes the feed reads again only since its last read (late samples included)."""
    from analytics.policy import Tags
    from api.live import MachineFeed

    store = SqliteStore(tmp_path / "feed.db")
    m = MachineRef("acme", "s", "l", "press-1")
    t0 = 1_795_000_000_000 // 3_600_000 * 3_600_000
    state = lambda i: S.PROCESSING if (i // 30) % 3 else S.IDLE  # noqa: E731 - a run change every 5 minutes
    store.write([Point(m, t0 + i * 10_000, {"state": state(i), "good_count": i, "scrap_count": 0,
                                            "material_input": i % 2}) for i in range(360)])
    feed = MachineFeed(m, Tags(), 60_000)
    feed.refresh(store, t0, t0 + 3_600_000)
    # 10 more minutes arrive, one sample of them late (stored after the first refresh, within the margin)
    store.write([Point(m, t0 + i * 10_000, {"state": state(i), "good_count": i, "scrap_count": 0,
                                            "material_input": i % 2}) for i in range(360, 420)])
    reads = []
    real = store.history

    def counting(ref, tag, a, z, every, agg="mean"):
        reads.append((tag, a))
        return real(ref, tag, a, z, every, agg)

    real_runs = store.state_runs

    def counting_runs(ref, tag, a, z, stale_ms):
        reads.append((tag, a))
        return real_runs(ref, tag, a, z, stale_ms)

    store.history = counting  # type: ignore[method-assign]
    store.state_runs = counting_runs  # type: ignore[method-assign]
    now = t0 + 3_600_000 + 600_000
    feed.refresh(store, t0, now)
    # from the start of the state run open a minute before the last read (t0 + 50 min), not the whole hour again
    assert {tag for tag, _ in reads} >= {"state", "good_count"}
    assert all(a >= t0 + 3_000_000 for tag, a in reads if tag != "material_input")
    store.history, store.state_runs = real, real_runs  # type: ignore[method-assign]
    full = MachineFeed(m, Tags(), 60_000)
    full.refresh(store, t0, now)
    assert feed.runs == full.runs and feed.counters == full.counters and feed.inputs == full.inputs
    assert feed.last_ts == full.last_ts == t0 + 419 * 10_000


def test_count_since_leaves_out_parts_counted_across_a_data_gap():
    ts = [0, 60_000, 120_000, 7_320_000, 7_380_000]  # two hours without a reading between the 3rd and 4th
    values = [100, 102, 104, 900, 902]
    assert ld.count_since(ts, values, since_ms=0) == (802, 0)  # the day's count: every part
    assert ld.count_since(ts, values, since_ms=0, gap_ms=150_000) == (6, 0)  # a rate: only parts seen being made


def test_a_shift_with_a_hole_in_its_history_keeps_performance_at_or_under_100(tmp_path):
    """The demo right after start: the feed read the store while the history was being backfilled, so the counter
    jumps across hours whose run time is missing. The day's count keeps those parts; performance must not (was 220%)."""
    store = SqliteStore(tmp_path / "s.db")
    now = _ms(2026, 11, 24, 10)
    m1 = MachineRef("acme", "s", "l", "m1")
    count_gap = 3 * 3600 // 10 - 60  # parts made 07:00-09:50, while nothing was written
    points, count = [], 0
    for start, end, extra in ((now - 4 * H, now - 3 * H, 0), (now - 600_000, now, count_gap)):  # 06-07 h, last 10 min
        for t in range(start, end, 1000):
            if t % 10_000 == 0:
                count += 1  # one part per 10 s, the ideal cycle: performance 100%
            points.append(Point(m1, t, {"state": S.PROCESSING, "good_count": count + extra, "scrap_count": 0}))
    store.write(points)
    model = LineModel("acme", "s", "l", "Line", SEOUL, [DAY, NIGHT], [("m1", "M1", 10.0)])
    tile = build_snapshot(model, store, [], now, POLICY)["machines"][0]
    assert tile["count_today"] == pytest.approx(360 + 60 + count_gap, abs=10)  # the counter says so: made today
    assert 0.9 < tile["oee"]["performance"] <= 1.0  # without the gap rule: 340%


def test_a_feed_read_while_its_history_was_missing_reads_it_in_full_soon_after(tmp_path):
    """The demo right after start: the first read found the last minutes only; the backfilled hours show
    ``SPARSE_RELOAD_MS`` (15 s) later, not at the next 30-minute full read."""
    from analytics.policy import Tags
    from api.live import MachineFeed

    store = SqliteStore(tmp_path / "feed.db")
    m = MachineRef("acme", "s", "l", "press-1")
    t0 = 1_795_000_000_000 // 3_600_000 * 3_600_000
    now = t0 + 3_600_000

    def samples(a, z):
        return [Point(m, t0 + i * 10_000, {"state": S.PROCESSING, "good_count": i, "scrap_count": 0}) for i in range(a, z)]
    store.write(samples(354, 360))  # the last minute only
    feed = MachineFeed(m, Tags(), 60_000)
    feed.refresh(store, t0, now)
    assert feed.sparse and len(feed.counters["good_count"]) == 1
    store.write(samples(0, 354))  # the backfill writes the hour before
    feed.refresh(store, t0, now + 10_000)  # within the interval: a top-up
    assert len(feed.counters["good_count"]) == 1
    feed.refresh(store, t0, now + 16_000)
    assert not feed.sparse and len(feed.counters["good_count"]) == 60
    assert ld.run_totals(feed.runs_array(), (t0, now), 60_000).get(UNKNOWN, 0) < 20_000

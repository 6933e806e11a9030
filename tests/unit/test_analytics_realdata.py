"""Issue 13: real factory data (gaps, counters that step back or restart near the top, weekly
calendars, material input from a state code) must not bend the numbers without a warning."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics import kpi
from analytics.buckets import cycles, from_samples
from analytics.counters import Correction, counter_deltas
from analytics.policy import Policy, ShiftDef
from analytics.report import before_after_report, local_midnight_ms
from analytics.rollup import machine_buckets
from analytics.synthetic import LineSpec, generate
from analytics.workcalendar import is_closed, planned_minutes, shift_at
from plant import MachineRef
from tsstore.sqlite import SqliteStore

H = 3_600_000
CODES = [0, 1, 2, 3, 4, 5, 6, 7, 8]


# -- 6. a PLC restart near the top of the counter is not a wrap ------------------------------
def test_restart_near_the_top_is_a_reset_when_a_wrap_would_be_too_fast():
    # 65317 -> 0 in 60 s: a wrap would be 219 parts in a minute from a 24 s machine
    d = counter_deltas([65300, 65317, 0, 2], bits=16, ts_ms=[0, 60_000, 120_000, 180_000], max_rate_per_s=1 / 24)
    assert d.deltas.tolist() == [17, 0, 2]
    assert d.corrections == [(1, Correction.RESET)]


def test_real_wrap_at_the_machines_pace_is_still_a_wrap():
    d = counter_deltas([65533, 65535, 1, 3], bits=16, ts_ms=[0, 48_000, 96_000, 144_000], max_rate_per_s=1 / 24)
    assert d.deltas.tolist() == [2, 2, 2] and d.corrections == [(1, Correction.WRAP)]


def test_drop_near_the_top_across_a_data_gap_is_flagged_ambiguous_and_only_the_certain_part_counted():
    d = counter_deltas([65530, 40], bits=16, ts_ms=[0, 4 * H], max_rate_per_s=1 / 24, stale_ms=90_000)
    assert d.deltas.tolist() == [40]  # a wrap would be 46: both fit four hours
    assert d.corrections == [(0, Correction.AMBIGUOUS)]


@given(st.integers(0, 65535), st.lists(st.integers(0, 2), min_size=1, max_size=300))
def test_wraps_at_a_possible_pace_are_counted_exactly(start, increments):
    # one reading a minute, at most 2 parts a minute from a 30 s machine
    raw = np.cumsum([start, *increments]) % 65536
    ts = np.arange(len(raw)) * 60_000
    d = counter_deltas(raw, bits=16, ts_ms=ts, max_rate_per_s=1 / 30, stale_ms=90_000)
    assert d.total == sum(increments)
    assert all(k is Correction.WRAP for _, k in d.corrections)


# -- 7. a counter stepping back by one is a correction, not a reset ----------------------------
def test_step_back_by_one_counts_nothing_new_and_is_flagged():
    d = counter_deltas([1818, 1820, 1819, 1821], bits=16)
    assert d.total == 3  # 1818 -> 1821, not 1819 parts more
    assert d.corrections == [(1, Correction.STEP_BACK)]


def test_out_of_order_sample_counts_each_part_once():
    d = counter_deltas([100, 102, 101, 101, 102, 105], bits=16)
    assert d.deltas.tolist() == [2, 0, 0, 0, 3] and d.total == 5


@given(st.integers(20, 60000), st.lists(st.integers(0, 3), min_size=2, max_size=100), st.data())
def test_swapping_two_neighbouring_samples_never_changes_the_total(start, increments, data):
    raw = list(np.cumsum([start, *increments]))
    i = data.draw(st.integers(1, len(raw) - 2))
    raw[i], raw[i + 1] = raw[i + 1], raw[i]  # an out-of-order arrival
    assert counter_deltas(raw, bits=16).total == sum(increments)


def test_a_real_reset_to_a_low_reading_is_still_a_reset():
    d = counter_deltas([510, 3, 7], bits=16)
    assert d.deltas.tolist() == [3, 4] and d.corrections == [(0, Correction.RESET)]


# -- 3. weekly calendars and holidays ------------------------------------------------------------
def _week_policy(**kw) -> Policy:
    return Policy(shifts=[ShiftDef(name="day", start="08:00", end="17:00", days=["mon", "tue", "wed", "thu", "fri"])], **kw)


def test_sunday_and_korean_holidays_are_not_planned_time():
    p = _week_policy()
    kst = Policy().zone()
    assert shift_at(datetime(2026, 3, 4, 9, tzinfo=kst), p) == (0, date(2026, 3, 4))  # a Wednesday
    assert shift_at(datetime(2026, 3, 8, 9, tzinfo=kst), p) is None  # Sunday
    assert shift_at(datetime(2026, 3, 2, 9, tzinfo=kst), p) is None  # substitute holiday for 3·1
    assert is_closed(date(2026, 2, 17), p)  # 설날
    assert planned_minutes(date(2026, 3, 3), p) == 540


def test_a_tenants_closure_days_and_no_public_holidays():
    p = _week_policy(holidays=None, closed_days=[date(2026, 3, 5)])
    assert planned_minutes(date(2026, 3, 2), p) == 540  # no public holidays: a working Monday
    assert planned_minutes(date(2026, 3, 5), p) == 0


def test_an_unknown_holiday_country_is_a_clear_error():
    with pytest.raises(ValueError, match="holidays package"):
        Policy(holidays="XX")


def test_report_calendar_leaves_sundays_out_of_planned_time():
    p = _week_policy(holidays=None)
    start = int(datetime(2026, 3, 1, 15, tzinfo=timezone.utc).timestamp() * 1000)  # Mon 2 March 00:00 KST
    starts = start + np.arange(7 * 24, dtype=np.int64) * H
    cal = kpi.calendar(starts, p)
    assert [d.weekday() for d in cal.days] == [0, 1, 2, 3, 4]
    assert (cal.shift_of_bucket >= 0).sum() == 5 * 9


def test_night_shift_belongs_to_the_weekday_it_starts():
    p = Policy(shifts=[ShiftDef(name="night", start="22:00", end="06:00", days=["fri"])], holidays=None)
    kst = p.zone()
    assert shift_at(datetime(2026, 3, 7, 3, tzinfo=kst), p) == (0, date(2026, 3, 6))  # Saturday 03:00: Friday's night
    assert shift_at(datetime(2026, 3, 8, 3, tzinfo=kst), p) is None


# -- 5. material input from a state code ---------------------------------------------------------
def test_material_input_from_the_loading_code_of_the_state_register():
    ts = np.arange(0, 60_000, 10_000)
    state = np.array([1, 2, 3, 1, 2, 3])  # loading is code 1
    b = from_samples((0, H), H, CODES, 90_000, material_input=(ts, state), material_on=(1.0,))
    assert b.mi_ms.tolist() == [20_000.0] and b.mi_runs.tolist() == [2.0]
    # the old rule (> 0.5) would have counted processing and unloading as input too
    assert from_samples((0, H), H, CODES, 90_000, material_input=(ts, state), material_on=(1.0, 2.0, 3.0)).mi_ms[0] > 20_000
    c = cycles(ts, state, (0, H), 90_000, on_values=(1.0,))
    assert c.input_ms.tolist() == [10_000.0]


# -- 1 and 2: data gaps and coverage, through the store -------------------------------------------


LINE = [MachineRef("acme", "plant-1", "line-a", f"press-{i}") for i in (1, 2)]
FIRST, ROLLOUT = date(2026, 3, 2), date(2026, 3, 16)
REPORT_POLICY = Policy(default_ideal_cycle_s=20.0, holidays=None,
                       shifts=[ShiftDef(name="day", start="08:00", end="17:00", days=["mon", "tue", "wed", "thu", "fri"])])


def _cut(columns: dict, a_ms: int, z_ms: int) -> dict:
    """The machine sent nothing in [a, z): gateway down."""
    out = {}
    for tag, (ts, v) in columns.items():
        keep = (ts < a_ms) | (ts >= z_ms)
        out[tag] = (ts[keep], v[keep])
    return out


@pytest.fixture(scope="module")
def gap_line(tmp_path_factory):
    columns, _ = generate(LINE, FIRST, 28, LineSpec(process_s=40.0), seed=11)
    tmp = tmp_path_factory.mktemp("gaps")
    full, cut = SqliteStore(tmp / "full.db"), SqliteStore(tmp / "cut.db")
    day = ROLLOUT + timedelta(days=2)  # a Wednesday in the post window
    gap = (local_midnight_ms(day, REPORT_POLICY) + 10 * H, local_midnight_ms(day, REPORT_POLICY) + 16 * H)
    for m, cols in columns.items():
        full.write_columns(m, cols)
        cut.write_columns(m, _cut(cols, *gap) if m == LINE[1] else cols)
    kw = dict(commissioning_days=0, days=14, replicates=300)
    yield (before_after_report(full, LINE, REPORT_POLICY, ROLLOUT, **kw),
           before_after_report(cut, LINE, REPORT_POLICY, ROLLOUT, **kw), gap, cut)
    full.close()
    cut.close()


def test_complete_data_reports_full_coverage(gap_line):
    full, _, _, _ = gap_line
    assert full["coverage"] == {"before": 1.0, "after": 1.0}
    assert all(r["coverage"] == {"before": 1.0, "after": 1.0} for r in full["machines"])
    assert not [w for w in full["warnings"] if "coverage" in w]


def test_parts_made_in_a_gap_are_not_credited_to_the_hour_after_it(gap_line, tmp_path):
    full, cut, (a, z), store = gap_line
    m = LINE[1]
    b = machine_buckets(store, m, REPORT_POLICY, a - 2 * H, z + 2 * H)
    per_hour = b.good[b.good > 0]
    # the hour data came back holds about an hour's output, not six hours' worth
    assert b.good.max() <= 1.5 * np.median(per_hour)
    assert b.gap_good.sum() > 3 * np.median(per_hour) and len(b.gaps) >= 1
    g = next(x for x in b.gaps if x["tag"] == "good")
    assert g["from_ms"] < a + 120_000 and g["to_ms"] >= z
    # the report counts them apart, flags machine and hours, and the rates stay where they were
    assert cut["parts_across_gaps"]["after"]["good"] == pytest.approx(b.gap_good.sum())
    assert any(x["machine"] == "press-2" and x["hours"] >= 6 for x in cut["parts_across_gaps"]["gaps"])
    assert any("press-2" in w and "data gap" in w for w in cut["warnings"])
    rate = lambda r: {c["key"]: c for c in r["kpis"]}["output_per_hour"]["change_pct"]  # noqa: E731
    assert rate(cut) == pytest.approx(rate(full), abs=0.5)


def test_one_machines_outage_is_warned_with_its_own_coverage(gap_line):
    _, cut, _, _ = gap_line
    row = next(r for r in cut["machines"] if r["machine"] == "press-2")
    # 6 of 90 planned hours lost after the rollout (its neighbour's data keeps the line near 97%)
    assert row["coverage"]["before"] == 1.0 and row["coverage"]["after"] == pytest.approx(1 - 6 / 90, abs=0.01)
    assert cut["coverage"]["after"] > 0.95  # the line's figure alone would not have said it
    assert any("press-2" in w and "coverage" in w and "points" in w for w in cut["warnings"])


def test_raw_and_store_paths_agree_on_parts_across_a_gap(gap_line):
    _, _, (a, z), store = gap_line
    m = LINE[1]
    lo, hi = a - 2 * H, z + 2 * H
    pull = lambda tag: tuple(np.array(x) for x in zip(*store.history(m, tag, lo - 3 * H, hi, 0)))  # noqa: E731
    raw = from_samples((lo, hi), H, CODES, 90_000, state=pull("state"), good=pull("good_count"),
                       max_rate_per_s=1 / 20)
    fast = machine_buckets(store, m, REPORT_POLICY, lo, hi)
    assert raw.good.tolist() == fast.good.tolist()
    assert raw.gap_good.tolist() == fast.gap_good.tolist()


def test_complete_data_read_at_unaligned_times_is_fully_covered(tmp_path):
    """A gateway's heartbeat does not fall on the hour: holds cross every hour edge, by varying amounts.
    Capping each hour at 60 minutes lost what crossed (complete data read 99.7%)."""
    from analytics.report import period_report
    from tsstore import Point

    rng = np.random.default_rng(5)
    m = LINE[0]
    policy = Policy(holidays=None)
    t0 = local_midnight_ms(FIRST, policy)
    ts = t0 - 60_000 + np.arange(3 * 1440 + 2) * 60_000 + rng.integers(0, 30_000, 3 * 1440 + 2)
    store = SqliteStore(tmp_path / "s.db")
    store.write([Point(m, int(t), {"state": 2, "good_count": k}) for k, t in enumerate(ts.tolist())])
    r = period_report(store, [m], policy, FIRST, FIRST + timedelta(days=2))
    assert r["kpis"]["coverage"] == 1.0
    assert [row["kpis"]["coverage"] for row in r["rows"]] == [1.0, 1.0, 1.0]  # the hold across midnight is split
    store.close()


# -- 4. material input time per load, beside per part ---------------------------------------------
def test_material_input_per_cycle_is_not_moved_by_a_change_in_parts_per_load():
    from analytics.buckets import Buckets

    b = Buckets.empty(0, 2 * H, H, CODES)
    b.state_ms[2][:] = H
    b.mi_runs[:] = [100, 100]  # 100 loads an hour in both
    b.mi_ms[:] = [100 * 10_000, 100 * 8_000]  # loading 10 s, then 8 s: a 20% shorter load
    b.good[:] = [200, 300]  # but each load now feeds 3 parts instead of 2
    v = kpi.values(kpi.totals(b, np.array([0, 1]), 2, Policy(), 12.0))
    per_cycle, per_part = v["material_input_per_cycle_s"], v["material_input_s"]
    assert per_cycle.tolist() == [10.0, 8.0]  # the load itself: -20%
    assert (per_part[1] / per_part[0] - 1) * 100 == pytest.approx(-46.7, abs=0.1)  # per part also counts the batch


def test_the_report_says_which_material_input_figure_the_headline_uses(gap_line):
    full, _, _, _ = gap_line
    keys = {c["key"]: c for c in full["kpis"]}
    assert keys["material_input_s"]["headline"] and not keys["material_input_per_cycle_s"]["headline"]
    assert full["material_input"]["headline"] == "material_input_s"
    assert full["material_input"]["per_cycle"] == "material_input_per_cycle_s"


# -- 5. the store path agrees with the raw path for a state-code material input --------------------
def test_store_and_raw_paths_agree_on_material_input_from_a_state_code(tmp_path):
    from tsstore import Point

    m = LINE[0]
    policy = Policy(holidays=None, tags={"material_input": "state", "material_input_on": [1.0]})
    t0 = local_midnight_ms(FIRST, policy)
    rng = np.random.default_rng(3)
    ts = t0 + np.cumsum(rng.integers(5_000, 20_000, 601))
    codes = np.append(np.tile([0, 1, 2, 3], 150), 0)  # idle, loading, processing, unloading; idle at both ends
    store = SqliteStore(tmp_path / "mi.db")
    store.write([Point(m, int(t), {"state": int(c)}) for t, c in zip(ts.tolist(), codes.tolist())])
    fast = machine_buckets(store, m, policy, t0, t0 + 3 * H)
    raw = from_samples((t0, t0 + 3 * H), H, CODES, int(policy.stale_s * 1000), material_input=(ts, codes),
                       material_on=(1.0,))
    assert fast.mi_runs.tolist() == raw.mi_runs.tolist() and fast.mi_runs.sum() > 100
    assert fast.mi_ms.sum() == raw.mi_ms.sum()
    store.close()


def test_the_html_report_shows_each_machines_coverage_and_the_gap_warning(gap_line):
    from analytics.render import render

    _, cut, _, _ = gap_line
    page = render(cut, "html", "en").decode()
    row = page[page.index("<td>press-2</td>"):].split("</tr>")[0]
    assert "100.00% → 93." in row  # 6 of 90 planned hours lost after the rollout
    assert "data gap" in page and "Material input time per load" in page


def test_store_path_reads_a_restart_near_the_top_as_a_reset_and_a_step_back_as_a_correction(tmp_path):
    from tsstore import Point

    m = LINE[0]
    policy = Policy(holidays=None, default_ideal_cycle_s=24.0)
    t0 = local_midnight_ms(FIRST, policy)
    good = [65290, 65300, 65317, 0, 2, 4, 6, 20, 19, 22, 25]  # PLC restart after 65317; 20 -> 19 is a correction
    store = SqliteStore(tmp_path / "c.db")
    store.write([Point(m, t0 + 30_000 + k * 60_000, {"state": 2, "good_count": v}) for k, v in enumerate(good)])
    b = machine_buckets(store, m, policy, t0, t0 + H)
    assert b.good.tolist() == [(65317 - 65290) + 20 + (25 - 20)]  # not 219 parts more, nor 19 again
    assert [c["kind"] for c in b.corrections] == ["reset", "step_back"]
    store.close()


def test_a_closed_sunday_is_not_a_zero_day_in_the_before_after_comparison(tmp_path):
    """The gateway stays on over the weekend and the machine reads idle: without weekdays every
    Saturday and Sunday is planned time with no output, and the interval widens several times."""
    columns, _ = generate(LINE, FIRST, 28, LineSpec(process_s=40.0), seed=12)
    store = SqliteStore(tmp_path / "w.db")
    zone = REPORT_POLICY.zone()
    for m, cols in columns.items():
        ts, v = cols["state"]
        weekend = np.array([datetime.fromtimestamp(t / 1000, zone).weekday() >= 5 for t in ts.tolist()])
        store.write_columns(m, {**cols, "state": (ts, np.where(weekend, 0.0, v))})  # idle, not "not scheduled"

    def width(policy: Policy) -> tuple[float, int]:
        r = before_after_report(store, LINE, policy, ROLLOUT, commissioning_days=0, days=14, replicates=400)
        k = {c["key"]: c for c in r["kpis"]}["output_per_hour"]
        return k["ci95_change_pct"][1] - k["ci95_change_pct"][0], k["n_before"]

    every_day = Policy(default_ideal_cycle_s=20.0, holidays=None, shifts=[ShiftDef(name="day", start="08:00", end="17:00")])
    weekdays, n = width(REPORT_POLICY)
    assert n == 10  # two weeks of Monday to Friday
    assert width(every_day)[0] > 2 * weekdays
    store.close()


# -- 3. the live dashboard follows the same calendar ---------------------------------------------
def test_live_shift_and_planned_time_skip_public_holidays_and_closure_days(tmp_path):
    from analytics import live as ld
    from api.live import LineModel, build_snapshot

    day = ld.ShiftSpec("day", 8 * 60, 17 * 60, "01234")
    seoul = "Asia/Seoul"
    kst = ZoneInfo(seoul)
    new_year = int(datetime(2026, 1, 1, 10, tzinfo=kst).timestamp() * 1000)  # a Thursday, 신정
    closed = ld.closed_days(Policy())
    at8 = lambda d: int(datetime(d.year, d.month, d.day, 8, tzinfo=kst).timestamp() * 1000)  # noqa: E731
    assert ld.current_shift([day], seoul, new_year).start_ms == at8(date(2026, 1, 1))  # without the calendar
    assert ld.current_shift([day], seoul, new_year, closed).start_ms == at8(date(2025, 12, 31))  # the last one, ended
    assert ld.planned_ms([day], seoul, new_year - 2 * H, new_year, closed) == 0
    assert ld.planned_ms([day], seoul, new_year - 2 * H, new_year) == 2 * H  # without the calendar: a working day
    own = ld.closed_days(Policy(holidays=None, closed_days=[date(2026, 1, 2)]))
    friday = int(datetime(2026, 1, 2, 10, tzinfo=kst).timestamp() * 1000)
    assert ld.planned_ms([day], seoul, friday - 2 * H, friday, own) == 0
    # the snapshot: no count target on a holiday, as the reports plan no time for it
    model = LineModel("acme", "s", "l", "Line", seoul, [day], [("m1", "M1", 10.0)])
    snap = build_snapshot(model, SqliteStore(tmp_path / "s.db"), [], new_year, Policy(ideal_cycle_s={"m1": 10.0}))
    assert snap["machines"][0]["target_today"] == 0
    workday = build_snapshot(model, SqliteStore(tmp_path / "s.db"), [], new_year, Policy(ideal_cycle_s={"m1": 10.0}, holidays=None))
    assert workday["machines"][0]["target_today"] == 2 * 3600 // 10

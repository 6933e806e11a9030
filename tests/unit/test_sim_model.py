"""The machine timeline: determinism, PLC register behaviour, the calendar, the fault model
and the rollout's effect sizes over long simulated spans."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone

import numpy as np
import pytest

from plant.states import MachineState
from registermap import ByteOrder, decode, encode
from simulators.backfill import HEARTBEAT_S, Sampler, day_ranges, truth_only
from simulators.calendar import Break, CalendarSettings, Shift, day_plan
from simulators.groundtruth import load_truth_arrays
from simulators.kinds import KINDS, PRESS_TAGS, default_register_map
from simulators.scenario import load_scenario, resolve_scenario_path
from simulators.timeline import MachineSpec, MachineTimeline

S = MachineState
KST = timezone(timedelta(hours=9))
ORIGIN = datetime(2026, 1, 5, tzinfo=KST).timestamp()  # a Monday


def spec(**kw) -> MachineSpec:
    kind = KINDS[kw.pop("kind", "press")]
    params = kw.pop("params", kind.params)
    base = dict(name="m", kind=kind, before=params, after=params, calendar=CalendarSettings(), seed=11,
                origin_s=ORIGIN)
    base.update(kw)
    return MachineSpec(**base)


def day_of(tl: MachineTimeline, n: int):
    return tl.day(tl.origin_day + n)


def test_same_seed_same_history_and_days_do_not_depend_on_drawing_order():
    a, b = MachineTimeline(spec()), MachineTimeline(spec())
    late = day_of(a, 9)  # drawn first, alone
    for n in range(10):
        day_of(b, n)
    other = day_of(b, 9)
    for field in ("seg_start", "seg_state", "cyc_end", "cyc_good", "cyc_load_s"):
        assert np.array_equal(getattr(late, field), getattr(other, field)), field
    ts = np.arange(late.t0, late.t1, 7.0)
    va, vb = a.values_at(ts), b.values_at(ts[::-1])
    for name in va:
        assert np.array_equal(va[name], vb[name][::-1]), name
    assert len(np.unique(va["state"])) > 3  # not trivially equal: the machine ran


def test_different_seeds_give_different_histories():
    a, b = day_of(MachineTimeline(spec(seed=1)), 1), day_of(MachineTimeline(spec(seed=2)), 1)
    assert not np.array_equal(a.cyc_end[:50], b.cyc_end[:50])


def test_uint16_good_counter_wraps_and_equals_parts_made_modulo_65536():
    tl = MachineTimeline(spec(initial_good_count=65_000))
    ts = np.arange(ORIGIN, ORIGIN + 7 * 86400, 30.0)
    v = tl.values_at(ts)
    good_abs, _ = tl.counts_abs(ts)
    assert np.array_equal(v["good_count"], (65_000 + good_abs) % 65536)
    steps = np.diff(v["good_count"])
    assert (steps < 0).sum() == 1, "exactly one wrap in a week from 65000"
    wrap = int(np.nonzero(steps < 0)[0][0])
    assert v["good_count"][wrap] > 65_400 and v["good_count"][wrap + 1] < 100
    assert v["good_count"].max() <= 65535


def test_plc_restart_resets_part_counters_but_not_the_energy_meter():
    restart = datetime(2026, 1, 7, 11, 0, tzinfo=KST).timestamp()
    tl = MachineTimeline(spec(restarts_s=(restart,), initial_good_count=500))
    before = tl.values_at(restart - 0.001)
    after = tl.values_at(restart + 0.001)
    later = tl.values_at(restart + 3600)
    assert before["good_count"][0] > 500
    assert after["good_count"][0] == 0 and after["scrap_count"][0] == 0
    good_abs, _ = tl.counts_abs(np.array([restart, restart + 3600]))
    assert later["good_count"][0] == good_abs[1] - good_abs[0] > 0
    assert after["energy_wh"][0] >= before["energy_wh"][0]  # a separate meter keeps counting


def test_energy_meter_is_a_monotonic_uint32_in_wh_that_stands_still_when_not_scheduled():
    tl = MachineTimeline(spec())
    ts = np.arange(ORIGIN, ORIGIN + 3 * 86400, 10.0)
    v = tl.values_at(ts)
    e = v["energy_wh"]
    assert e.dtype.kind == "i" and e.min() >= 0 and e.max() < 2**32
    assert (np.diff(e) >= 0).all()
    off = v["state"][:-1] == S.NOT_SCHEDULED
    assert (np.diff(e)[off & (v["state"][1:] == S.NOT_SCHEDULED)] == 0).all()
    tag = next(t for t in KINDS["press"].tags if t.name == "energy_wh")
    assert tag.type.value == "uint32" and decode(tag, encode(tag, int(e[-1]))) == e[-1]


def test_calendar_weekends_nights_holidays_are_not_scheduled_breaks_are_planned_stops():
    holiday = date(2026, 1, 7)
    tl = MachineTimeline(spec(calendar=CalendarSettings(holidays=[holiday])))
    at = lambda d, h, m=0: datetime.combine(d, time(h, m), tzinfo=KST).timestamp()  # noqa: E731
    monday, saturday = date(2026, 1, 5), date(2026, 1, 10)
    state = lambda t: int(tl.values_at(t)["state"][0])  # noqa: E731
    assert state(at(monday, 3)) == S.NOT_SCHEDULED  # night
    assert state(at(saturday, 11)) == S.NOT_SCHEDULED  # weekend
    assert state(at(holiday, 11)) == S.NOT_SCHEDULED  # holiday
    assert state(at(monday, 12, 30)) == S.PLANNED_STOP  # lunch break
    assert state(at(monday, 17, 20)) == S.PLANNED_STOP  # cleaning at shift end
    busy = tl.values_at(np.arange(at(monday, 8, 30), at(monday, 10, 30), 5.0))["state"]
    assert {S.LOADING, S.PROCESSING, S.UNLOADING} <= set(busy.tolist())


def test_cycles_never_straddle_a_break_or_the_shift_end():
    tl = MachineTimeline(spec())
    plan = day_plan(tl.spec.calendar, date(2026, 1, 6))
    d = day_of(tl, 1)
    windows = [(d.t0 + a, d.t0 + b) for a, b in plan.production]
    inside = [any(a <= s and e <= b for a, b in windows) for s, e in zip(d.cyc_start, d.cyc_end)]
    assert all(inside) and len(inside) > 500
    assert abs(d.production_s - sum(b - a for a, b in windows)) < 1e-6


def test_scheduled_states_fill_exactly_the_production_windows():
    """Stops and gaps running past a window's end are cut there: outside the windows the
    machine is only on a planned stop or not scheduled, inside it never is."""
    tl = MachineTimeline(spec(params=replace(KINDS["press"].params, mtbf_h=0.5, micro_stop_rate=0.2)))
    for n in range(14):
        d = day_of(tl, n)
        durations = np.diff(np.append(d.seg_start, d.t1))
        scheduled = ~np.isin(d.seg_state, (S.PLANNED_STOP, S.NOT_SCHEDULED))
        assert durations[scheduled].sum() == pytest.approx(d.production_s, abs=1e-6), n


def test_overnight_shift_and_its_cleaning_land_on_the_next_day():
    cal = CalendarSettings(shifts=[Shift(start=time(22), end=time(6), days=["mon"])],
                           breaks=[Break(start=time(2), minutes=30)],
                           cleaning_minutes=15)
    monday, tuesday = day_plan(cal, date(2026, 1, 5)), day_plan(cal, date(2026, 1, 6))
    assert monday.production == ((22 * 3600, 86400),)
    assert tuesday.production == ((0, 2 * 3600), (2.5 * 3600, 6 * 3600 - 900))
    assert tuesday.planned == ((2 * 3600, 2.5 * 3600), (6 * 3600 - 900, 6 * 3600))


def test_material_input_coil_is_on_exactly_while_loading_and_per_batch_for_injection():
    tl = MachineTimeline(spec(kind="injection"))
    d = day_of(tl, 1)
    loads = d.cyc_load_s > 0
    assert 0 < loads.sum() < loads.size / 50  # a hopper refill every ~150 shots
    ts = np.arange(d.t0, d.t1, 3.0)
    v = tl.values_at(ts)
    assert np.array_equal(v["material_input"], v["state"] == S.LOADING)


def test_fault_model_realises_the_configured_mtbf_and_mttr():
    kind = KINDS["press"]
    params = replace(kind.params, mtbf_h=2.0, mttr_min=10.0)
    tl = MachineTimeline(spec(params=params))
    faults, run_h, repairs = 0, 0.0, []
    for n in range(140):
        d = day_of(tl, n)
        f = d.cyc_stop_state == S.FAULT
        faults += int(f.sum())
        repairs.extend(d.cyc_stop_s[f].tolist())
        run_h += d.cyc_process_s.sum() / 3600
    assert faults > 200
    assert run_h / faults == pytest.approx(2.0, rel=0.15)
    # repairs cut by the window end are shorter, so the mean is a little below the MTTR
    assert np.mean(repairs) / 60 == pytest.approx(10.0, rel=0.2)


def test_micro_stops_are_under_two_minutes_and_changeovers_follow_each_lot():
    tl = MachineTimeline(spec())
    stops = np.concatenate([day_of(tl, n).cyc_stop_s[day_of(tl, n).cyc_stop_state == S.MICRO_STOP] for n in range(20)])
    assert stops.size > 50 and stops.max() < 120
    d = day_of(tl, 2)
    co = np.nonzero(d.cyc_stop_state == S.CHANGEOVER)[0]
    lot = KINDS["press"].params.lot_size
    assert co.size >= 1 and (np.diff(co) % lot == 0).all()


def test_float_word_order_is_configurable_per_machine():
    abcd = {t.name: t for t in default_register_map("press")}
    cdab = {t.name: t for t in default_register_map("press", ByteOrder.CDAB)}
    assert cdab["oil_temp"].order is ByteOrder.CDAB and cdab["state"].order is ByteOrder.ABCD
    v = 41.25
    assert encode(cdab["oil_temp"], v) == encode(abcd["oil_temp"], v)[::-1]
    assert decode(cdab["oil_temp"], encode(cdab["oil_temp"], v)) == v
    assert all(abcd[t.name] == t for t in PRESS_TAGS)  # the skeleton's map is a prefix of the press's


def test_analog_values_are_noisy_drift_and_follow_the_machine():
    tl = MachineTimeline(spec())
    d = day_of(tl, 1)
    ts = np.arange(d.t0, d.t1, 1.0)
    v = tl.values_at(ts)
    press = KINDS["press"]
    oil = next(a for a in press.analogs if a.name == "oil_temp")
    work = v["state"] == S.PROCESSING
    # noise: second-to-second differences while not scheduled are pure noise (+ tiny drift)
    off = np.nonzero((v["state"][:-1] == S.NOT_SCHEDULED) & (v["state"][1:] == S.NOT_SCHEDULED))[0]
    assert np.std(np.diff(v["oil_temp"])[off]) == pytest.approx(np.sqrt(2) * oil.noise_sd, rel=0.1)
    # the oil warms up while the press works
    assert v["oil_temp"][work].mean() > v["oil_temp"][v["state"] == S.NOT_SCHEDULED].mean() + 3
    assert v["hydraulic_pressure"][work].mean() > 150 > v["hydraulic_pressure"][~work].mean()
    assert (v["press_force"][~work] == 0).all() and abs(v["press_force"][work].mean() - 800) < 20
    # drift over weeks: the daily means move
    means = [tl.values_at(np.arange(day_of(tl, n).t0, day_of(tl, n).t0 + 6 * 3600, 60.0))["oil_temp"].mean()
             for n in range(5, 40, 7)]  # Saturdays, not scheduled: no machine heat
    assert np.ptp(means) > 0.2


def _phase_totals(scenario_name: str, seeds: int) -> dict[str, dict[str, float]]:
    sc = load_scenario(resolve_scenario_path(scenario_name))
    tot: dict[str, dict[str, float]] = {}
    for k in range(seeds):
        for m in sc.model_copy(update={"seed": sc.seed + k}).machines():
            tl = MachineTimeline(m.spec)
            for n in range(sc.days):
                d = day_of(tl, n)
                t = tot.setdefault("after" if d.after_rollout else "before", dict.fromkeys(
                    ("good", "planned_s", "load_s", "loads", "cycles", "scrap"), 0.0))
                t["good"] += d.good
                t["scrap"] += d.scrap
                t["cycles"] += d.cyc_good.size
                t["planned_s"] += d.production_s
                t["load_s"] += d.cyc_load_s.sum()
                t["loads"] += (d.cyc_load_s > 0).sum()
    return tot


def _pct(tot, f) -> float:
    return (f(tot["after"]) / f(tot["before"]) - 1) * 100


def test_press_line_rollout_cuts_material_input_75pct_and_raises_efficiency_about_11pct():
    tot = _phase_totals("autoparts_press_line", seeds=3)
    assert _pct(tot, lambda t: t["load_s"] / t["loads"]) == pytest.approx(-75, abs=1)
    assert _pct(tot, lambda t: t["good"] / t["planned_s"]) == pytest.approx(11, abs=1.5)


def test_mask_pack_line_rollout_cuts_scrap_about_40pct():
    tot = _phase_totals("maskpack_filling_line", seeds=2)
    # the manual packing station keeps its way of working and dilutes the line's figure
    assert -45 < _pct(tot, lambda t: t["scrap"] / t["cycles"]) < -25
    assert _pct(tot, lambda t: t["good"] / t["planned_s"]) > 2


def test_placebo_line_changes_nothing():
    tot = _phase_totals("placebo_machining_line", seeds=3)
    assert abs(_pct(tot, lambda t: t["good"] / t["planned_s"])) < 2.5
    assert abs(_pct(tot, lambda t: t["load_s"] / t["loads"])) < 3


def test_backfill_samples_reproduce_every_discrete_register_at_every_second():
    """Report-on-change loses nothing: holding each sample until the next gives the value of
    every second, and every tag is written at least once a minute."""
    sc = load_scenario(resolve_scenario_path("autoparts_press_line"))
    m = sc.machines()[1]  # press-2: has a PLC restart
    tl = MachineTimeline(m.spec)
    sampler = Sampler(m, tl)
    restart_day = tl.day_index(m.spec.restarts_s[0])
    lo, hi = tl.day_start(restart_day) + 8 * 3600, tl.day_start(restart_day) + 16 * 3600
    sampler.sample(lo - 600, lo)  # a previous scan, as a day-by-day backfill has
    cols, _ = sampler.sample(lo, hi)
    seconds = np.arange(lo, hi, 1.0)
    truth = tl.values_at(seconds)
    for name in ("state", "good_count", "scrap_count", "material_input", "press_force"):
        ts, vals = cols[name]
        assert (np.diff(np.concatenate(([lo * 1000], ts, [hi * 1000]))) <= HEARTBEAT_S * 1000).all(), name
        idx = np.searchsorted(ts, seconds * 1000, side="right") - 1
        assert (idx >= 0).all()
        assert np.array_equal(vals[idx], truth[name].astype(float)), name
    # analog values: within the deadband of the truth whenever the machine state is steady
    a = next(x for x in m.spec.kind.analogs if x.name == "oil_temp")
    ts, vals = cols["oil_temp"]
    idx = np.searchsorted(ts, seconds * 1000, side="right") - 1
    assert np.percentile(np.abs(vals[idx] - truth["oil_temp"]), 95) < a.deadband + 4 * a.noise_sd


def test_ground_truth_files_match_the_timeline(tmp_path):
    sc = load_scenario(resolve_scenario_path("autoparts_press_line"))
    t0 = sc.local_midnight(date(2026, 2, 3))
    path = truth_only(sc, t0, t0 + 2 * 86400, tmp_path)
    import json

    doc = json.loads(path.read_text())
    assert doc["schema"] == 1 and doc["state_codes"]["6"] == "MICRO_STOP"
    for entry, m in zip(doc["machines"], sc.machines()):
        arrays = load_truth_arrays(tmp_path / entry["file"])
        tl = MachineTimeline(m.spec)
        rng = np.random.default_rng(0)
        ts = np.sort(rng.uniform(t0, t0 + 2 * 86400, 2000))
        i = np.searchsorted(arrays["state_start_s"], ts, side="right") - 1
        v = tl.values_at(ts)
        assert np.array_equal(arrays["state_code"][i], v["state"])
        # counters from the truth: initial + good parts (or since the last restart), mod 2^16
        good_abs = entry["good_before"] + np.searchsorted(arrays["cycle_end_s"][arrays["good"].astype(bool)], ts,
                                                          side="right")
        restarts = np.array(entry["restarts_s"])
        k = np.searchsorted(restarts, ts, side="right") - 1 if restarts.size else np.full(ts.size, -1)
        base = np.where(k >= 0, tl.counts_abs(restarts)[0][np.maximum(k, 0)] if restarts.size else 0,
                        -entry["initial_good_count"])
        assert np.array_equal((good_abs - base) % 65536, v["good_count"]), entry["machine"]
        phases = entry["phases"]["before"]
        assert phases["cycles"] == arrays["cycle_end_s"].size
        assert phases["planned_production_h"] == pytest.approx(2 * (9 - 80 / 60 - 0.25))


def test_day_ranges_cover_the_range_exactly():
    tl = MachineTimeline(spec())
    t0, t1 = ORIGIN + 3600.5, ORIGIN + 3 * 86400 + 10
    parts = list(day_ranges(tl, t0, t1))
    assert parts[0][1] == t0 and parts[-1][2] == t1
    assert all(a[2] == b[1] for a, b in zip(parts, parts[1:]))


def test_the_default_policy_classifies_every_state_code_under_its_name():
    """One list of machine states (plant.states): the default policy names each code as the PLCs do."""
    from analytics.policy import DEFAULT_STATES

    assert [(d.code, d.name) for d in DEFAULT_STATES] == [(int(s), s.name.lower()) for s in MachineState]
    assert [d.code for d in DEFAULT_STATES if d.failure] == [MachineState.FAULT]

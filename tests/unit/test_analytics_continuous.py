"""The rollup maintainer: a continuous aggregate that keeps reports from starting cold."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pytest

from analytics.continuous import HOUR_MS, RollupMaintainer
from analytics.policy import Policy
from analytics.rollup import RollupCache, machine_buckets
from analytics.settings import AnalyticsSettings
from analytics.synthetic import LineSpec, generate
from plant import MachineRef
from plant.states import MachineState as S
from tsstore import Point, StoreUnavailable
from tsstore.sqlite import SqliteStore

MACHINES = [MachineRef("acme", "plant-1", "line-a", f"press-{i}") for i in (1, 2)]
FIRST = date(2026, 3, 2)  # a Monday
DAYS = 4
SETTINGS = AnalyticsSettings(default=Policy(default_ideal_cycle_s=20.0))
START_MS = int(datetime(2026, 3, 1, 15, tzinfo=timezone.utc).timestamp() * 1000)  # 00:00 in Seoul
END_MS = START_MS + DAYS * 86_400_000
NOW_MS = END_MS + 3 * HOUR_MS  # every hour of the data has settled


def _same(a, b) -> None:
    for code in a.state_ms:
        np.testing.assert_array_equal(a.state_ms[code], b.state_ms[code])
        np.testing.assert_array_equal(a.state_runs[code], b.state_runs[code])
    for name in ("good", "scrap", "mi_ms", "mi_runs", "energy_wh"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.fixture()
def store(tmp_path):
    columns, _ = generate(MACHINES, FIRST, DAYS, LineSpec(process_s=40.0), seed=3)
    s = SqliteStore(tmp_path / "store.db")
    for m, cols in columns.items():
        s.write_columns(m, cols)
    yield s
    s.close()


@pytest.fixture()
def cache(tmp_path):
    c = RollupCache(tmp_path / "rollups.db")
    yield c
    c.close()


def test_first_pass_tallies_history_so_a_report_computes_nothing(store, cache, tmp_path):
    maintainer = RollupMaintainer(store, SETTINGS, cache, horizon_days=10)
    result = maintainer.run_pass(NOW_MS)
    assert result.machines == 2 and not result.failed and result.buckets_computed > 0
    final = (NOW_MS - cache.settle_ms) // HOUR_MS * HOUR_MS
    assert all(cache.covered_until(m, SETTINGS.default) == final for m in MACHINES)

    reader = RollupCache(tmp_path / "rollups.db")  # a report in another process opens the same file
    try:
        for m in MACHINES:
            got = reader.machine_buckets(store, m, SETTINGS.default, START_MS, END_MS, NOW_MS)
            _same(got, machine_buckets(store, m, SETTINGS.default, START_MS, END_MS))
        assert reader.computed == 0 and reader.hits == 2 * DAYS * 24
    finally:
        reader.close()


class _Recording(RollupCache):
    """The real cache, remembering which hours each tally rewrote (per machine, in order)."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.rewritten: dict[MachineRef, list[list[int]]] = {}

    def save_tally(self, machine, policy, tally, until_ms) -> None:
        self.rewritten.setdefault(machine, []).append(sorted(row[2] for row in tally.rows))
        super().save_tally(machine, policy, tally, until_ms)


@pytest.fixture()
def recording(tmp_path):
    c = _Recording(tmp_path / "rollups.db")
    yield c
    c.close()


#: A pass clock at which the newest finished hour is the data's last (every rechecked hour has data).
T0 = END_MS + 2 * HOUR_MS
FINAL = END_MS  # (T0 - settle) on the hour
INTERVAL_MS = 300_000


def _hours(first_ms: int, last_ms: int) -> list[int]:
    return list(range(first_ms, last_ms, HOUR_MS))


def test_a_quick_pass_recomputes_only_the_quick_window_and_a_full_pass_the_day(store, recording):
    maintainer = RollupMaintainer(store, SETTINGS, recording, horizon_days=10)  # defaults: 24 h full, 2 h quick
    catch_up = maintainer.run_pass(T0, full=True)  # the catch-up over the history, forced full as --once is
    assert (catch_up.recheck, catch_up.full_rechecks) == ("full", 2)
    quick = maintainer.run_pass(T0 + INTERVAL_MS, full=False)
    assert quick.recheck == "quick" and quick.full_rechecks == 0
    assert quick.buckets_computed == 2 * 2  # per machine: the two hours before the newest finished one
    full = maintainer.run_pass(T0 + 2 * INTERVAL_MS, full=True)
    assert full.recheck == "full" and full.full_rechecks == 2
    assert full.buckets_computed == 2 * 24
    for m in MACHINES:
        first, quick_hours, full_hours = recording.rewritten[m]
        assert quick_hours == _hours(FINAL - 2 * HOUR_MS, FINAL)
        assert full_hours == _hours(FINAL - 24 * HOUR_MS, FINAL)
        assert first[-1] == FINAL - HOUR_MS and first[0] < FINAL - 24 * HOUR_MS  # the whole history, once


def _hours_rechecked(cache: _Recording, machines) -> dict[MachineRef, int]:
    """How many hours each machine's last tally rewrote: 24 for a full recheck, 2 for a quick one (data every hour)."""
    return {m: len(cache.rewritten[m][-1]) for m in machines}


def test_the_start_up_full_pass_comes_two_intervals_after_the_start_then_each_machine_once_a_period(store, cache,
                                                                                                       caplog):
    maintainer = RollupMaintainer(store, SETTINGS, cache, interval_s=300, horizon_days=10, full_recheck_s=3600)
    caplog.set_level("INFO", logger="analytics.continuous")
    passes = [maintainer.run_pass(T0 + k * INTERVAL_MS) for k in range(30)]  # 2.5 h of passes
    assert [k for k, r in enumerate(passes) if r.recheck == "full"] == [2]  # 10 min after the start, every machine
    # then the two machines take turns: press-1 half a period after the start-up pass, press-2 a period after it
    assert [k for k, r in enumerate(passes) if r.recheck == "mixed"] == [8, 14, 20, 26]
    assert [r.full_rechecks for r in passes if r.recheck != "quick"] == [2, 1, 1, 1, 1]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rollup_pass ")]
    assert lines[0].startswith("rollup_pass machines=2 recheck=quick recheck_hours=2 full_rechecks=0 ")
    assert lines[2].startswith("rollup_pass machines=2 recheck=full recheck_hours=24 full_rechecks=2 ")
    assert lines[8].startswith("rollup_pass machines=2 recheck=mixed recheck_hours=2/24 full_rechecks=1 ")

    # a pass that overran: both machines were due, so it is full; the points it missed are not made up
    late = T0 + 26 * INTERVAL_MS + 3 * 3_600_000 + 60_000
    assert [maintainer.run_pass(late + k * INTERVAL_MS).recheck for k in range(3)] == ["full", "quick", "quick"]
    # back on each machine's own grid: press-1 at 30 min past the start-up pass's minute, press-2 on it
    assert maintainer.run_pass(T0 + 26 * INTERVAL_MS + 3_600_000 * 7 // 2).full_rechecks == 1
    assert maintainer.run_pass(T0 + 26 * INTERVAL_MS + 4 * 3_600_000).full_rechecks == 1

    # forced passes (``--once``): every machine when asked, and the turns start afresh from there
    forced = late + 5 * 3_600_000
    assert (maintainer.run_pass(forced, full=True).recheck, maintainer.last.full_rechecks) == ("full", 2)
    assert maintainer.run_pass(forced + 1_799_000).recheck == "quick"
    assert maintainer.run_pass(forced + 1_800_000).recheck == "mixed"
    assert maintainer.run_pass(forced + 3_599_000).recheck == "quick"
    assert maintainer.run_pass(forced + 3_600_000).recheck == "mixed"
    assert maintainer.run_pass(forced + 3_900_000, full=False).recheck == "quick"  # forced quick: nobody


#: A bigger plant for the rotation: 25 machines, a state change every 10 min for a day and a half.
MANY = [MachineRef("acme", "plant-1", f"line-{i // 5}", f"press-{i % 5}") for i in range(25)]


def _write_hours(store: SqliteStore, machine: MachineRef, first_ms: int, last_ms: int) -> None:
    store.write([Point(machine, t, {"state": S.LOADING if (t // 600_000) % 2 else S.IDLE})
                 for t in range(first_ms, last_ms, 600_000)])


@pytest.fixture()
def many(tmp_path):
    s = SqliteStore(tmp_path / "many.db")
    for m in MANY:  # every hour a pass may recheck has data, up to 6 h past the passes' clock
        _write_hours(s, m, END_MS - 30 * HOUR_MS, END_MS + 6 * HOUR_MS)
    yield s
    s.close()


def test_after_the_start_up_pass_each_pass_rechecks_about_one_machine_in_k_and_each_machine_once_a_period(many,
                                                                                                         recording):
    maintainer = RollupMaintainer(many, SETTINGS, recording, interval_s=300, horizon_days=10, full_recheck_s=3600)
    k = 12  # passes per period
    first = [maintainer.run_pass(T0 + j * INTERVAL_MS) for j in range(3)]
    assert [(r.recheck, r.full_rechecks) for r in first] == [("quick", 0), ("quick", 0), ("full", 25)]
    assert set(_hours_rechecked(recording, MANY).values()) == {24}

    full_at: dict[MachineRef, list[int]] = {m: [] for m in MANY}
    for j in range(3, 3 + 2 * k):  # two periods
        r = maintainer.run_pass(T0 + j * INTERVAL_MS)
        hours = _hours_rechecked(recording, MANY)
        assert set(hours.values()) <= {2, 24}
        fulls = [m for m in MANY if hours[m] == 24]
        assert len(fulls) == r.full_rechecks <= -(-25 // k)  # at most ceil(25 / 12) = 3 a pass
        assert r.recheck == "mixed" and r.full_rechecks >= 2  # 25 over 12 passes: 2 or 3 each
        for m in fulls:
            full_at[m].append(j)
    # each machine exactly once per period, a period apart
    assert all(len(at) == 2 and at[1] - at[0] == k and 3 <= at[0] < 3 + k for at in full_at.values()), full_at


def test_a_machine_added_mid_period_gets_its_full_recheck_within_a_period_without_crowding_a_pass(many, recording):
    maintainer = RollupMaintainer(many, SETTINGS, recording, interval_s=300, horizon_days=10, full_recheck_s=3600)
    k = 12
    for j in range(9):
        maintainer.run_pass(T0 + j * INTERVAL_MS)  # the start-up full pass at j = 2, then turns
    new = MachineRef("acme", "plant-2", "line-new", "press-new")
    _write_hours(many, new, END_MS - 30 * HOUR_MS, END_MS + 6 * HOUR_MS)
    everyone = [*MANY, new]
    full_at: dict[MachineRef, list[int]] = {m: [] for m in everyone}
    for j in range(9, 9 + k):
        r = maintainer.run_pass(T0 + j * INTERVAL_MS)
        assert r.machines == 26
        hours = _hours_rechecked(recording, everyone)
        if j == 9:  # its first tally: its whole history, as for any machine first seen (not its full recheck)
            assert len(recording.rewritten[new]) == 1 and recording.rewritten[new][0][0] < END_MS - 24 * HOUR_MS
        fulls = [m for m in everyone if hours[m] == 24]
        assert len(fulls) == r.full_rechecks <= -(-26 // k) + 1  # one more at most: the newcomer's pass
        for m in fulls:
            full_at[m].append(j)
    assert len(full_at[new]) == 1, full_at[new]
    assert all(len(full_at[m]) == 1 for m in MANY), full_at  # the others keep their turns


def _late_replay(store: SqliteStore, machine: MachineRef, hour_ms: int) -> None:
    """What a gateway's outbox replays after an outage: the machine was running through the whole hour."""
    store.write([Point(machine, hour_ms + i * 10_000, {"state": S.LOADING}) for i in range(360)])


def _cached(store, cache, m: MachineRef, hour: int):
    return cache.machine_buckets(store, m, SETTINGS.default, hour, hour + HOUR_MS, T0)  # a final hour: cached


def test_late_data_one_hour_back_reaches_the_cache_at_the_next_quick_pass(store, cache):
    maintainer = RollupMaintainer(store, SETTINGS, cache, horizon_days=10)
    maintainer.run_pass(T0)
    hour, m = FINAL - HOUR_MS, MACHINES[0]
    stale = _cached(store, cache, m, hour)
    _late_replay(store, m, hour)
    assert _cached(store, cache, m, hour).state_ms[1][0] == stale.state_ms[1][0]  # still the tally from before

    assert maintainer.run_pass(T0 + INTERVAL_MS).recheck == "quick"
    fresh = _cached(store, cache, m, hour)
    _same(fresh, machine_buckets(store, m, SETTINGS.default, hour, hour + HOUR_MS))
    assert fresh.state_ms[1][0] > stale.state_ms[1][0]


def test_late_data_ten_hours_back_shows_after_that_machines_full_recheck_and_not_before(store, cache):
    maintainer = RollupMaintainer(store, SETTINGS, cache, horizon_days=10)
    maintainer.run_pass(T0)
    m = MACHINES[1]  # press-2: its turn comes a period after the start-up full pass, press-1's half a period
    outage, later = FINAL - 10 * HOUR_MS, FINAL - 11 * HOUR_MS
    stale = {h: _cached(store, cache, m, h).state_ms[1][0] for h in (outage, later)}

    _late_replay(store, m, outage)  # replayed in the minutes after the start (a site outage)
    assert maintainer.run_pass(T0 + INTERVAL_MS).recheck == "quick"
    assert _cached(store, cache, m, outage).state_ms[1][0] == stale[outage]  # a quick pass does not reach 10 h back
    assert maintainer.run_pass(T0 + 2 * INTERVAL_MS).recheck == "full"  # the start-up full pass
    fresh = _cached(store, cache, m, outage)
    _same(fresh, machine_buckets(store, m, SETTINGS.default, outage, outage + HOUR_MS))
    assert fresh.state_ms[1][0] > stale[outage]

    _late_replay(store, m, later)  # another replay, into an hour 11 h back, after that pass
    for k in range(3, 14):  # press-1's turn (k = 8) and quick passes: press-2's hour stays as it was
        r = maintainer.run_pass(T0 + k * INTERVAL_MS)
        assert r.recheck == ("mixed" if k == 8 else "quick"), k
        assert _cached(store, cache, m, later).state_ms[1][0] == stale[later], k
    assert maintainer.run_pass(T0 + 14 * INTERVAL_MS).recheck == "mixed"  # press-2's turn
    fresh = _cached(store, cache, m, later)
    _same(fresh, machine_buckets(store, m, SETTINGS.default, later, later + HOUR_MS))
    assert fresh.state_ms[1][0] > stale[later]


def test_history_older_than_the_recheck_window_is_frozen_until_refreshed(store, cache):
    maintainer = RollupMaintainer(store, SETTINGS, cache, recheck_ms=6 * HOUR_MS, horizon_days=10)
    maintainer.run_pass(NOW_MS)
    hour = START_MS + 30 * HOUR_MS
    m = MACHINES[1]
    before = cache.machine_buckets(store, m, SETTINGS.default, hour, hour + HOUR_MS, NOW_MS).state_ms[1][0]
    _late_replay(store, m, hour)
    assert maintainer.run_pass(NOW_MS + 60_000, full=True).buckets_computed == 2 * 6  # even a full pass
    assert cache.machine_buckets(store, m, SETTINGS.default, hour, hour + HOUR_MS, NOW_MS).state_ms[1][0] == before

    assert maintainer.refresh([m], hour, hour + 1, NOW_MS) == 1
    got = cache.machine_buckets(store, m, SETTINGS.default, hour, hour + HOUR_MS, NOW_MS)
    _same(got, machine_buckets(store, m, SETTINGS.default, hour, hour + HOUR_MS))


def test_the_windows_come_from_the_settings_and_a_quick_window_wider_than_the_full_one_is_refused(tmp_path):
    from analytics.command import maintainer_for
    from cli.config import ConfigError, load_config

    path = tmp_path / "plant.yaml"
    path.write_text("analytics:\n  rollup_recheck_hours: 12\n  rollup_quick_recheck_hours: 3\n"
                    "  rollup_full_recheck_s: 1800\n")
    settings = load_config(path).settings.analytics
    cache = RollupCache(tmp_path / "rollups.db")
    try:
        m = maintainer_for(None, settings, cache)  # type: ignore[arg-type]  # no pass runs: no store needed
        assert (m.recheck_ms, m.quick_recheck_ms, m.full_recheck_ms) == (12 * HOUR_MS, 3 * HOUR_MS, 1_800_000)
    finally:
        cache.close()

    path.write_text("analytics:\n  rollup_recheck_hours: 12\n  rollup_quick_recheck_hours: 13\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert (f"{path}:3: analytics.rollup_quick_recheck_hours: must be at most analytics.rollup_recheck_hours (12)"
            in str(err.value))
    path.write_text("analytics:\n  rollup_interval_s: 600\n  rollup_full_recheck_s: 300\n")
    with pytest.raises(ConfigError, match=r"plant\.yaml:3: analytics\.rollup_full_recheck_s: must be at least "
                       r"analytics\.rollup_interval_s \(600\)"):
        load_config(path)
    # left out, the defaults follow what was written: a 1-h day window, a 2-h interval
    path.write_text("analytics:\n  rollup_recheck_hours: 1\n  rollup_interval_s: 7200\n")
    settings = load_config(path).settings.analytics
    assert (settings.rollup_quick_recheck_hours, settings.rollup_full_recheck_s) == (1, 7200)


class _FlakyStore:
    """The real store, except that one machine's state queries fail as an unreachable server would."""

    def __init__(self, store: SqliteStore, bad: MachineRef) -> None:
        self._store, self._bad = store, bad

    def __getattr__(self, name):
        return getattr(self._store, name)

    def state_durations(self, machine, *args, **kwargs):
        if machine == self._bad:
            raise StoreUnavailable("connection refused")
        return self._store.state_durations(machine, *args, **kwargs)


def test_a_failing_machine_is_reported_and_the_others_are_kept_up_to_date(store, cache):
    maintainer = RollupMaintainer(_FlakyStore(store, MACHINES[0]), SETTINGS, cache, horizon_days=10)
    result = maintainer.run_pass(NOW_MS)
    assert result.failed == [MACHINES[0].machine] and result.machines == 2
    assert cache.covered_until(MACHINES[0], SETTINGS.default) is None  # retried from scratch next pass
    assert cache.covered_until(MACHINES[1], SETTINGS.default) is not None

    maintainer.store = store  # the server is back
    assert not maintainer.run_pass(NOW_MS).failed
    assert cache.covered_until(MACHINES[0], SETTINGS.default) is not None


def test_the_maintainer_restarts_after_a_stop_and_a_stopped_pass_ends_early(store, cache):
    """A worker may lead, resign and lead again: the maintainer must run again after stop()."""
    import threading
    import time

    from tests.waiting import wait_until

    maintainer = RollupMaintainer(store, SETTINGS, cache, interval_s=3600, horizon_days=10)
    stop = threading.Event()
    stop.set()
    assert maintainer.run_pass(NOW_MS, stop=stop).machines == 0  # stopped before the first machine
    for _ in range(2):
        # a rotation from two hours ago: both machines long due, yet a start's first pass is quick
        assert maintainer.run_pass(int(time.time() * 1000) - 2 * HOUR_MS, full=True).recheck == "full"
        maintainer.last = None
        maintainer.start()
        wait_until(lambda: maintainer.last is not None, 30, "a pass of the (re)started maintainer")
        maintainer.stop()
        assert (maintainer.last.machines, maintainer.last.recheck) == (len(MACHINES), "quick")


def test_rollups_once_rechecks_the_whole_day_even_when_a_watermark_says_the_history_is_tallied(store, tmp_path):
    """``smartfactory rollups --once`` runs rarely (cron) and remembers nothing between runs: each run is full."""
    import os
    import subprocess
    import sys

    import yaml

    config = tmp_path / "smartfactory.yaml"
    config.write_text(yaml.safe_dump({"store": {"kind": "sqlite", "path": str(store.path)},
                                      "analytics": {"cache_path": "once.rollups.db",
                                                    "default": {"default_ideal_cycle_s": 20.0}}}))
    runs = [subprocess.run([sys.executable, "-m", "cli.main", "rollups", "-c", str(config), "--once"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONUNBUFFERED="1"))
            for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr[-3000:]
    # the second run finds the history tallied: its pass is the full window alone, 24 hours a machine
    assert "rollup_pass machines=2 recheck=full recheck_hours=24 full_rechecks=2 buckets_computed=48 " in runs[1].stderr

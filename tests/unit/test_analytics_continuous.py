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
    assert maintainer.run_pass(T0, full=True).recheck == "full"  # the catch-up over the history
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


def test_the_first_full_recheck_comes_two_intervals_after_the_start_then_once_per_period(store, cache, caplog):
    maintainer = RollupMaintainer(store, SETTINGS, cache, interval_s=300, horizon_days=10, full_recheck_s=3600)
    caplog.set_level("INFO", logger="analytics.continuous")
    kinds = [maintainer.run_pass(T0 + k * INTERVAL_MS).recheck for k in range(30)]  # 2.5 h of passes
    full_at = [k for k, kind in enumerate(kinds) if kind == "full"]
    assert full_at == [2, 14, 26]  # 10 min after the start, then every 12th pass (3600 s / 300 s)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rollup_pass ")]
    assert lines[0].startswith("rollup_pass machines=2 recheck=quick recheck_hours=2 full_rechecks=0 ")
    assert lines[2].startswith("rollup_pass machines=2 recheck=full recheck_hours=24 full_rechecks=2 ")

    # a pass that overran: the next one after the due time is full, the points it missed are not made up
    late = T0 + 26 * INTERVAL_MS + 3 * 3_600_000 + 60_000
    assert [maintainer.run_pass(late + k * INTERVAL_MS).recheck for k in range(3)] == ["full", "quick", "quick"]
    assert maintainer.run_pass(T0 + 26 * INTERVAL_MS + 4 * 3_600_000).recheck == "full"  # back on the grid

    # forced passes (``--once``): full when asked, and the period counts from there
    assert maintainer.run_pass(late + 5 * 3_600_000, full=True).recheck == "full"
    assert maintainer.run_pass(late + 5 * 3_600_000 + 3_599_000).recheck == "quick"
    assert maintainer.run_pass(late + 5 * 3_600_000 + 3_600_000).recheck == "full"


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


def test_late_data_ten_hours_back_waits_for_the_next_full_recheck(store, cache):
    maintainer = RollupMaintainer(store, SETTINGS, cache, horizon_days=10)
    maintainer.run_pass(T0)
    hour, m = FINAL - 10 * HOUR_MS, MACHINES[1]
    stale = _cached(store, cache, m, hour).state_ms[1][0]
    _late_replay(store, m, hour)
    assert maintainer.run_pass(T0 + INTERVAL_MS).recheck == "quick"
    assert _cached(store, cache, m, hour).state_ms[1][0] == stale  # a quick pass does not reach 10 h back

    assert maintainer.run_pass(T0 + 2 * INTERVAL_MS).recheck == "full"  # the schedule's first full recheck
    fresh = _cached(store, cache, m, hour)
    _same(fresh, machine_buckets(store, m, SETTINGS.default, hour, hour + HOUR_MS))
    assert fresh.state_ms[1][0] > stale


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

    from tests.waiting import wait_until

    maintainer = RollupMaintainer(store, SETTINGS, cache, interval_s=3600, horizon_days=10)
    stop = threading.Event()
    stop.set()
    assert maintainer.run_pass(NOW_MS, stop=stop).machines == 0  # stopped before the first machine
    for _ in range(2):
        maintainer.last = None
        maintainer.start()
        wait_until(lambda: maintainer.last is not None, 30, "a pass of the (re)started maintainer")
        maintainer.stop()
        assert maintainer.last.machines == len(MACHINES)


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

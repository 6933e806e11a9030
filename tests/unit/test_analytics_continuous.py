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


def test_a_steady_pass_only_recomputes_the_recheck_window(store, cache):
    maintainer = RollupMaintainer(store, SETTINGS, cache, recheck_ms=6 * HOUR_MS, horizon_days=10)
    maintainer.run_pass(NOW_MS)
    later = maintainer.run_pass(NOW_MS + HOUR_MS)
    # per machine: the 6 hours of the recheck window, which ends with the hour that finished since
    assert later.buckets_computed == 2 * 6


def _late_replay(store: SqliteStore, machine: MachineRef, hour_ms: int) -> None:
    """What a gateway's outbox replays after an outage: the machine was running through the whole hour."""
    store.write([Point(machine, hour_ms + i * 10_000, {"state": S.LOADING}) for i in range(360)])


def test_late_data_inside_the_recheck_window_reaches_the_cache(store, cache):
    maintainer = RollupMaintainer(store, SETTINGS, cache, recheck_ms=6 * HOUR_MS, horizon_days=10)
    maintainer.run_pass(NOW_MS)
    final = (NOW_MS - cache.settle_ms) // HOUR_MS * HOUR_MS
    hour = final - 2 * HOUR_MS
    m = MACHINES[0]
    _late_replay(store, m, hour)
    stale = cache.machine_buckets(store, m, SETTINGS.default, hour, hour + HOUR_MS, NOW_MS)
    assert stale.state_ms[1][0] < 3_000_000  # still the tally from before the replay

    maintainer.run_pass(NOW_MS + 60_000)
    fresh = cache.machine_buckets(store, m, SETTINGS.default, hour, hour + HOUR_MS, NOW_MS)
    _same(fresh, machine_buckets(store, m, SETTINGS.default, hour, hour + HOUR_MS))
    assert fresh.state_ms[1][0] >= 3_590_000


def test_history_older_than_the_recheck_window_is_frozen_until_refreshed(store, cache):
    maintainer = RollupMaintainer(store, SETTINGS, cache, recheck_ms=6 * HOUR_MS, horizon_days=10)
    maintainer.run_pass(NOW_MS)
    hour = START_MS + 30 * HOUR_MS
    m = MACHINES[1]
    before = cache.machine_buckets(store, m, SETTINGS.default, hour, hour + HOUR_MS, NOW_MS).state_ms[1][0]
    _late_replay(store, m, hour)
    maintainer.run_pass(NOW_MS + 60_000)
    assert cache.machine_buckets(store, m, SETTINGS.default, hour, hour + HOUR_MS, NOW_MS).state_ms[1][0] == before

    assert maintainer.refresh([m], hour, hour + 1, NOW_MS) == 1
    got = cache.machine_buckets(store, m, SETTINGS.default, hour, hour + HOUR_MS, NOW_MS)
    _same(got, machine_buckets(store, m, SETTINGS.default, hour, hour + HOUR_MS))


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

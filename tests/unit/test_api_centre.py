"""The centre view's coverage from the rollups: the same figure as from the store, at a fraction of the reads."""

from __future__ import annotations

from analytics.continuous import RollupMaintainer
from analytics.rollup import RollupCache
from analytics.settings import AnalyticsSettings
from api.centre import DAY_MS, machine_status
from plant import MachineRef
from plant.states import MachineState as S
from tsstore import Point
from tsstore.sqlite import SqliteStore

M = MachineRef("acme", "s", "l", "m")
NOW = 1_780_000_000_000 + 1_234_567  # not on an hour


class _Counting:
    """The real store, recording the span of every state_durations call."""

    def __init__(self, store):
        self._store, self.spans = store, []

    def __getattr__(self, name):
        return getattr(self._store, name)

    def state_durations(self, machine, tag, start, end, *args):
        self.spans.append((start, end))
        return self._store.state_durations(machine, tag, start, end, *args)


def test_coverage_from_the_rollups_equals_the_store_and_reads_only_the_edges(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    # a sample a minute for the last 30 h, except a 5 h outage from 20 h to 15 h ago
    store.write([Point(M, NOW - k * 60_000, {"state": S.PROCESSING}) for k in range(1, 30 * 60) if not 15 * 60 <= k < 20 * 60])
    settings = AnalyticsSettings()
    direct = machine_status(store, None, M, settings, NOW)
    assert direct.window_ms >= DAY_MS and abs(direct.known_ms / direct.window_ms - 19 / 24) < 0.01

    cache = RollupCache(tmp_path / "rollups.db")
    RollupMaintainer(store, settings, cache).run_pass(NOW)
    counting = _Counting(store)
    cached = machine_status(counting, cache, M, settings, NOW)
    assert cached == direct
    # from the store: the far part-hour, the hours too recent to be settled, and the outage (hours
    # without data are not kept, so a late replay into them is still seen); no hour with data
    hour = 3_600_000
    outage = (NOW - 20 * hour, NOW - 15 * hour)
    for a, b in counting.spans:
        assert b - a <= hour or a >= NOW - 3 * hour or (outage[0] <= a and b <= outage[1]), (a - NOW, b - NOW)
    cache.close()
    store.close()

"""The same KPIs from InfluxDB (InfluxQL rollups) as from the embedded store, on the same samples."""

from __future__ import annotations

from datetime import date

import pytest

from analytics.policy import Policy
from analytics.report import period_report
from analytics.synthetic import LineSpec, generate
from plant import MachineRef
from tsstore import Point
from tsstore.influx import InfluxStore
from tsstore.sqlite import SqliteStore

pytestmark = pytest.mark.integration

MACHINES = [MachineRef("acme", "plant-1", "line-a", "press-1"), MachineRef("acme", "plant-1", "line-a", "press-2")]
FIRST = date(2026, 3, 2)


def points(columns: dict) -> list[Point]:
    out = []
    for m, cols in columns.items():
        by_ts: dict[int, dict] = {}
        for tag, (ts, vals) in cols.items():
            for t, v in zip(ts.tolist(), vals.tolist()):
                by_ts.setdefault(t, {})[tag] = v
        out += [Point(m, t, v) for t, v in sorted(by_ts.items())]
    return out


def test_day_and_shift_kpis_agree_between_influxdb_and_sqlite(influxd, tmp_path):
    columns, truth = generate(MACHINES, FIRST, 3, LineSpec(process_s=60.0), seed=5)
    pts = points(columns)
    influx = InfluxStore(influxd.url, "analytics")
    sqlite = SqliteStore(tmp_path / "s.db")
    for i in range(0, len(pts), 5000):
        influx.write(pts[i : i + 5000])
    sqlite.write(pts)
    policy = Policy(default_ideal_cycle_s=70.0, shifts=[{"name": "day", "start": "06:00", "end": "18:00"},
                                                        {"name": "night", "start": "18:00", "end": "06:00"}],
                    holidays=None)  # the synthetic line works on 2 March 2026, a Korean substitute holiday
    a = period_report(influx, MACHINES, policy, FIRST, date(2026, 3, 4), by="shift")
    b = period_report(sqlite, MACHINES, policy, FIRST, date(2026, 3, 4), by="shift")
    assert a["rows"] and len(a["rows"]) == len(b["rows"])
    for x, y in zip(a["rows"], b["rows"]):
        assert (x["date"], x["shift"]) == (y["date"], y["shift"])
        for k, v in y["kpis"].items():
            if v is None:
                assert x["kpis"][k] is None, (x["date"], x["shift"], k)
            else:
                assert x["kpis"][k] == pytest.approx(v, rel=1e-9), (x["date"], x["shift"], k)
    good = truth.total("good")
    assert a["time"]["good"] == b["time"]["good"] == good
    influx.close()
    sqlite.close()


def test_rollups_kept_by_the_maintainer_on_influxdb_equal_a_cold_computation(influxd, tmp_path):
    """The continuous aggregate and the centre's coverage over InfluxQL, as production runs them."""
    import numpy as np

    from analytics.continuous import HOUR_MS, RollupMaintainer
    from analytics.rollup import RollupCache, machine_buckets
    from analytics.settings import AnalyticsSettings
    from api.centre import machine_status

    columns, _ = generate(MACHINES, FIRST, 3, LineSpec(process_s=60.0), seed=9)
    influx = InfluxStore(influxd.url, "rollups")
    pts = points(columns)
    for i in range(0, len(pts), 5000):
        influx.write(pts[i : i + 5000])
    settings = AnalyticsSettings(default=Policy(default_ideal_cycle_s=70.0))
    end = max(int(ts[-1]) for cols in columns.values() for ts, _ in cols.values())
    now = end // HOUR_MS * HOUR_MS + 3 * HOUR_MS
    cache = RollupCache(tmp_path / "rollups.db")
    result = RollupMaintainer(influx, settings, cache, horizon_days=30).run_pass(now)
    assert result.machines == 2 and not result.failed and result.buckets_computed > 0
    first = min(int(ts[0]) for cols in columns.values() for ts, _ in cols.values())
    start = first // HOUR_MS * HOUR_MS  # hours without any data are not kept (a late replay may fill them)
    stop = (now - cache.settle_ms) // HOUR_MS * HOUR_MS
    for m in MACHINES:
        assert cache.covered_until(m, settings.default) == stop
        before = cache.computed
        kept = cache.machine_buckets(influx, m, settings.default, start, stop, now)
        assert cache.computed == before  # every hour came from the cache
        cold = machine_buckets(influx, m, settings.default, start, stop)
        for code in cold.state_ms:
            np.testing.assert_array_equal(kept.state_ms[code], cold.state_ms[code])
        for name in ("good", "scrap", "mi_ms", "energy_wh"):
            np.testing.assert_array_equal(getattr(kept, name), getattr(cold, name))
        assert machine_status(influx, cache, m, settings, now) == machine_status(influx, None, m, settings, now)
    cache.close()
    influx.close()

"""Backfill into both real stores (a SQLite file and a real influxd), and the contract of the
stores' bulk path ``write_columns`` on both backends."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from plant import MachineRef
from simulators.backfill import Sampler, backfill, store_writer
from simulators.scenario import load_scenario, resolve_scenario_path
from simulators.timeline import MachineTimeline
from tsstore import LatestValue, Point, StoreRejected
from tsstore.influx import InfluxStore
from tsstore.sqlite import SqliteStore

pytestmark = pytest.mark.integration

M = MachineRef("acme", "plant-1", "line-a", "press-1")
T0 = 1_795_000_020_000


@pytest.fixture(params=["sqlite", "influxdb"])
def store(request, tmp_path) -> Iterator:
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "ts.db")
    else:
        s = InfluxStore(request.getfixturevalue("influxd").url, "simbackfill")
    yield s
    s.close()


def test_write_columns_stores_the_same_rows_as_write(store):
    store.write_columns(M, {"a": (np.array([T0, T0 + 1000]), np.array([1.0, 2.5])),
                            "on": (np.array([T0]), np.array([True]))})
    store.write([Point(M, T0 + 2000, {"a": 3})])
    assert store.history(M, "a", T0, T0 + 5000, 0) == [(T0, 1.0), (T0 + 1000, 2.5), (T0 + 2000, 3.0)]
    assert store.latest(M)["on"] == LatestValue(T0, 1.0)
    assert isinstance(store.latest(M)["on"].value, float)
    assert store.machines() == [M]


def test_write_columns_overwrites_the_same_timestamp_and_drops_non_finite(store):
    store.write_columns(M, {"a": ([T0, T0 + 1000], [1.0, 2.0])})
    store.write_columns(M, {"a": ([T0, T0 + 2000, T0 + 3000], [5.0, math.nan, math.inf])})
    assert store.history(M, "a", T0, T0 + 5000, 0) == [(T0, 5.0), (T0 + 1000, 2.0)]


def test_write_columns_refuses_mismatched_columns(store):
    with pytest.raises(StoreRejected, match="2 timestamps but 1 values"):
        store.write_columns(M, {"a": ([T0, T0 + 1000], [1.0])})


def _backfill_and_compare(store, hours: float, machines: int) -> int:
    sc = load_scenario(resolve_scenario_path("maskpack_filling_line"))
    sims = sc.machines()[:machines]
    t0 = sc.local_midnight(sc.start) + 8 * 86400 + 6 * 3600  # a Tuesday, first shift
    t1 = t0 + hours * 3600
    report = backfill(sc, t0, t1, store_writer(store), machines=sims)
    assert report.values > 0
    checked = 0
    for m in sims:
        expected, _ = Sampler(m, MachineTimeline(m.spec)).sample(t0, t1)
        assert set(store.latest(m.ref)) == {t.name for t in m.tags}
        for tag, (ts, vals) in expected.items():
            got = store.history(m.ref, tag, int(t0 * 1000), int(t1 * 1000), 0)
            assert [p[0] for p in got] == ts.tolist(), tag
            # float32 register values survive as floats exactly
            assert np.array_equal(np.array([p[1] for p in got]), vals), tag
            checked += len(got)
    assert report.values == checked
    return checked


def test_backfill_into_sqlite_is_what_the_sampler_produced(tmp_path):
    store = SqliteStore(tmp_path / "bf.db")
    assert _backfill_and_compare(store, hours=24, machines=3) > 10_000
    store.close()


def test_backfill_into_influxd_is_what_the_sampler_produced(influxd):
    store = InfluxStore(influxd.url, "bf")
    assert _backfill_and_compare(store, hours=2, machines=1) > 1_000
    store.close()


def test_same_seed_same_history_in_the_store(tmp_path):
    sc = load_scenario(resolve_scenario_path("placebo_machining_line"))
    sims = sc.machines()[:2]
    t0 = sc.local_midnight(sc.start) + 7 * 86400
    histories = []
    for run in ("a", "b"):
        store = SqliteStore(tmp_path / f"{run}.db")
        backfill(sc, t0, t0 + 86400, store_writer(store), machines=sims)
        day_ms = (int(t0 * 1000), int(t0 * 1000) + 86_400_000)
        histories.append({(m.ref.machine, t.name): store.history(m.ref, t.name, *day_ms, 0)
                          for m in sims for t in m.tags})
        store.close()
    assert histories[0] == histories[1]
    assert sum(len(v) for v in histories[0].values()) > 10_000
    other = sc.model_copy(update={"seed": sc.seed + 1})
    store = SqliteStore(tmp_path / "c.db")
    backfill(other, t0, t0 + 86400, store_writer(store), machines=other.machines()[:1])
    m = sims[0]
    other_states = store.history(m.ref, "state", int(t0 * 1000), int(t0 * 1000) + 86_400_000, 0)
    assert other_states != histories[0][(m.ref.machine, "state")]
    store.close()

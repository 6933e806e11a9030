"""The rollup cache in PostgreSQL: what one host's maintainer tallies, another host reads without recomputing.

A real PostgreSQL server; the store is the embedded SQLite one filled with synthetic history.
The rows must equal a cold computation from the store and the SQLite cache's, and writing the
same hours again (a refresh, a second writer) must leave one row per hour.
"""

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
from tsstore.sqlite import SqliteStore
from tests.servers import require_psycopg

require_psycopg()

from analytics.rollup_pg import PostgresRollupCache  # noqa: E402

pytestmark = pytest.mark.integration

MACHINES = [MachineRef("acme", "plant-1", "line-a", f"press-{i}") for i in (1, 2)]
FIRST = date(2026, 3, 2)
DAYS = 3
SETTINGS = AnalyticsSettings(default=Policy(default_ideal_cycle_s=20.0))
START_MS = int(datetime(2026, 3, 1, 15, tzinfo=timezone.utc).timestamp() * 1000)  # 00:00 in Seoul
END_MS = START_MS + DAYS * 86_400_000
NOW_MS = END_MS + 3 * HOUR_MS


def _same(a, b) -> None:
    for code in a.state_ms:
        np.testing.assert_array_equal(a.state_ms[code], b.state_ms[code])
        np.testing.assert_array_equal(a.state_runs[code], b.state_runs[code])
    for name in ("good", "scrap", "mi_ms", "mi_runs", "energy_wh"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.corrections == b.corrections


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    columns, _ = generate(MACHINES, FIRST, DAYS, LineSpec(process_s=40.0), seed=3)
    s = SqliteStore(tmp_path_factory.mktemp("store") / "store.db")
    for m, cols in columns.items():
        s.write_columns(m, cols)
    yield s
    s.close()


def test_one_hosts_rollups_are_read_by_another_without_recomputing(postgres, store, tmp_path):
    url = postgres.create_database("rollups_shared")
    leader_host, other_host = PostgresRollupCache(url), PostgresRollupCache(url)  # two engines: two processes' worth
    try:
        result = RollupMaintainer(store, SETTINGS, leader_host, horizon_days=10).run_pass(NOW_MS)
        assert result.machines == 2 and not result.failed and result.buckets_computed > 0
        final = (NOW_MS - leader_host.settle_ms) // HOUR_MS * HOUR_MS
        assert all(other_host.covered_until(m, SETTINGS.default) == final for m in MACHINES)

        sqlite = RollupCache(tmp_path / "rollups.db")
        for m in MACHINES:
            got = other_host.machine_buckets(store, m, SETTINGS.default, START_MS, END_MS, NOW_MS)
            _same(got, machine_buckets(store, m, SETTINGS.default, START_MS, END_MS))
            _same(got, sqlite.machine_buckets(store, m, SETTINGS.default, START_MS, END_MS, NOW_MS))
        assert other_host.computed == 0 and other_host.hits == 2 * DAYS * 24  # every hour came from PostgreSQL
        sqlite.close()
    finally:
        leader_host.close()
        other_host.close()


def test_writing_the_same_hours_again_keeps_one_row_each(postgres, store):
    url = postgres.create_database("rollups_upsert")
    a, b = PostgresRollupCache(url), PostgresRollupCache(url)
    try:
        m = MACHINES[0]
        first = a.machine_buckets(store, m, SETTINGS.default, START_MS, END_MS, NOW_MS)
        rows = int(postgres.psql("rollups_upsert", "SELECT count(*) FROM rollup_buckets"))
        assert rows > 0
        again = b.machine_buckets(store, m, SETTINGS.default, START_MS, END_MS, NOW_MS, refresh=True)
        assert b.computed > 0  # refresh recomputed and wrote the same hours
        assert int(postgres.psql("rollups_upsert", "SELECT count(*) FROM rollup_buckets")) == rows
        _same(first, again)
        a.set_covered_until(m, SETTINGS.default, 5)
        b.set_covered_until(m, SETTINGS.default, 7)
        assert a.covered_until(m, SETTINGS.default) == 7
    finally:
        a.close()
        b.close()


def test_a_sqlite_url_is_refused_with_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="needs a PostgreSQL database"):
        PostgresRollupCache(f"sqlite:///{tmp_path / 'x.db'}")


def test_open_cache_picks_postgresql_beside_a_postgresql_plant_database_and_the_file_otherwise(postgres, tmp_path):
    from analytics.command import open_cache
    from tsstore import SqliteSettings

    url = postgres.create_database("rollups_choice")
    store_settings = SqliteSettings(path=tmp_path / "store.db")
    shared = open_cache(SETTINGS, store_settings, tmp_path, url)
    assert isinstance(shared, PostgresRollupCache) and "***" in shared.path  # the log line hides the password
    shared.close()
    embedded = open_cache(SETTINGS, store_settings, tmp_path, "sqlite:///plant.db")
    assert type(embedded) is RollupCache and embedded.path == tmp_path / "store.rollups.db"
    embedded.close()
    chosen = open_cache(SETTINGS.model_copy(update={"cache_path": tmp_path / "mine.db"}), store_settings, tmp_path, url)
    assert type(chosen) is RollupCache and chosen.path == tmp_path / "mine.db"  # an explicit file wins
    chosen.close()

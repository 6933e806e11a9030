"""Rollups in parallel on a real PostgreSQL: leased workers tally every hour once, a dead worker's machines move on,
and the centre's per-tenant summaries equal the computation they replace.

Workers are threads with connections of their own (one engine each, as separate processes
would have); the store is the embedded SQLite one filled with synthetic history.
"""

from __future__ import annotations

import os
import threading
from datetime import date, datetime, timezone

import pytest

from analytics.continuous import HOUR_MS, RollupMaintainer
from analytics.policy import Policy
from analytics.settings import AnalyticsSettings, RolloutDef
from analytics.synthetic import LineSpec, generate
from plant import MachineRef
from tests.waiting import wait_until
from tsstore.sqlite import SqliteStore
from tests.servers import require_psycopg

require_psycopg()

from analytics.leases import LeasedRollupMaintainer  # noqa: E402
from analytics.rollup import _key  # noqa: E402
from analytics.rollup_pg import PostgresRollupCache  # noqa: E402

pytestmark = pytest.mark.integration

TENANTS = ("acme", "bravo", "delta")
MACHINES = [MachineRef(t, "plant-1", "line-a", f"press-{i}") for t in TENANTS for i in (1, 2)]
FIRST = date(2026, 3, 2)
DAYS = 8
START_MS = int(datetime(2026, 3, 1, 15, tzinfo=timezone.utc).timestamp() * 1000)  # 00:00 in Seoul
NOW_MS = START_MS + DAYS * 86_400_000 + 3 * HOUR_MS
SETTINGS = AnalyticsSettings(default=Policy(default_ideal_cycle_s=20.0),
                             rollouts=[RolloutDef(tenant="acme", line="line-a", date=date(2026, 3, 6),
                                                  commissioning_days=0)])
ROWS = "SELECT md5(string_agg(machine || shape || bucket || encode(v, 'hex'), ',' ORDER BY machine, shape, bucket)) " \
       "FROM rollup_buckets"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    columns, _ = generate(MACHINES, FIRST, DAYS, LineSpec(process_s=40.0), seed=5)
    s = SqliteStore(tmp_path_factory.mktemp("store") / "store.db")
    for m, cols in columns.items():
        s.write_columns(m, cols)
    yield s
    s.close()


@pytest.fixture(scope="module")
def single(postgres, store):
    """The reference: one plain maintainer's pass over the same data, in a database of its own."""
    url = postgres.create_database("rollups_single")
    cache = PostgresRollupCache(url)
    result = RollupMaintainer(store, SETTINGS, cache, horizon_days=30).run_pass(NOW_MS)
    cache.close()
    assert result.machines == len(MACHINES) and not result.failed
    return result, postgres.psql("rollups_single", ROWS)


def _tallies(postgres, db: str) -> dict[str, int]:
    out = postgres.psql(db, "SELECT string_agg(machine || '=' || tallies, ' ' ORDER BY machine) FROM rollup_leases")
    return {k: int(v) for k, v in (kv.split("=") for kv in out.split())}


def test_two_workers_share_the_machines_and_tally_every_hour_exactly_once(postgres, store, single):
    url = postgres.create_database("rollups_two")
    caches = [PostgresRollupCache(url), PostgresRollupCache(url)]  # an engine (a pool of connections) each
    a, b = (LeasedRollupMaintainer(store, SETTINGS, c, horizon_days=30, batch=3, owner=o)
            for c, o in zip(caches, ("worker-a", "worker-b")))
    # make the overlap certain: a's first tally waits until b has committed one machine of its own
    b_committed, a_first = threading.Event(), threading.Event()
    b_commit, a_tally = b._commit, a.tally_machine

    def b_commit_and_say(key, t, full=False):
        ok = b_commit(key, t, full)
        b_committed.set()
        return ok

    def a_tally_after_b(machine, now_ms, full=True):
        if not a_first.is_set():
            a_first.set()
            assert b_committed.wait(60), "worker b never committed while a held its batch"
        return a_tally(machine, now_ms, full)

    b._commit, a.tally_machine = b_commit_and_say, a_tally_after_b
    results, errors = {}, []

    def run(name, w):
        try:
            results[name] = w.run_pass(NOW_MS)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n, w)) for n, w in (("a", a), ("b", b))]
    threads[0].start()
    wait_until(a_first.is_set, 60, "worker a holding its first batch")
    threads[1].start()
    for t in threads:
        t.join(120)
    try:
        assert not errors and not any(t.is_alive() for t in threads)
        ra, rb = results["a"], results["b"]
        assert ra.machines > 0 and rb.machines > 0  # both did real work, side by side
        assert ra.machines + rb.machines == len(MACHINES) and not ra.lost and not rb.lost
        assert _tallies(postgres, "rollups_two") == {_key(m): 1 for m in MACHINES}  # each machine once
        reference, reference_rows = single
        assert ra.buckets_computed + rb.buckets_computed == reference.buckets_computed  # no hour twice
        assert postgres.psql("rollups_two", ROWS) == reference_rows  # the same rows as one worker's
        final = (NOW_MS - caches[0].settle_ms) // HOUR_MS * HOUR_MS
        assert all(caches[1].covered_until(m, SETTINGS.default) == final for m in MACHINES)
        again = a.run_pass(NOW_MS)  # nothing is due again before the interval
        assert again.machines == 0 and again.buckets_computed == 0
    finally:
        for c in caches:
            c.close()


def test_a_dead_workers_leases_expire_and_another_takes_its_machines_and_its_late_tally_is_refused(
        postgres, store, single):
    url = postgres.create_database("rollups_dead")
    dead_cache, live_cache = PostgresRollupCache(url), PostgresRollupCache(url)
    dead = LeasedRollupMaintainer(store, SETTINGS, dead_cache, horizon_days=30, lease_s=5, owner="dead-worker")
    live = LeasedRollupMaintainer(store, SETTINGS, live_cache, horizon_days=30, owner="live-worker")
    try:
        dead.leases.register(MACHINES)
        held = dead.leases.claim(3)  # claimed and never finished: no renewal, no commit
        assert len(held) == 3
        others = live.leases.claim(len(MACHINES))
        assert set(others) == {_key(m) for m in MACHINES} - set(held)  # a held lease is skipped, not waited on
        live.leases.release(others)

        first = live.run_pass(NOW_MS)  # the free machines at once; the held ones once their lease expires
        assert first.machines >= len(MACHINES) - 3
        wait_until(lambda: live.run_pass(NOW_MS) is not None and all(
            n == 1 for n in _tallies(postgres, "rollups_dead").values()), 60, "the dead worker's machines tallied")
        assert _tallies(postgres, "rollups_dead") == {_key(m): 1 for m in MACHINES}
        assert postgres.psql("rollups_dead", ROWS) == single[1]

        # the dead worker wakes up and tries to commit what it held: refused, nothing written
        by_key = {_key(m): m for m in MACHINES}
        late = dead.tally_machine(by_key[held[0]], NOW_MS + 10 * HOUR_MS)
        assert late.tally.rows and late.until_ms > live_cache.covered_until(by_key[held[0]], SETTINGS.default)
        assert dead._commit(held[0], late) is False
        assert live_cache.covered_until(by_key[held[0]], SETTINGS.default) < late.until_ms  # watermark unmoved
        assert postgres.psql("rollups_dead", ROWS) == single[1]
        assert _tallies(postgres, "rollups_dead")[held[0]] == 1
    finally:
        dead_cache.close()
        live_cache.close()


def test_the_centre_summaries_equal_the_overview_and_portfolio_computed_machine_by_machine(postgres, store):
    from api.centre import CentreSummaries, gains_by_tenant, overview, portfolio_rows
    from analytics.report import portfolio_reports
    from plantmodel.admin import PlantSeed, apply_seed
    from plantmodel.db import open_plant
    from plantmodel.orders import orders_for_report

    plant = open_plant(postgres.create_database("summaries_plant"))
    apply_seed(plant, PlantSeed.model_validate({
        "tenants": [{"slug": t, "name": t.title(), "name_en": f"{t} Ltd", "rollout_date": "2026-03-06" if t == "acme" else None,
                     "sites": [{"slug": "plant-1", "lines": [{"slug": "line-a", "machines": [
                         {"slug": "press-1", "gateway": f"gw-{t}" if t in ("acme", "bravo") else None},
                         {"slug": "press-2", "gateway": f"gw-{t}" if t == "acme" else None}]}]}]}
                    for t in (*TENANTS, "echo")],  # echo: in the plant model, no data
        "broker_accounts": [{"username": f"gw-{t}", "password": "gateway-pass-1", "tenant": t} for t in ("acme", "bravo")]}))
    cache = PostgresRollupCache(postgres.create_database("summaries_cache"))
    stale_ms = 90_000
    summaries = CentreSummaries(plant, store, cache, lambda: SETTINGS, stale_ms, max_age_s=600)
    try:
        # the data ends three hours before NOW: a gateway last seen then is offline, coverage under 1
        result = LeasedRollupMaintainer(store, SETTINGS, cache, horizon_days=30, after_pass=summaries.refresh).run_pass(NOW_MS)
        assert result.tenants == set(TENANTS)
        want = overview(plant, store, cache, SETTINGS, NOW_MS, stale_ms)
        got = summaries.overview(NOW_MS)
        assert summaries.computed_in_request == 1  # echo only: no machine in the store, no pass touched it
        assert got == want and [r["tenant"] for r in got] == [*TENANTS, "echo"]
        assert any(r["coverage_24h"] for r in got) and any(g["last_data_ms"] for r in got for g in r["gateways"])
        assert summaries.overview(NOW_MS) == want and summaries.computed_in_request == 1  # now read back

        reports, problems = portfolio_reports(store, SETTINGS, 1000, cache=cache,
                                              orders_for=lambda t: orders_for_report(plant, t))
        assert gains_by_tenant(reports).get("acme") or problems  # the rollout's report ran (or said why not)
        names_en = {t: f"{t} Ltd" for t in (*TENANTS, "echo")}
        old = portfolio_rows(want, names_en, reports, problems, 0.8, NOW_MS)
        assert summaries.portfolio(0.8, NOW_MS)["tenants"] == old
    finally:
        cache.close()
        plant.close()


def test_the_rollups_command_runs_worker_processes_that_share_the_machines(postgres, store, tmp_path):
    import sqlite3
    import subprocess
    import sys

    import yaml

    from plantmodel.db import open_plant

    url = postgres.create_database("rollups_cli")
    open_plant(url).close()  # the plant model's tables (the workers refresh the centre's summaries)
    with sqlite3.connect(store.path) as src, sqlite3.connect(tmp_path / "store.db") as dst:
        src.backup(dst)  # a consistent copy of the module's store (WAL included)
    config = tmp_path / "smartfactory.yaml"
    config.write_text(yaml.safe_dump({"store": {"kind": "sqlite", "path": "store.db"}, "api": {"database_url": url},
                                      "analytics": {"rollup_batch": 2}}))
    run = subprocess.run([sys.executable, "-m", "cli.main", "rollups", "-c", str(config), "--workers", "2", "--once"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "rollup_workers_started workers=2" in run.stderr
    assert run.stderr.count("rollup_pass ") == 2  # one pass per worker process
    assert _tallies(postgres, "rollups_cli") == {_key(m): 1 for m in MACHINES}  # every machine once, by one of them


def test_the_rollups_command_refuses_workers_on_the_embedded_cache_and_says_what_to_change(tmp_path):
    import subprocess
    import sys

    import yaml

    config = tmp_path / "smartfactory.yaml"
    config.write_text(yaml.safe_dump({"store": {"kind": "sqlite", "path": "store.db"}}))
    run = subprocess.run([sys.executable, "-m", "cli.main", "rollups", "-c", str(config), "--workers", "2", "--once"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert f"{config}: rollups --workers 2 needs the rollup cache in PostgreSQL" in run.stderr
    assert "run without --workers" in run.stderr


def test_a_pass_longer_than_the_interval_ends_and_leaves_machines_due_again_to_the_next_pass(postgres, store):
    url = postgres.create_database("rollups_overrun")
    cache = PostgresRollupCache(url)
    try:
        # interval 0: every machine is due again the moment it is tallied, as when a pass outlasts its interval
        worker = LeasedRollupMaintainer(store, SETTINGS, cache, horizon_days=30, batch=2, interval_s=0)
        assert worker.run_pass(NOW_MS).machines == len(MACHINES)
        assert _tallies(postgres, "rollups_overrun") == {_key(m): 1 for m in MACHINES}
        assert worker.run_pass(NOW_MS).machines == len(MACHINES)  # the next pass takes them again
    finally:
        cache.close()


def test_the_full_recheck_is_scheduled_per_machine_and_follows_it_from_worker_to_worker(postgres, store):
    url = postgres.create_database("rollups_full")
    caches = [PostgresRollupCache(url), PostgresRollupCache(url)]
    a, b = (LeasedRollupMaintainer(store, SETTINGS, c, horizon_days=30, owner=o, full_recheck_s=3600)
            for c, o in zip(caches, ("worker-a", "worker-b")))
    keys = sorted(_key(m) for m in MACHINES)
    try:
        first = a.run_pass(NOW_MS)  # new rows: a full recheck due at once (as for a table from before full_due)
        assert (first.recheck, first.full_rechecks, first.machines) == ("full", len(MACHINES), len(MACHINES))
        # the next full rechecks take turns: machine i of n is due i/n of the hour into its grid, within the hour
        within_the_hour = postgres.psql("rollups_full", "SELECT bool_and(full_due > now() AND full_due <= now() "
                                        "+ interval '3600 s') FROM rollup_leases")
        assert within_the_hour == "t"
        offsets = postgres.psql("rollups_full", "SELECT string_agg((extract(epoch FROM full_due)::numeric % 3600)"
                                "::text, ',' ORDER BY machine) FROM rollup_leases")
        expected = [i * 3600 / len(keys) for i in range(len(keys))]
        assert [float(x) for x in offsets.split(",")] == pytest.approx(expected, abs=0.01)

        b.leases.make_due()  # the next interval: b takes every machine, and none is due a full recheck
        moved = b.run_pass(NOW_MS)
        assert (moved.recheck, moved.full_rechecks, moved.machines) == ("quick", 0, len(MACHINES))
        assert moved.buckets_computed == 2 * len(MACHINES)  # the quick window: 2 hours a machine

        # an hour on for two machines (their full_due passed): whoever claims them rechecks them in full, once
        postgres.psql("rollups_full", f"UPDATE rollup_leases SET full_due = now() - interval '1 s' "
                      f"WHERE machine IN ('{keys[0]}', '{keys[3]}')")
        a.leases.make_due()
        mixed = a.run_pass(NOW_MS)
        assert (mixed.recheck, mixed.full_rechecks, mixed.machines) == ("mixed", 2, len(MACHINES))
        assert mixed.buckets_computed == 2 * 24 + (len(MACHINES) - 2) * 2
        b.leases.make_due()
        assert b.run_pass(NOW_MS).full_rechecks == 0  # done by a: b does not do it again

        b.leases.make_due()
        forced = b.run_pass(NOW_MS, full=True)  # ``rollups --once``
        assert (forced.recheck, forced.buckets_computed) == ("full", 24 * len(MACHINES))
    finally:
        for c in caches:
            c.close()


def test_a_lease_table_from_before_the_full_recheck_schedule_gets_its_column(postgres):
    url = postgres.create_database("rollups_old_leases")
    postgres.psql("rollups_old_leases", "CREATE TABLE rollup_leases (machine varchar(300) PRIMARY KEY, "
                  "owner varchar(200), lease_until timestamptz, due timestamptz NOT NULL DEFAULT '-infinity', "
                  "tallies bigint NOT NULL DEFAULT 0, tallied_at timestamptz); "
                  "INSERT INTO rollup_leases (machine) VALUES ('old/plant-1/line-a/press-1')")
    cache = PostgresRollupCache(url)  # as a worker of this version starts on it
    try:
        from analytics.leases import RollupLeases

        assert RollupLeases(cache).claim_batch(10) == [("old/plant-1/line-a/press-1", True)]  # a full recheck due
        PostgresRollupCache(url).close()  # a second start leaves the column as it is
        assert postgres.psql("rollups_old_leases", "SELECT count(*) FROM information_schema.columns "
                             "WHERE table_name = 'rollup_leases' AND column_name = 'full_due'") == "1"
    finally:
        cache.close()

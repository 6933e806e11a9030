"""Leadership across hosts: API processes that share only a PostgreSQL server elect one leader.

Two real ``smartfactory api`` processes with separate working directories (their own config,
store, rollup cache and lock-file path; nothing on disk in common) and one PostgreSQL plant
database. The leader's advisory lock lives on its database connection, so SIGKILL of the
leader lets the other take over, and a leader whose connection the server cuts
(``pg_terminate_backend``) stops its duties at once.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from api.leader import ADVISORY_KEY, Leadership, PostgresLock
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import open_plant
from plant import MachineRef
from tests.processes import ApiProcess
from tests.waiting import wait_until
from tsstore import Point
from tsstore.sqlite import SqliteStore
from tests.servers import require_psycopg

require_psycopg()

pytestmark = pytest.mark.integration

MACHINE = MachineRef("acme", "plant-1", "line-1", "press-1")


def _lock_holder(postgres, database: str) -> int | None:
    """The backend pid holding the leader's advisory lock, seen by the server itself."""
    out = postgres.psql(database, "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                                  f"WHERE l.locktype = 'advisory' AND l.granted AND d.datname = '{database}' "
                                  f"AND l.classid = {ADVISORY_KEY >> 32} AND l.objid = {ADVISORY_KEY & 0xFFFFFFFF}")
    return int(out) if out else None


def _stamp(log: str, event: str) -> datetime:
    """When a log line of ``event`` was written (each line starts with its UTC time)."""
    line = next(x for x in log.splitlines() if re.search(rf"\b{event}\b", x))
    return datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")


class _Duty:
    def __init__(self) -> None:
        self.running, self.stopped = threading.Event(), threading.Event()

    def lead(self) -> None:
        self.stopped.clear()
        self.running.set()

    def resign(self) -> None:
        self.running.clear()
        self.stopped.set()


# -- in one process: the lock itself -------------------------------------------------------------

def test_one_advisory_lock_one_leader_and_a_cut_connection_resigns(postgres):
    url = postgres.create_database("leader_unit")
    a, b = _Duty(), _Duty()
    first = Leadership(PostgresLock(url, lease_s=8), a.lead, a.resign, retry_s=0.1, check_s=0.1)
    second = Leadership(PostgresLock(url, lease_s=8), b.lead, b.resign, retry_s=0.1, check_s=0.1)
    first.start()
    try:
        assert a.running.wait(20), "the only candidate never led"
        second.start()
        wait_until(lambda: second.terms == 0 and second._thread is not None, 5, "the second candidate")
        holder = _lock_holder(postgres, "leader_unit")
        assert holder is not None
        assert not b.running.wait(1) and not second.is_leader  # the lock is taken
        postgres.psql("leader_unit", f"SELECT pg_terminate_backend({holder})")
        assert a.stopped.wait(10), "the leader kept its duties after the server ended its session"
        assert b.running.wait(20), "the standby never took over"
        assert second.is_leader and not first.is_leader
        assert _lock_holder(postgres, "leader_unit") not in (None, holder)
    finally:
        second.stop()
        first.stop()
    assert _lock_holder(postgres, "leader_unit") is None  # stop() released it


def test_an_unreachable_database_means_standby_not_a_crash(postgres):
    url = postgres.url("no_such_database")
    duty = _Duty()
    lock = PostgresLock(url, lease_s=8)
    attempts = []
    acquire = lock.acquire
    lock.acquire = lambda: attempts.append(1) or acquire()
    leadership = Leadership(lock, duty.lead, duty.resign, retry_s=0.1)
    leadership.start()
    try:
        wait_until(lambda: len(attempts) >= 3, 30, "the election to retry")
        assert not leadership.is_leader and not duty.running.is_set()
    finally:
        leadership.stop()


# -- two API processes ---------------------------------------------------------------------------

def _host(workdir: Path, database_url: str, retry_s: float, rollups_in_api: str = "leader") -> ApiProcess:
    """An API process in a working directory of its own, with a store holding an hour of one machine's data."""
    workdir.mkdir()
    store = SqliteStore(workdir / "store.db")  # a machine with an hour of data, for the rollup maintainer
    now = int(time.time() * 1000)
    store.write([Point(MACHINE, now - 3_600_000 + i * 60_000, {"state": 2.0}) for i in range(60)])
    store.close()
    config = workdir / "smartfactory.yaml"
    config.write_text(yaml.safe_dump({
        "store": {"kind": "sqlite", "path": "store.db"},
        "api": {"database_url": database_url, "alarm_interval_s": 0.5, "leader_retry_s": retry_s,
                "housekeeping_interval_s": 3600},
        "analytics": {"rollup_interval_s": 10, "rollups_in_api": rollups_in_api, "rollup_lease_s": 10},
    }))
    return ApiProcess(config, cwd=workdir).launch()


@pytest.fixture()
def pair(postgres, tmp_path, request):
    """Two API processes, ``a`` started (and leading) first; ``b`` retries fast so it wins a free lock.

    Rollups here are a leader duty (``analytics.rollups_in_api: leader``, the default), so these tests
    see the duties move; with ``every`` (every process runs a leased worker) see the last test."""
    rollups_in_api = getattr(request, "param", "leader")
    name = "leader_" + request.node.name[-20:].lower().replace("-", "_").replace("[", "_").replace("]", "")
    url = postgres.create_database(name)
    plant = open_plant(url)
    apply_seed(plant, PlantSeed.model_validate({"tenants": [{"slug": "acme", "sites": [{"slug": "plant-1", "lines": [
        {"slug": "line-1", "machines": [{"slug": "press-1"}]}]}]}]}))
    plant.close()
    a = _host(tmp_path / "host-a", url, retry_s=30, rollups_in_api=rollups_in_api)
    procs = [a]
    try:
        wait_until(a.up, 60, "API process a")
        wait_until(lambda: a.count("leader_elected") == 1, 30, "process a to lead")
        b = _host(tmp_path / "host-b", url, retry_s=0.5, rollups_in_api=rollups_in_api)
        procs.append(b)
        wait_until(b.up, 60, "API process b")
        wait_until(lambda: b.count("leader_standby") == 1, 30, "process b to stand by")
        yield a, b, name
    finally:
        for p in procs:
            p.stop()


def test_sigkill_of_the_leader_process_moves_leadership_to_the_other_host(pair, postgres):
    a, b, database = pair
    wait_until(lambda: a.count("rollup_pass") >= 1, 60, "the leader's first rollup pass")
    assert b.count("leader_elected") == 0 and b.count("rollup_pass") == 0
    # the rollup cache is PostgreSQL's, beside the plant database: the other host will read the same rows
    assert int(postgres.psql(database, "SELECT count(*) FROM rollup_coverage WHERE machine = "
                                       f"'{MACHINE.tenant}/{MACHINE.site}/{MACHINE.line}/{MACHINE.machine}'")) == 1
    holder = _lock_holder(postgres, database)
    assert holder is not None

    a.kill()  # a crash: no clean-up code runs; the server sees the socket close
    wait_until(lambda: b.count("leader_elected") == 1, 60, "the standby on the other host to take over")
    wait_until(lambda: b.count("rollup_pass") >= 1, 60, "the new leader's rollup pass")
    new_holder = _lock_holder(postgres, database)
    assert new_holder is not None and new_holder != holder
    assert b.up()


def test_a_leader_whose_database_connection_is_cut_stops_its_duties(pair, postgres):
    a, b, database = pair
    wait_until(lambda: a.count("rollup_pass") >= 1, 60, "the leader's first rollup pass")
    holder = _lock_holder(postgres, database)
    assert holder is not None
    postgres.psql(database, f"SELECT pg_terminate_backend({holder})")

    wait_until(lambda: a.count("leader_resigned") == 1, 30, "the leader to resign after losing its connection")
    resigned = a.text()
    assert "reason=lock_lost" in resigned and a.proc.poll() is None  # the process lives on, as a standby
    wait_until(lambda: b.count("leader_elected") == 1, 60, "the other process to take over")
    # never two leaders: the server handed the lock on at once, but b started its duties only after a stopped its own
    assert _stamp(b.text(), "leader_elected") > _stamp(resigned, "leader_resigned")
    wait_until(lambda: b.count("rollup_pass") >= 2, 60, "two rollup passes of the new leader")
    # the old leader ran no duty since it resigned, while the new leader ran two rollup passes
    after = a.text()[len(resigned):]
    assert "rollup_pass" not in after and "leader_elected" not in after, after
    assert "rollup_pass" not in resigned.rsplit("leader_resigned", 1)[1], resigned[-2000:]
    assert a.up() and b.up()


def _tallied(text: str) -> int:
    """Machines this process's rollup passes tallied (each pass logs how many)."""
    return sum(int(n) for n in re.findall(r"\brollup_pass machines=(\d+)", text))


def _tallies(postgres, database: str) -> int:
    return int(postgres.psql(database, "SELECT coalesce(sum(tallies), 0) FROM rollup_leases") or 0)


@pytest.mark.parametrize("pair", ["every"], indirect=True)
def test_every_api_process_runs_a_leased_rollup_worker_and_each_tally_is_one_processes(pair, postgres):
    a, b, database = pair
    # both processes run passes, the standby too: with rollups_in_api: every they are not a leader duty
    wait_until(lambda: a.count("rollup_pass") >= 2 and b.count("rollup_pass") >= 2, 90, "passes in both processes")
    assert b.count("leader_elected") == 0
    wait_until(lambda: _tallies(postgres, database) >= 2, 60, "the machine tallied twice (due every 10 s)")
    # every tally the lease table counts was made by exactly one of the two processes
    wait_until(lambda: _tallies(postgres, database) == _tallied(a.text()) + _tallied(b.text()), 30,
               "the logs to show the tallies the lease table counts")
    a.kill()  # the leader dies, maybe holding the machine's lease
    before, b_before = _tallies(postgres, database), _tallied(b.text())
    wait_until(lambda: _tallied(b.text()) >= b_before + 1 and _tallies(postgres, database) >= before + 1, 120,
               "the surviving process to tally the machine (after the dead one's lease expired, if it held it)")

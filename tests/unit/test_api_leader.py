"""Leader election between API workers: exactly one runs the alarm engine and the rollup maintainer."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from api.leader import Leadership
from tests.waiting import wait_until


class _Duty:
    def __init__(self) -> None:
        self.running = threading.Event()
        self.stopped = threading.Event()

    def lead(self) -> None:
        self.running.set()

    def resign(self) -> None:
        self.stopped.set()


def test_one_worker_leads_and_another_takes_over_when_it_stops(tmp_path):
    lock = tmp_path / "api-leader.lock"
    a, b = _Duty(), _Duty()
    first = Leadership(lock, a.lead, a.resign, retry_s=0.05)
    second = Leadership(lock, b.lead, b.resign, retry_s=0.05)
    first.start()
    second.start()
    try:
        assert first.is_leader and a.running.is_set()
        assert not second.is_leader and not b.running.is_set()
        assert lock.read_text().strip() == str(os.getpid())

        first.stop()
        assert a.stopped.is_set() and not first.is_leader
        assert b.running.wait(5), "the standby never took the duties over"
        assert second.is_leader
    finally:
        second.stop()
        first.stop()
    assert b.stopped.is_set()


def test_a_killed_leader_process_releases_the_lock(tmp_path):
    lock = tmp_path / "api-leader.lock"
    code = ("import sys, threading; from api.leader import Leadership; "
            "l = Leadership(sys.argv[1], lambda: print('lead', flush=True), lambda: None); l.start(); "
            "threading.Event().wait()")
    leader = subprocess.Popen([sys.executable, "-c", code, str(lock)], stdout=subprocess.PIPE, text=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    try:
        assert leader.stdout.readline().strip() == "lead"
        duty = _Duty()
        standby = Leadership(lock, duty.lead, duty.resign, retry_s=0.05)
        standby.start()
        assert not standby.is_leader
        leader.kill()  # SIGKILL: no clean-up code runs, the kernel drops the flock with the process
        leader.wait()
        assert duty.running.wait(5)
        wait_until(lambda: lock.read_text().strip() == str(os.getpid()), timeout=5)
        standby.stop()
    finally:
        leader.kill()
        leader.stdout.close()


class _FakeLock:
    """A lock whose loss the test decides: stands in for a PostgreSQL session the server ended."""

    takeover_grace_s = 0.0

    def __init__(self) -> None:
        self.free = True
        self.held = False
        self.lost = False
        self.lose_on_acquire = False
        self.acquires = 0
        self.releases = 0

    def acquire(self) -> bool:
        if not self.free:
            return False
        self.acquires += 1
        self.free, self.held, self.lost = False, True, self.lose_on_acquire
        if self.lose_on_acquire:
            self.free = True
        return True

    def healthy(self) -> bool:
        return self.held and not self.lost

    def release(self) -> None:
        self.releases += 1
        self.held = False

    def describe(self) -> str:
        return "lock=fake"


def test_a_leader_that_loses_its_lock_resigns_its_duties_and_stands_by():
    lock, duty = _FakeLock(), _Duty()
    leadership = Leadership(lock, duty.lead, duty.resign, retry_s=0.05, check_s=0.02)
    leadership.start()
    try:
        assert leadership.is_leader and duty.running.is_set()
        lock.lost = True  # the server dropped the session; another worker may hold the lock now
        assert duty.stopped.wait(5), "the leader kept its duties after losing the lock"
        wait_until(lambda: not leadership.is_leader, 5, "the leader to step down")
        assert lock.releases == 1
        # standing by: while the lock is taken elsewhere it does not lead again
        duty.running.clear()
        assert not duty.running.wait(0.3) and not leadership.is_leader
        lock.free = True  # the other leader went away
        assert duty.running.wait(5), "the resigned worker never stood for leader again"
        assert leadership.is_leader and leadership.terms == 2
    finally:
        leadership.stop()


def test_a_failing_acquire_is_retried_without_leading(tmp_path):
    lock, duty = _FakeLock(), _Duty()
    lock.free = False
    leadership = Leadership(lock, duty.lead, duty.resign, retry_s=0.02)
    leadership.start()
    try:
        assert not leadership.is_leader
        lock.free = True
        assert duty.running.wait(5)
    finally:
        leadership.stop()
    assert duty.stopped.is_set() and lock.releases == 1


def test_a_lock_lost_during_the_takeover_grace_never_starts_the_duties():
    """The grace lets a previous leader notice its loss; a new holder re-checks the lock before leading."""
    lock, duty = _FakeLock(), _Duty()
    lock.takeover_grace_s = 0.05
    lock.lose_on_acquire = True  # the server ended the session right after granting it
    leadership = Leadership(lock, duty.lead, duty.resign, retry_s=0.02, check_s=0.02)
    leadership.start()
    try:
        wait_until(lambda: lock.acquires >= 3, 10, "the election to retry")
        assert not duty.running.is_set() and not leadership.is_leader
        assert lock.releases >= 2  # each failed takeover let go of what it held
        lock.lose_on_acquire = False
        assert duty.running.wait(5)
        assert leadership.is_leader
    finally:
        leadership.stop()


def test_the_report_delivery_runs_in_the_leader_only(tmp_path):
    """create_app(delivery=...) starts the scheduled e-mails with the leader's duties and stops them with it."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import ApiSettings
    from plantmodel.db import open_plant
    from tsstore.sqlite import SqliteStore

    class Delivery:
        def __init__(self) -> None:
            self.started = threading.Event()
            self.stopped = threading.Event()

        def start(self) -> None:
            self.started.set()

        def stop(self) -> None:
            self.stopped.set()

    lock = tmp_path / "leader.lock"
    store, plant = SqliteStore(tmp_path / "s.db"), open_plant(f"sqlite:///{tmp_path / 'p.db'}")
    leader, standby = Delivery(), Delivery()
    with TestClient(create_app(store, ApiSettings(), plant, leader_lock=lock, delivery=leader)):
        assert leader.started.is_set()
        with TestClient(create_app(store, ApiSettings(), plant, leader_lock=lock, delivery=standby)):
            assert not standby.started.is_set()  # the lock is held: this worker waits
    assert leader.stopped.is_set()
    store.close()
    plant.close()

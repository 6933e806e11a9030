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

"""``smartfactory api`` with several uvicorn workers: one alarm engine, and a standby that takes over;
credentials ended through one worker are refused by every worker; login counts are shared.

A real API process tree (uvicorn's supervisor and two workers) over SQLite; the leader worker
is SIGKILLed as a crash would kill it, and the alarms must go on without a duplicate.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import httpx
import pytest
import yaml

from plantmodel.admin import PlantSeed, apply_seed, create_token
from plantmodel.db import open_plant
from plant import MachineRef
from tests.processes import ApiProcess
from tests.waiting import wait_until
from tsstore import Point
from tsstore.sqlite import SqliteStore

pytestmark = pytest.mark.integration

MACHINE = MachineRef("acme", "plant-1", "line-1", "press-1")


def _force(store: SqliteStore, value: float) -> None:
    store.write([Point(MACHINE, int(time.time() * 1000), {"press_force": value, "state": 2.0})])


@pytest.fixture()
def api(tmp_path):
    config = tmp_path / "smartfactory.yaml"
    config.write_text(yaml.safe_dump({
        "store": {"kind": "sqlite", "path": "store.db"},
        "api": {"database_url": "sqlite:///plant.db", "alarm_interval_s": 0.2, "workers": 2,
                # a wait far longer than a loaded machine takes between two requests, so the test does not time it
                "login_free_failures_per_address": 4, "login_backoff_base_s": 600},
        "analytics": {"rollup_interval_s": 10},
    }))
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({
        "tenants": [{"slug": "acme", "sites": [{"slug": "plant-1", "lines": [{"slug": "line-1", "machines": [
            {"slug": "press-1", "alarms": [{"name": "force > 800", "kind": "threshold", "tag": "press_force",
                                            "op": ">", "threshold": 800}]}]}]}]}],
        "users": [{"username": "owner", "password": "owner-password-1", "role": "sme_owner", "tenant": "acme"}]}))
    token = create_token(plant, "owner", "test")
    plant.close()
    store = SqliteStore(tmp_path / "store.db")
    _force(store, 100.0)
    api = ApiProcess(config).start()
    client = api.client(token, timeout=5)
    yield client, store, api.log, tmp_path / "api-leader.lock"
    client.close()
    api.stop()
    store.close()


def _alarms(client: httpx.Client) -> list[dict]:
    r = client.get("/api/v1/alarms/acme", params={"status": ["active", "acknowledged", "cleared"]})
    r.raise_for_status()
    return r.json()


def test_two_workers_one_alarm_engine_and_failover(api):
    client, store, log, lock = api
    wait_until(lambda: log.read_text().count("leader_standby") == 1 and log.read_text().count("leader_elected") == 1,
               30, "one leader and one standby worker")
    leader_pid = int(lock.read_text())

    _force(store, 900.0)
    wait_until(lambda: len(_alarms(client)) == 1, 20, "the alarm to be raised")
    wait_until(lambda: "rollup_pass" in log.read_text(), 30, "the leader's first rollup pass")

    os.kill(leader_pid, signal.SIGKILL)  # a crash: the standby must take the duties over
    wait_until(lambda: log.read_text().count("leader_elected") == 2, 30, "the standby to take over")
    assert int(lock.read_text()) != leader_pid

    # the new leader clears and raises again: its engine runs, and it did not raise a second copy
    _force(store, 100.0)
    wait_until(lambda: [a["status"] for a in _alarms(client)] == ["cleared"], 20, "the alarm to clear")
    _force(store, 950.0)
    wait_until(lambda: sorted(a["status"] for a in _alarms(client)) == ["active", "cleared"], 20,
               "a new alarm from the new leader")
    assert client.get("/health").status_code == 200


def test_a_logout_through_any_worker_ends_the_live_stream_within_seconds(api):
    client, _, _, _ = api
    base = str(client.base_url)
    viewer = httpx.Client(base_url=base, timeout=httpx.Timeout(5, read=30))
    assert viewer.post("/api/v1/auth/login", json={"username": "owner", "password": "owner-password-1"}).status_code == 200
    other = httpx.Client(base_url=base, cookies=viewer.cookies, timeout=5)  # another connection: maybe another worker
    events = []
    started = None
    with viewer.stream("GET", "/api/v1/lines/acme/plant-1/line-1/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                events.append(line.removeprefix("event: "))
            if events == ["snapshot"] and started is None:
                assert other.post("/api/v1/auth/logout").status_code == 200
                started = time.monotonic()
            if events and events[-1] == "logout":
                break
    assert events[0] == "snapshot" and events[-1] == "logout"
    assert time.monotonic() - started < 15  # the session check runs every 5 s, callers are cached for 5 s
    viewer.close()
    other.close()


def test_every_open_stream_of_every_worker_gets_a_stored_state_change_within_seconds(api):
    """Streams on both workers (each refreshes the line for its own streams) deliver a new state soon after it is
    stored; the deadline is generous for a loaded machine (bench/live.py measures the latency itself)."""
    client, store, _, _ = api
    base, token = str(client.base_url), client.headers["authorization"]
    n = 6
    firsts, changed, errors = threading.Barrier(n + 1), [None] * n, []

    def follow(i: int) -> None:
        try:
            with httpx.Client(base_url=base, headers={"authorization": token},
                              timeout=httpx.Timeout(5, read=30)) as viewer, \
                    viewer.stream("GET", "/api/v1/lines/acme/plant-1/line-1/events") as stream:
                first = True
                for line in stream.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    (tile,) = json.loads(line.removeprefix("data: "))["machines"]
                    if first:
                        first = False
                        firsts.wait(30)
                    if tile["state"] == 4:
                        changed[i] = time.monotonic()
                        return
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
            firsts.abort()

    threads = [threading.Thread(target=follow, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    firsts.wait(60)  # every stream has its first snapshot (state 2)
    written = time.monotonic()
    store.write([Point(MACHINE, int(time.time() * 1000), {"press_force": 100.0, "state": 4.0})])
    for t in threads:
        t.join(30)
    assert errors == [] and all(changed), (errors, changed)
    assert max(changed) - written < 10  # type: ignore[operator]


def _fresh(base: str, **kwargs) -> httpx.Client:
    """A new connection: uvicorn's workers share the socket, so a new connection may land on either worker."""
    return httpx.Client(base_url=base, timeout=5, **kwargs)


def _status_everywhere(base: str, n: int, **kwargs) -> set[int]:
    out = set()
    for _ in range(n):
        with _fresh(base, **kwargs) as c:
            out.add(c.get("/api/v1/me").status_code)
    return out


def test_a_password_change_ends_sessions_and_tokens_on_every_worker_within_seconds(api):
    client, _, log, _ = api
    base = str(client.base_url)
    browser = _fresh(base)
    assert browser.post("/api/v1/auth/login", json={"username": "owner", "password": "owner-password-1"}).status_code == 200
    token = browser.post("/api/v1/me/tokens", json={"name": "script"}).json()["token"]
    session = dict(browser.cookies)
    # both workers have now resolved (and cached) the session and the token
    assert _status_everywhere(base, 12, cookies=session) == {200}
    assert _status_everywhere(base, 12, headers={"Authorization": f"Bearer {token}"}) == {200}
    r = browser.post("/api/v1/me/password", json={"current_password": "owner-password-1",
                                                  "new_password": "lathe-morning-cactus-47"})
    assert r.status_code == 200 and r.json()["sessions_ended"] == 1 and r.json()["tokens_ended"] == 2
    # every worker refuses them within the credential cache's 5 s (the deadline leaves room for a slow machine)
    wait_until(lambda: _status_everywhere(base, 12, cookies=session) == {401}, 15, "every worker to end the session")
    wait_until(lambda: _status_everywhere(base, 12, headers={"Authorization": f"Bearer {token}"}) == {401}, 15,
               "every worker to refuse the token")
    assert client.get("/api/v1/me").status_code == 401  # the fixture's token (created by the CLI) ended too
    assert browser.get("/api/v1/me").status_code == 200  # the browser that changed it has a new session
    browser.close()


def test_failed_logins_are_counted_across_workers(api):
    """Four free failures per address (the config): the fifth attempt waits, whichever workers took the four."""
    client, _, log, _ = api
    base = str(client.base_url)
    for attempt in range(10):  # until the four failures were not all served by one worker
        address = f"127.113.0.{attempt + 1}"  # as a reverse proxy on 127.0.0.1 would say (uvicorn trusts it)
        headers = {"X-Forwarded-For": address}
        for i in range(4):
            with _fresh(base, headers=headers) as c:
                assert c.post("/api/v1/auth/login", json={"username": f"user-{i}", "password": "x-guess-1"}
                              ).status_code == 401
        with _fresh(base, headers=headers) as c:
            r = c.post("/api/v1/auth/login", json={"username": "owner", "password": "owner-password-1"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1, r.text
        pids = set()
        for line in log.read_text().splitlines():
            if "login_failed" in line and f"address={address} " in line:
                pids.add(line.rsplit("pid=", 1)[1])
        if len(pids) == 2:
            break
    else:
        pytest.fail("ten rounds of four logins all went to one worker: the kernel did not spread connections")
    # another address is not held back by that one
    with _fresh(base, headers={"X-Forwarded-For": "127.51.100.20"}) as c:
        assert c.post("/api/v1/auth/login", json={"username": "owner", "password": "owner-password-1"}).status_code == 200


def test_a_machine_page_one_worker_computed_is_shared_with_the_other_through_the_hosts_answer_file(api, tmp_path):
    """The workers share range answers in ``api-answers.db`` beside the config: the answer the page got is the
    one in the file, and the page asked again over fresh connections (either worker) is that same answer, byte
    for byte (its computation time included, so a worker that computed its own would differ)."""
    client, _, _, _ = api
    path = "/api/v1/history/acme/plant-1/line-1/press-1"
    yesterday = time.gmtime(time.time() - 86_400)  # a range in the past: one key, however long the test takes
    params = {"start": time.strftime("%Y-%m-%dT00:00:00Z", yesterday), "end": time.strftime("%Y-%m-%dT06:00:00Z", yesterday)}
    first = client.get(path, params=params)
    asked_at = time.monotonic()
    assert first.status_code == 200, first.text
    import sqlite3

    with sqlite3.connect(tmp_path / "api-answers.db") as db:
        bodies = [bytes(b) for (k, b) in db.execute("SELECT key, body FROM answers") if "press-1" in k]
    assert first.content in bodies
    compared = 0
    for _ in range(8):  # a new connection each: the kernel hands them to either worker
        with httpx.Client(base_url=str(client.base_url), headers=client.headers, timeout=5) as fresh:
            again = fresh.get(path, params=params)
        assert again.status_code == 200
        if time.monotonic() - asked_at < 10:  # the answer is fresh for 15 s; later a worker may compute it again
            assert again.content == first.content
            compared += 1
    assert compared > 0, "the machine was too slow to ask again within the answer's freshness"

"""Followed lines (api/follow.py) and the snapshot probe (api/live.py): a stored state change reaches
every stream of a worker through one refresh, without waiting for the snapshot's ttl."""

from __future__ import annotations

import asyncio
import time

import pytest

from analytics.policy import Policy
from api.follow import Follows
from api.live import SnapshotCache
from plant import MachineRef
from plant.states import MachineState as S
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import open_plant
from tsstore import Point, StoreUnavailable
from tsstore.sqlite import SqliteStore

KEY = ("acme", "s", "l")
M1 = MachineRef("acme", "s", "l", "m1")


@pytest.fixture()
def line(tmp_path):
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({"tenants": [{"slug": "acme", "timezone": "UTC", "sites": [
        {"slug": "s", "lines": [{"slug": "l", "machines": [{"slug": "m1"}, {"slug": "m2"}]}]}]}]}))
    store = SqliteStore(tmp_path / "s.db")
    now = int(time.time() * 1000)
    store.write([Point(M1, now - 10_000 + i * 1000, {"state": S.PROCESSING}) for i in range(10)])
    yield plant, store
    store.close()
    plant.close()


def _state(snap: tuple[dict, bytes], machine: str = "m1") -> int | None:
    return next(t["state"] for t in snap[0]["machines"] if t["machine"] == machine)


def _write_state(store: SqliteStore, state: int) -> None:
    store.write([Point(M1, int(time.time() * 1000), {"state": state})])


def test_a_probe_computes_a_state_change_into_a_snapshot_younger_than_its_ttl(line):
    plant, store = line
    cache = SnapshotCache(plant, store, lambda tenant: Policy(), ttl_s=3600)
    first = cache.get_with_json(*KEY)
    assert _state(first) == S.PROCESSING
    assert cache.get_with_json(*KEY, probe=True) is first  # nothing new: the probe computes nothing
    _write_state(store, S.FAULT)
    assert cache.get_with_json(*KEY) is first  # a plain read keeps the fresh snapshot
    changed = cache.get_with_json(*KEY, probe=True)
    assert _state(changed) == S.FAULT and changed[0]["version"] != first[0]["version"]


def test_the_same_state_sampled_again_is_not_a_change_but_a_return_from_staleness_is(line):
    plant, store = line
    cache = SnapshotCache(plant, store, lambda tenant: Policy(stale_s=10), ttl_s=3600)
    first = cache.get_with_json(*KEY)
    _write_state(store, S.PROCESSING)
    assert cache.get_with_json(*KEY, probe=True) is first
    m2 = MachineRef("acme", "s", "l", "m2")
    store.write([Point(m2, int(time.time() * 1000) - 60_000, {"state": S.IDLE})])  # no feed folded it in yet
    assert _state(cache.get_with_json(*KEY, probe=True), "m2") is None  # a minute old: stale
    store.write([Point(m2, int(time.time() * 1000), {"state": S.IDLE})])  # the same state after a stale gap
    assert _state(cache.get_with_json(*KEY, probe=True), "m2") == S.IDLE


def test_one_refresh_wakes_every_stream_of_the_line_with_the_new_state(line):
    plant, store = line
    cache = SnapshotCache(plant, store, lambda tenant: Policy(), ttl_s=3600)  # only the probe can show it
    calls = []
    real = cache.get_with_json

    def counted(*args):
        calls.append(args)
        return real(*args)

    cache.get_with_json = counted  # type: ignore[method-assign]

    async def main() -> None:
        follows = Follows(cache, every_s=0.02)
        first = real(*KEY)
        watches = [follows.join(KEY, first) for _ in range(50)]
        assert all(w is watches[0] for w in watches) and follows.following() == [KEY]
        tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("follow ")]
        assert len(tasks) == 1  # one refresh for the line, however many streams

        async def stream(watch) -> float:
            while _state(watch.snap) != S.FAULT:
                await watch.wait(30.0)  # longer than the deadline below: only the refresh's wake-up is in time
            return time.monotonic()

        waiting = [asyncio.create_task(stream(w)) for w in watches]
        await asyncio.sleep(0)  # a stream's first look: the old state
        written = time.monotonic()
        await asyncio.to_thread(_write_state, store, S.FAULT)
        seen = await asyncio.wait_for(asyncio.gather(*waiting), 10)
        assert max(seen) - written < 5.0
        refreshes = len(calls)
        for w in watches:
            follows.leave(w)
        await asyncio.wait(tasks, timeout=10)  # a refresh under way in its thread finishes first
        assert follows.following() == [] and tasks[0].done()  # the line's last stream ended its refresh
        assert all(args == (*KEY, True) for args in calls) and refreshes >= 1

    asyncio.run(main())


class FlakyStore:
    """The SQLite store, unavailable on demand (as InfluxDB down)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store, self.down = store, False

    def __getattr__(self, name):
        def call(*args, **kwargs):
            if self.down:
                raise StoreUnavailable("connection refused")
            return getattr(self.store, name)(*args, **kwargs)
        return call


def test_a_store_outage_wakes_the_streams_with_its_error_and_the_refresh_resumes(line):
    plant, store = line
    flaky = FlakyStore(store)
    cache = SnapshotCache(plant, flaky, lambda tenant: Policy(), ttl_s=3600)  # type: ignore[arg-type]

    async def main() -> None:
        follows = Follows(cache, every_s=0.02, retry_s=0.05)
        watch = follows.join(KEY, cache.get_with_json(*KEY))
        flaky.down = True
        while watch.errors == 0:
            await watch.wait(30.0)
        assert watch.error == "connection refused"
        flaky.down = False
        await asyncio.to_thread(_write_state, store, S.FAULT)
        while _state(watch.snap) != S.FAULT:
            await watch.wait(30.0)
        assert watch.error == ""
        follows.leave(watch)

    asyncio.run(asyncio.wait_for(main(), 20))


def test_an_expired_snapshot_is_served_while_one_recompute_runs_and_the_next_request_gets_the_new_one(line,
                                                                                                        monkeypatch):
    """Stale-while-revalidate (api.routers.dashboards._snapshot): no request waits for a recomputation."""
    import threading

    from api.routers import dashboards

    plant, store = line
    cache = SnapshotCache(plant, store, lambda tenant: Policy(), ttl_s=0.0)  # every snapshot expired at once
    first = asyncio.run(dashboards.line_snapshot(cache, *KEY))  # the line's first: computed and awaited
    assert _state(first) == S.PROCESSING
    release, calls, real = threading.Event(), [], cache.get_with_json

    def held(*key, **kw):
        calls.append(key)
        assert release.wait(30)
        return real(*key, **kw)

    cache.get_with_json = held  # type: ignore[method-assign]
    _write_state(store, S.IDLE)

    async def two_viewers():
        return await asyncio.gather(dashboards.line_snapshot(cache, *KEY), dashboards.line_snapshot(cache, *KEY))

    assert asyncio.run(two_viewers()) == [first, first]  # both served at once, the recomputation held
    deadline = time.monotonic() + 30
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(calls) == 1  # one recomputation for both
    release.set()
    while len(dashboards._FLIGHTS) and time.monotonic() < deadline:
        time.sleep(0.01)
    newer = asyncio.run(dashboards.line_snapshot(cache, *KEY))
    assert newer is not first and _state(newer) == S.IDLE
    # older than STALE_S: awaited, not served
    monkeypatch.setattr(dashboards, "STALE_S", 0.0)
    _write_state(store, S.PROCESSING)
    assert _state(asyncio.run(dashboards.line_snapshot(cache, *KEY))) == S.PROCESSING

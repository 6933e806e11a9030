"""api.caches.Revalidating: stale-while-revalidate with one computation per key (no timing: ttl 0 = always due)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from api.caches import Revalidating


def _until(done, what: str) -> None:
    deadline = time.monotonic() + 30
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@pytest.fixture()
def executor():
    pool = ThreadPoolExecutor(2)
    yield pool
    pool.shutdown(wait=False, cancel_futures=True)


def test_a_due_value_is_served_while_one_refresh_runs_and_the_next_request_gets_the_new_one(executor):
    cache: Revalidating[str, str] = Revalidating(100, ttl_s=0.0, stale_s=60.0, executor=executor)
    calls: list[str] = []
    release, started = threading.Event(), threading.Event()

    def first() -> str:
        calls.append("first")
        assert started.wait(30)  # until the three requests are all waiting for it
        return "v1"

    def held() -> str:
        calls.append("held")
        assert release.wait(30)
        return "v2"

    async def three(compute):
        waiting = [asyncio.ensure_future(cache.get("k", compute)) for _ in range(3)]
        await asyncio.sleep(0)  # each has asked
        started.set()
        return await asyncio.gather(*waiting)

    assert asyncio.run(three(first)) == ["v1"] * 3 and calls == ["first"]  # nothing at hand: awaited, computed once
    assert asyncio.run(three(held)) == ["v1"] * 3  # due: served at once while the refresh is held
    _until(lambda: calls == ["first", "held"], "one refresh for the three requests")
    release.set()
    _until(lambda: len(cache._flights) == 0, "the refresh ended")
    assert asyncio.run(cache.get("k", lambda: "v3")) == "v2"  # the refreshed value (v3 is computed behind it)


def test_a_failed_refresh_keeps_the_stale_value_and_without_one_the_error_reaches_the_caller(executor):
    cache: Revalidating[str, str] = Revalidating(100, ttl_s=0.0, stale_s=60.0, executor=executor)

    def broken() -> str:
        raise LookupError("no such machine")

    assert asyncio.run(cache.get("k", lambda: "v1")) == "v1"
    assert asyncio.run(cache.get("k", broken)) == "v1"
    _until(lambda: len(cache._flights) == 0, "the refresh ended")
    assert asyncio.run(cache.get("k", lambda: "v2")) == "v1"  # still the stale one, refreshed behind it
    with pytest.raises(LookupError):
        asyncio.run(cache.get("other", broken))


def test_a_dropped_entry_is_computed_again_before_it_is_served(executor):
    cache: Revalidating[tuple, str] = Revalidating(100, ttl_s=60.0, stale_s=600.0, executor=executor)
    assert asyncio.run(cache.get(("acme", 1), lambda: "old")) == "old"
    assert asyncio.run(cache.get(("acme", 1), lambda: "new")) == "old"  # fresh: not computed
    assert cache.drop_where(lambda key: key[0] == "acme") == 1
    assert asyncio.run(cache.get(("acme", 1), lambda: "new")) == "new"

"""api.access.PrincipalCache.lookup: one lookup per caller at a time, renewed before it expires (no timing)."""

from __future__ import annotations

import asyncio
import threading

from api import access
from api.access import Principal, PrincipalCache
from plantmodel.db import Role


def _principal(name: str, language: str = "ko") -> Principal:
    return Principal(name, Role.SME_OWNER, "acme", language, frozenset({"acme"}))


def test_requests_of_a_caller_without_an_entry_share_one_lookup(monkeypatch):
    calls: list[str] = []
    go = threading.Event()

    def resolve(plant, cookie, authorization):
        calls.append(cookie)
        assert go.wait(30)
        return _principal(cookie)

    monkeypatch.setattr(access, "resolve", resolve)
    cache = PrincipalCache(ttl_s=3600)

    async def five():
        waiting = [asyncio.ensure_future(cache.lookup(None, "c1", None)) for _ in range(5)]  # type: ignore[arg-type]
        await asyncio.sleep(0)
        go.set()
        return await asyncio.gather(*waiting)

    assert [p.username for p in asyncio.run(five())] == ["c1"] * 5
    assert calls == ["c1"]


def test_an_entry_in_use_is_renewed_in_the_background_and_served_meanwhile(monkeypatch):
    answers = iter([_principal("c1", "ko"), _principal("c1", "en")])
    monkeypatch.setattr(access, "resolve", lambda plant, cookie, authorization: next(answers))
    cache = PrincipalCache(ttl_s=3600)
    assert cache.get(None, "c1", None).language == "ko"  # type: ignore[arg-type, union-attr]
    cache.REFRESH_AT = 0.0  # every entry is due for renewal

    async def one():
        served = await cache.lookup(None, "c1", None)  # type: ignore[arg-type]
        while len(cache._flights):  # the renewal, which this request did not wait for
            await asyncio.sleep(0.01)
        return served

    assert asyncio.run(one()).language == "ko"
    assert cache.peek("c1", None).language == "en"  # type: ignore[union-attr]


def test_a_lookup_that_ran_across_a_logout_is_not_kept(monkeypatch):
    started, go = threading.Event(), threading.Event()

    def resolve(plant, cookie, authorization):
        started.set()
        assert go.wait(30)
        return _principal(cookie)  # read before the logout was committed

    monkeypatch.setattr(access, "resolve", resolve)
    cache = PrincipalCache(ttl_s=3600)

    async def across_logout():
        lookup = asyncio.ensure_future(cache.lookup(None, "c1", None))  # type: ignore[arg-type]
        assert await asyncio.get_running_loop().run_in_executor(None, started.wait, 30)
        cache.forget("c1")  # the logout, in this worker
        go.set()
        return await lookup

    assert asyncio.run(across_logout()).username == "c1"  # that request was already under way
    assert cache.peek("c1", None) is None  # the next one looks the caller up again

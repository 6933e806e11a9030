"""The API's caches under threads: N threads x M operations at once, then invariants (no timing).

Request threads, the event loop and the alarm thread use these caches together; a cache that
iterates a dict another thread inserts into, or bumps a counter with ``+= 1``, fails here.
The interpreter is made to switch threads as often as it can, so interleavings are many.
"""

from __future__ import annotations

import sys
import threading

import pytest

from api import access
from api.access import Principal, PrincipalCache
from api.caches import Revision, SharedCache
from api.live import RecentAnswers
from plantmodel.db import Role

N = 8


@pytest.fixture(autouse=True)
def _switch_threads_often():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def _hammer(work, m: int) -> list[BaseException]:
    """Run ``work(thread, step)`` for m steps in each of N threads started together; the errors raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(N)

    def run(i: int) -> None:
        start.wait()
        try:
            for j in range(m):
                work(i, j)
        except BaseException as exc:  # noqa: B036 - any failure in a thread is the test's failure
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_answers_survive_puts_and_invalidations_from_many_threads():
    answers = RecentAnswers(ttl_s=3600, maxsize=500)

    def work(i: int, j: int) -> None:
        tenant = f"t{j % 7}"
        if i % 2:
            answers.put((tenant, i, j % 300), [j])
        else:
            answers.invalidate(tenant)
            answers.fresh((tenant, i, j))

    assert _hammer(work, 3000) == []
    assert len(answers._entries) <= 500  # bounded, without dropping everything at once
    for k in range(10):
        answers.put(("t1", "after", k), k)
        answers.put(("t2", "after", k), k)
    answers.invalidate("t1")  # exactly the tenant's answers go
    assert [answers.fresh(("t1", "after", k)) for k in range(10)] == [None] * 10
    assert [answers.fresh(("t2", "after", k)) for k in range(10)] == [str(k).encode() for k in range(10)]


def test_revision_bumps_from_many_threads_are_all_counted():
    """CPython 3.11's GIL happens to keep ``+= 1`` whole; a free-threaded build does not, the lock does."""
    revision = Revision()
    assert _hammer(lambda i, j: revision.bump(), 5000) == []
    assert revision.value == N * 5000


def test_principal_cache_survives_lookups_and_logouts_from_many_threads(monkeypatch):
    calls = Revision()

    def resolve(plant, cookie, authorization):
        calls.bump()
        return Principal(cookie or "token", Role.SME_OWNER, "acme", "ko", frozenset({"acme"}))

    monkeypatch.setattr(access, "resolve", resolve)
    cache = PrincipalCache(ttl_s=3600, maxsize=200)

    def work(i: int, j: int) -> None:
        cookie = f"c{(i * 7 + j) % 1000}"
        if i % 2:
            assert cache.get(None, cookie, None).username == cookie  # type: ignore[union-attr, arg-type]
        else:
            cache.forget(cookie)
            cache.peek(cookie, None)

    assert _hammer(work, 3000) == []
    assert len(cache._entries) <= 200
    cache.get(None, "kept", None)  # type: ignore[arg-type]
    cache.get(None, "gone", None)  # type: ignore[arg-type]
    before = calls.value
    cache.forget("gone")
    assert cache.peek("gone", None) is None and cache.peek("kept", None) is not None
    cache.forget_user("kept")  # a password change or deactivation in this worker
    assert cache.peek("kept", None) is None
    assert calls.value == before  # peek never resolves


def test_shared_cache_get_or_put_makes_one_value_per_key():
    cache: SharedCache[str, object] = SharedCache(maxsize=1000)
    seen: dict[str, set[int]] = {}
    lock = threading.Lock()

    def work(i: int, j: int) -> None:
        key = f"k{j % 50}"
        value = cache.get_or_put(key, object)
        with lock:
            seen.setdefault(key, set()).add(id(value))

    assert _hammer(work, 2000) == []
    assert all(len(ids) == 1 for ids in seen.values()) and len(seen) == 50  # every thread got the same object


def test_snapshots_are_computed_once_per_line_at_a_time_while_invalidated(tmp_path, monkeypatch):
    """Many viewers and invalidations at once: no errors, and never two computations on one line's feeds together.

    Four lines share three places: a line evicted while it is computed gets new feeds next time.
    """
    from analytics.policy import Policy
    from api import live
    from plantmodel.admin import PlantSeed, apply_seed
    from plantmodel.db import open_plant
    from tsstore.sqlite import SqliteStore

    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({"tenants": [{"slug": t, "sites": [{"slug": "s", "lines": [
        {"slug": "l1", "machines": [{"slug": "m"}]}, {"slug": "l2", "machines": [{"slug": "m"}]}]}]} for t in ("a", "b")]}))
    running: dict[tuple, int] = {}
    most = Revision()
    guard = threading.Lock()
    real = live.build_snapshot

    def counted(model, store, alarms, now_ms, policy, feeds):
        key = id(feeds)
        with guard:
            running[key] = running.get(key, 0) + 1
            if running[key] > 1:
                most.bump()
        try:
            return real(model, store, alarms, now_ms, policy, feeds)
        finally:
            with guard:
                running[key] -= 1

    monkeypatch.setattr(live, "build_snapshot", counted)
    cache = live.SnapshotCache(plant, SqliteStore(tmp_path / "s.db"), lambda tenant: Policy(), max_lines=3)

    def work(i: int, j: int) -> None:
        tenant, line = ("a", "b")[j % 2], ("l1", "l2")[(i + j) % 2]
        if i == 0:
            cache.invalidate(tenant)
        else:
            assert cache.get(tenant, "s", line)["line"] == line

    assert _hammer(work, 40) == []
    assert most.value == 0
    assert len(cache._lines) <= 3

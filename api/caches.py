"""Bounded, thread-safe caches and counters for the API: ``cachetools`` under one lock each.

The API's caches are read on the event loop and written from request threads and the
alarm thread at once. ``cachetools`` does the bounding (least recently used entries go
first, expired entries on a clock) and is not thread-safe by itself, so every operation
here holds the cache's lock; iteration (``drop_where``) happens under it too, never over a
dict another thread is inserting into. The clock is read through ``time.monotonic`` at call
time, so a test may move it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from cachetools import Cache, LRUCache, TTLCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
log = logging.getLogger(__name__)


def _now() -> float:
    return time.monotonic()


class SharedCache(Generic[K, V]):
    """At most ``maxsize`` entries, each for at most ``ttl_s`` (None: until evicted), safe from any thread."""

    def __init__(self, maxsize: int, ttl_s: float | None = None) -> None:
        self.ttl_s = ttl_s
        self._cache: Cache[K, V] = LRUCache(maxsize) if ttl_s is None else TTLCache(maxsize, ttl_s, timer=_now)
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._cache.get(key)

    def put(self, key: K, value: V) -> V:
        with self._lock:
            self._cache[key] = value
        return value

    def get_or_put(self, key: K, make: Callable[[], V]) -> V:
        """The entry, or ``make()``'s result stored as it; ``make`` runs under the lock, so keep it trivial."""
        with self._lock:
            hit = self._cache.get(key)
            if hit is None:
                hit = self._cache[key] = make()
            return hit

    def update(self, key: K, change: Callable[[V | None], V | None]) -> V | None:
        """Replace the entry by ``change(entry)`` atomically (None: remove it); a new value starts a new ttl."""
        with self._lock:
            value = change(self._cache.get(key))
            if value is None:
                self._cache.pop(key, None)
            else:
                self._cache[key] = value
            return value

    def drop_items_where(self, doomed: Callable[[K, V], bool]) -> int:
        """Remove every entry for which ``doomed(key, value)`` is true; returns how many."""
        with self._lock:
            keys = [k for k, v in list(self._cache.items()) if doomed(k, v)]
            for k in keys:
                self._cache.pop(k, None)
            return len(keys)

    def values_where(self, wanted: Callable[[K], bool]) -> list[V]:
        """The entries whose key ``wanted`` says so, copied out under the lock."""
        with self._lock:
            return [v for k, v in list(self._cache.items()) if wanted(k)]

    def pop(self, key: K) -> V | None:
        with self._lock:
            return self._cache.pop(key, None)

    def drop_where(self, doomed: Callable[[K], bool]) -> int:
        """Remove every entry whose key ``doomed`` says so; returns how many."""
        with self._lock:
            keys = [k for k in list(self._cache.keys()) if doomed(k)]
            for k in keys:
                self._cache.pop(k, None)
            return len(keys)

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)


class Revision:
    """A counter that request threads and the alarm thread bump: ``+= 1`` on an attribute is not atomic."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def bump(self) -> int:
        with self._lock:
            self._value += 1
            return self._value

    @property
    def value(self) -> int:
        with self._lock:
            return self._value


class Flights(Generic[K, V]):
    """One computation per key at a time, in a worker thread; every caller of that key awaits the same one.

    Callers wait on the event loop, not in a thread: fifty viewers of one cold machine page
    hold no request threads while its answer is computed, so other requests go on being
    served. The computation runs in ``executor`` (a few threads: on a 2-core machine more
    parallel computations only take the GIL from the event loop) and finishes even when the
    caller that started it goes away, so its result is not lost.
    """

    def __init__(self, executor: concurrent.futures.Executor | None = None) -> None:
        self.executor = executor  # None: the loop's default executor
        self._running: dict[K, concurrent.futures.Future[V]] = {}
        self._lock = threading.Lock()

    def start(self, key: K, compute: Callable[[], V]) -> concurrent.futures.Future[V]:
        """The running computation of ``key``, or a new one; call on the event loop's thread."""
        with self._lock:
            running = self._running.get(key)
            if running is not None:
                return running
            future: concurrent.futures.Future[V] = concurrent.futures.Future()
            self._running[key] = future
        asyncio.get_running_loop().run_in_executor(self.executor, self._run, key, compute, future)
        return future

    async def run(self, key: K, compute: Callable[[], V]) -> V:
        return await asyncio.wrap_future(self.start(key, compute))

    def start_quietly(self, key: K, compute: Callable[[], V]) -> None:
        """Start (or join) the computation without waiting for it; a failure is logged, not raised."""
        self.start(key, compute).add_done_callback(_log_failure)

    def _run(self, key: K, compute: Callable[[], V], future: concurrent.futures.Future[V]) -> None:
        try:
            result = compute()
        except BaseException as exc:  # the callers get it: an HTTPException is their 404
            with self._lock:
                self._running.pop(key, None)
            future.set_exception(exc)
            return
        with self._lock:
            self._running.pop(key, None)
        future.set_result(result)

    def __len__(self) -> int:
        with self._lock:
            return len(self._running)


def _log_failure(future: concurrent.futures.Future) -> None:
    exc = future.exception()
    if exc is not None and not getattr(exc, "status_code", None):
        log.warning("background_refresh_failed error=%s: %s", type(exc).__name__, exc)


class Revalidating(Generic[K, V]):
    """Values per key, fresh for ``ttl_s``, then served up to ``stale_s`` old while one refresh runs.

    For answers every page load asks for (the plant trees, the history pages' machine names): with a
    plain ttl, every request that arrived while the expired entry was recomputed ran the same query
    in a thread of its own, a herd every ``ttl_s`` that stood out in the p99 under load
    (bench/api.py). Here one computation per key runs at a time (``Flights``, in ``executor``); only
    a key not asked for in ``stale_s`` (or never) is awaited, on the event loop. A failure of a
    background refresh keeps the stale value (logged unless it is an HTTP error such as a 404); the
    next request after ``stale_s`` awaits a computation and gets the error. Call ``get`` on the
    event loop; safe with request threads writing other caches.
    """

    def __init__(self, maxsize: int, ttl_s: float, stale_s: float,
                 executor: concurrent.futures.Executor | None = None) -> None:
        self.ttl_s, self.stale_s = ttl_s, stale_s
        self._entries: SharedCache[K, tuple[float, V]] = SharedCache(maxsize, stale_s)
        self._flights: Flights[K, V] = Flights(executor)

    async def get(self, key: K, compute: Callable[[], V]) -> V:
        hit = self._entries.get(key)
        if hit is not None:
            if _now() - hit[0] >= self.ttl_s:
                self._flights.start_quietly(key, lambda: self._compute(key, compute))
            return hit[1]
        return await self._flights.run(key, lambda: self._compute(key, compute))

    def _compute(self, key: K, compute: Callable[[], V]) -> V:
        value = compute()
        self._entries.put(key, (_now(), value))
        return value

    def drop_where(self, doomed: Callable[[K], bool]) -> int:
        """Forget the entries whose key ``doomed`` says so: their next request awaits a computation."""
        return self._entries.drop_where(doomed)

    def __len__(self) -> int:
        return len(self._entries)


class SettledBuckets:
    """Settled buckets of a per-bucket store aggregate per key, so a long range costs its newest buckets.

    Buckets that ended more than ``settle_ms`` ago are kept (like the rollups: a gateway's
    replay lands within that margin) for ``ttl_s``, after which they are read again, so late
    history is picked up. The newer buckets that ended more than ``recent_ms`` ago are kept too,
    topped up as they end and read again after ``recent_ttl_s`` (late data there shows within
    that time); only the buckets of the last ``recent_ms`` are read per request.
    """

    def __init__(self, settle_ms: int = 2 * 3_600_000, ttl_s: float = 600.0, max_entries: int = 5000,
                 recent_ms: int = 5 * 60_000, recent_ttl_s: float = 120.0) -> None:
        self.settle_ms, self.ttl_s, self.max_entries = settle_ms, ttl_s, max_entries
        self.recent_ms, self.recent_ttl_s = recent_ms, recent_ttl_s
        self._entries: dict[tuple, tuple[float, int, list]] = {}
        self._recent: dict[tuple, tuple[float, int, int, list]] = {}  # (born, from, to, rows)
        self._lock = threading.Lock()

    def rows(self, key: tuple, a: int, z: int, every: int, now_ms: int, read: Callable[[int, int], list],
             ts_of: Callable[[Any], int]) -> list:
        """``read(lo, hi)``'s rows for [a, z), the settled ones from memory; rows are in bucket order."""
        settled = max(a, min(z, (now_ms - self.settle_ms) // every * every))
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
        born, done, head = hit if hit and now - hit[0] < self.ttl_s else (now, a, [])
        if settled > done:
            head = head + read(done, settled)
            done = settled
            with self._lock:
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
                self._entries[key] = (born, done, head)
        upto = min(done, z)
        out = [r for r in head if ts_of(r) < upto]
        ended = max(upto, min(z, (now_ms - self.recent_ms) // every * every))
        if ended > upto:
            with self._lock:
                rec = self._recent.get(key)
            r_born, r_from, r_to, r_rows = rec if rec and now - rec[0] < self.recent_ttl_s and rec[1] <= upto \
                and rec[2] >= upto else (now, upto, upto, [])
            if ended > r_to:  # top up with the buckets that ended since
                r_rows = r_rows + read(r_to, ended)
                r_to = ended
                with self._lock:
                    if len(self._recent) >= self.max_entries:
                        self._recent.clear()
                    self._recent[key] = (r_born, r_from, r_to, r_rows)
            out += [r for r in r_rows if upto <= ts_of(r) < ended]
            upto = ended
        return out + (read(upto, z) if z > upto else [])

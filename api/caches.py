"""Bounded, thread-safe caches and counters for the API: ``cachetools`` under one lock each.

The API's caches are read on the event loop and written from request threads and the
alarm thread at once. ``cachetools`` does the bounding (least recently used entries go
first, expired entries on a clock) and is not thread-safe by itself, so every operation
here holds the cache's lock; iteration (``drop_where``) happens under it too, never over a
dict another thread is inserting into. The clock is read through ``time.monotonic`` at call
time, so a test may move it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cachetools import Cache, LRUCache, TTLCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


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

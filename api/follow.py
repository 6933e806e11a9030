"""Followed lines: one refresh per line and worker, however many event streams follow it.

A line with open event streams (``/lines/{tenant}/{site}/{line}/events``) gets one task in
this worker that refreshes its snapshot every ``FOLLOW_S`` (``SnapshotCache.get_with_json``
with ``probe``: per machine, one read of its state tag since the last sample; a full
computation only if the snapshot is older than its ``ttl_s`` or a state changed) and wakes
the streams when the snapshot's version changes. So a machine's new state reaches every open
dashboard within about ``FOLLOW_S`` of being stored, and 50 streams cost one refresh, not 50
checks. Each worker follows on its own (its own cache); the task ends with the line's last
stream.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool

from api.live import LineNotFound, SnapshotCache
from tsstore import StoreUnavailable

log = logging.getLogger(__name__)

#: how often a followed line is refreshed (a state change shows within about this after it is stored)
FOLLOW_S = 0.2
#: while the store is unavailable, the refresh (and the streams' error event) comes this often
RETRY_S = 1.0

Key = tuple[str, str, str]


class LineWatch:
    """One followed line: its newest snapshot, its last refresh error, and the streams waiting for a change."""

    def __init__(self, key: Key, first: tuple[dict, bytes]) -> None:
        self.key = key
        self.snap = first
        self.followers = 0
        #: counts failed refreshes; ``error`` is the last one's message
        self.errors = 0
        self.error = ""
        #: set when the line is gone from the plant model: its streams end
        self.gone = False
        self.task: asyncio.Task | None = None
        self.loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()

    def offer(self, snap: tuple[dict, bytes]) -> None:
        """A snapshot computed elsewhere (a stream's first): kept if newer than the one at hand."""
        if snap[0]["generated_ms"] > self.snap[0]["generated_ms"]:
            self.snap = snap

    def notify(self) -> None:
        """Wake every stream waiting on the line (each then reads ``snap``, ``errors``, ``gone``)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait(self, timeout_s: float) -> None:
        """Until the next change, or ``timeout_s`` (the stream's own checks: session, keep-alive)."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout_s)
        except asyncio.TimeoutError:
            pass


class Follows:
    """The lines this worker's event streams follow."""

    def __init__(self, cache: SnapshotCache, every_s: float = FOLLOW_S, retry_s: float = RETRY_S) -> None:
        self.cache, self.every_s, self.retry_s = cache, every_s, retry_s
        self._watches: dict[Key, LineWatch] = {}

    def join(self, key: Key, first: tuple[dict, bytes]) -> LineWatch:
        """Follow ``key`` (on the running event loop); ``leave`` when the stream ends."""
        watch = self._watches.get(key)
        if watch is None or watch.loop is not asyncio.get_running_loop() or watch.task is None or watch.task.done():
            watch = self._watches[key] = LineWatch(key, first)
            watch.task = asyncio.get_running_loop().create_task(self._refresh(watch), name=f"follow {'/'.join(key)}")
        else:
            watch.offer(first)
        watch.followers += 1
        return watch

    def leave(self, watch: LineWatch) -> None:
        watch.followers -= 1
        if watch.followers <= 0:
            if self._watches.get(watch.key) is watch:
                del self._watches[watch.key]
            if watch.task is not None:
                watch.task.cancel()

    def following(self) -> list[Key]:
        return list(self._watches)

    async def _refresh(self, watch: LineWatch) -> None:
        while watch.followers > 0:
            await asyncio.sleep(self.every_s if not watch.error else self.retry_s)
            try:
                snap = await run_in_threadpool(self.cache.get_with_json, *watch.key, True)
            except StoreUnavailable as exc:
                watch.errors += 1
                watch.error = str(exc)
                watch.notify()
                continue
            except LineNotFound:
                watch.gone = True
                watch.notify()
                return
            except Exception:  # noqa: BLE001 - the line's streams must not lose their refresh to one failure
                log.exception("follow_refresh_failed line=%s", "/".join(watch.key))
                continue
            watch.error = ""
            if snap[0]["version"] != watch.snap[0]["version"]:
                watch.snap = snap
                watch.notify()

"""Exactly one API worker runs the background duties (alarm engine, rollup maintainer).

With ``api.workers`` > 1 every uvicorn worker builds the same app, but two alarm engines
would raise every alarm twice and two maintainers would tally every hour twice. The worker
that holds an exclusive ``flock`` on a lock file is the leader; the others retry every few
seconds, so when the leader dies (the kernel drops its lock with the process) another worker
takes the duties over within ``retry_s``. One host only: workers on several hosts would need
a database lock instead.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


class Leadership:
    """Try the lock now and then every ``retry_s``; call ``on_lead`` once it is held, ``on_resign`` at stop."""

    def __init__(self, lock_path: Path, on_lead: Callable[[], None], on_resign: Callable[[], None],
                 retry_s: float = 5.0) -> None:
        self.lock_path, self.on_lead, self.on_resign, self.retry_s = Path(lock_path), on_lead, on_resign, retry_s
        self.is_leader = False
        self._fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self._try():
            self._thread = threading.Thread(target=self._wait, name="leader-election", daemon=True)
            self._thread.start()

    def _try(self) -> bool:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd, self.is_leader = fd, True
        log.info("leader_elected pid=%d lock=%s duties=alarms,rollups", os.getpid(), self.lock_path)
        self.on_lead()
        return True

    def _wait(self) -> None:
        log.info("leader_standby pid=%d lock=%s retry_s=%g", os.getpid(), self.lock_path, self.retry_s)
        while not self._stop.wait(self.retry_s):
            if self._try():
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.retry_s + 1)
        if self.is_leader:
            self.on_resign()
            assert self._fd is not None
            os.close(self._fd)  # releases the flock
            self._fd, self.is_leader = None, False

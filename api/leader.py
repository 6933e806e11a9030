"""Exactly one API worker runs the background duties (alarms, rollups, housekeeping, report e-mails).

With several workers (``api.workers`` > 1, or API processes on several hosts) every worker
builds the same app, but two alarm engines would raise every alarm twice and two maintainers
would tally every hour twice. The worker holding the leader lock runs the duties; the others
retry every ``retry_s`` and take over when the leader dies.

Two locks, picked by the plant database (``leader_lock_for``):

- SQLite (one host): an exclusive ``flock`` on ``api.leader_lock``. The kernel drops it with
  the process, so a killed leader is replaced within ``retry_s``.
- PostgreSQL (any number of hosts): a session-level advisory lock (``pg_try_advisory_lock``)
  held on a dedicated connection. The server drops it with the connection: when the leader's
  process dies (its socket closes), when its backend is terminated, or, for a leader that went
  silent (frozen, cut off by the network), after ``idle_session_timeout`` = ``lease_s``. The
  leader checks its lock every ``check_s``; when a check fails (a check is bounded by a quarter
  of the lease, a dead network by half of it) it resigns its duties at once, before the server
  can hand the lock on, so two leaders do not run side by side (short of a process frozen
  mid-duty for longer than the lease; see docs/scaling.md).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

DUTIES = "alarms,rollups,housekeeping,report-mail"

#: The advisory lock's key: one per plant database (advisory locks are scoped to a database).
#: Chosen once ("smartLdr" in ASCII); any other process using advisory locks must avoid it.
ADVISORY_KEY = int.from_bytes(b"smartLdr", "big") & 0x7FFF_FFFF_FFFF_FFFF


class LeaderLock(Protocol):
    def acquire(self) -> bool:
        """Take the lock if it is free; False if another worker holds it (or it cannot be reached)."""

    def healthy(self) -> bool:
        """Whether the lock is still ours; called every ``check_s`` while leading."""

    def release(self) -> None: ...

    def describe(self) -> str: ...

    #: How long a new holder waits (still holding) before it starts the duties: long enough for a
    #: previous holder that lost the lock to notice and stop (0 when a lost lock means a dead holder).
    takeover_grace_s: float


class FileLock:
    """An exclusive ``flock`` on a file; the file holds the leader's pid for operators. One host only."""

    takeover_grace_s = 0.0  # the kernel drops a flock only with its holder's process (or its own release)

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def healthy(self) -> bool:
        return self._fd is not None  # a held flock cannot be taken away

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None

    def describe(self) -> str:
        return f"lock=file:{self.path}"


class PostgresLock:
    """``pg_try_advisory_lock`` on a connection of its own (not the pool's), in autocommit.

    The connection carries its own limits so that a leader never outlives its lock unknowingly:
    ``idle_session_timeout`` (PostgreSQL 14+) lets the server end a session that stopped checking
    in, TCP keepalives and ``tcp_user_timeout`` make the client notice a dead network within half
    the lease, and ``statement_timeout`` bounds each check to an eighth of it.

    The server hands a terminated session's lock on at once, while its old holder notices only
    at its next check (every second). So a new holder waits a quarter of the lease before it
    starts the duties (``takeover_grace_s``), by which time the old one has stopped its own.
    """

    def __init__(self, url: str, key: int = ADVISORY_KEY, lease_s: float = 20.0, connect_timeout_s: int = 5) -> None:
        self.url, self.key, self.lease_s, self.connect_timeout_s = url, key, lease_s, connect_timeout_s
        self.takeover_grace_s = lease_s / 4
        self._engine = None
        self._conn = None
        self._warned_no_idle_timeout = False

    def _connect(self):
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        if self._engine is None:
            half_ms = int(self.lease_s * 500)
            self._engine = create_engine(self.url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args={
                "application_name": "smartfactory-api-leader", "connect_timeout": self.connect_timeout_s,
                "keepalives": 1, "keepalives_idle": max(1, int(self.lease_s / 4)), "keepalives_interval": 1,
                "keepalives_count": 3, "tcp_user_timeout": half_ms})
        return self._engine.connect()

    def acquire(self) -> bool:
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        try:
            conn = self._connect()
        except SQLAlchemyError as exc:
            log.warning("leader_lock_unreachable %s error=%s", self.describe(), _first_line(exc))
            return False
        try:
            conn.execute(text("SELECT set_config('statement_timeout', :t, false)"), {"t": f"{int(self.lease_s * 125)}ms"})
            try:
                conn.execute(text("SELECT set_config('idle_session_timeout', :t, false)"),
                             {"t": f"{int(self.lease_s * 1000)}ms"})
            except SQLAlchemyError as exc:  # PostgreSQL < 14: a frozen leader holds the lock until TCP gives up
                if not self._warned_no_idle_timeout:
                    log.warning("leader_lock_no_idle_timeout %s error=%s: a silent leader keeps the lock until its "
                                "TCP connection dies; PostgreSQL 14 or newer ends it after the lease", self.describe(),
                                _first_line(exc))
                    self._warned_no_idle_timeout = True
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
        except SQLAlchemyError as exc:
            log.warning("leader_lock_failed %s error=%s", self.describe(), _first_line(exc))
            _close_quietly(conn)
            return False
        if not got:
            _close_quietly(conn)
            return False
        self._conn = conn
        return True

    def healthy(self) -> bool:
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        if self._conn is None:
            return False
        try:
            # not just SELECT 1: the lock must still be held by this very session
            held = self._conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted "
                "AND classid = :hi AND objid = :lo AND objsubid = 1"),
                {"hi": self.key >> 32, "lo": self.key & 0xFFFF_FFFF}).scalar()
        except SQLAlchemyError as exc:
            log.warning("leader_lock_connection_lost %s error=%s", self.describe(), _first_line(exc))
            return False
        return bool(held)

    def release(self) -> None:
        """Closing the session releases its advisory locks; an explicit unlock first is a courtesy."""
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        except SQLAlchemyError:
            pass  # the connection is gone: so is the lock
        _close_quietly(conn)

    def describe(self) -> str:
        from plantmodel.db import redacted

        return f"lock=postgresql-advisory:{self.key} database={redacted(self.url)}"


def _close_quietly(conn) -> None:
    try:
        conn.close()
    except Exception:  # a broken connection may fail to close; it is dropped either way
        pass


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def leader_lock_for(database_url: str, lock_path: Path, lease_s: float = 20.0) -> LeaderLock:
    """The advisory lock when the plant database is PostgreSQL (workers on any host), else the file lock."""
    if database_url.startswith("postgresql"):
        return PostgresLock(database_url, lease_s=lease_s)
    return FileLock(lock_path)


class Leadership:
    """Try the lock now and then every ``retry_s``; ``on_lead`` once it is held, ``on_resign`` when it is lost or at stop.

    While leading, the lock is checked every ``check_s``; a lost lock (a dropped database
    connection) resigns the duties at once and goes back to standby. ``check_s`` must stay well
    under the lock's ``takeover_grace_s``.
    """

    def __init__(self, lock: LeaderLock | Path | str, on_lead: Callable[[], None], on_resign: Callable[[], None],
                 retry_s: float = 5.0, check_s: float = 1.0) -> None:
        self.lock: LeaderLock = FileLock(lock) if isinstance(lock, (Path, str)) else lock
        self.on_lead, self.on_resign, self.retry_s, self.check_s = on_lead, on_resign, retry_s, check_s
        self.grace_s = float(getattr(self.lock, "takeover_grace_s", 0.0))
        self.is_leader = False
        self.terms = 0  # how many times this worker became leader
        self._transition = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def lock_path(self) -> Path | None:
        return getattr(self.lock, "path", None)

    def start(self) -> None:
        """Without a takeover grace the first try is made here, so the duties run before requests are served;
        with one it is made at once on the election thread (the wait must not hold up the app's start)."""
        self._stop.clear()
        if not self.grace_s:
            self._try()
        self._thread = threading.Thread(target=self._watch, name="leader-election", daemon=True)
        self._thread.start()

    def _try(self) -> bool:
        with self._transition:
            if self._stop.is_set() or self.is_leader:
                return self.is_leader
            if not self.lock.acquire():
                return False
            if self.grace_s:
                log.info("leader_lock_acquired pid=%d %s; duties start in %gs (takeover grace)", os.getpid(),
                         self.lock.describe(), self.grace_s)
                if self._stop.wait(self.grace_s) or not self.lock.healthy():
                    self.lock.release()
                    return False
            self.is_leader = True
            self.terms += 1
            log.info("leader_elected pid=%d %s duties=%s", os.getpid(), self.lock.describe(), DUTIES)
            self.on_lead()
            return True

    def _watch(self) -> None:
        if self.grace_s:  # start() left the first try to this thread
            self._try()
        if not self.is_leader:
            log.info("leader_standby pid=%d %s retry_s=%g", os.getpid(), self.lock.describe(), self.retry_s)
        while True:
            if self.is_leader:
                if self._stop.wait(self.check_s):
                    return
                if not self.lock.healthy():
                    self._resign("lock_lost")
            else:
                if self._stop.wait(self.retry_s):
                    return
                self._try()

    def _resign(self, reason: str) -> None:
        with self._transition:
            if not self.is_leader:
                return
            started = time.monotonic()
            self.is_leader = False
            try:
                self.on_resign()
            finally:
                self.lock.release()
            log.warning("leader_resigned pid=%d reason=%s %s duties=%s stopped_in_s=%.2f; standing by, retry_s=%g",
                        os.getpid(), reason, self.lock.describe(), DUTIES, time.monotonic() - started, self.retry_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.grace_s + 15)  # a connect or a check in progress ends within that
        with self._transition:
            if self.is_leader:
                self.is_leader = False
                try:
                    self.on_resign()
                finally:
                    self.lock.release()

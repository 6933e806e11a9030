"""Range answers shared by the API workers of one host, in a small SQLite file beside the config.

Each worker keeps its answers in memory (``api.routers.history.Answers``); without this, every
worker computed each machine page's answer itself. With two workers that doubled the work, and
after a restart a viewer whose connection reached the worker that had not computed a page yet
waited for it while the other worker held it (bench/api.py, "start-up": p95 0.6-2 s for the
first seconds on 2 workers). An answer computed by one worker is written here; another
worker missing it in memory reads it (under a millisecond) before computing it. It is a cache:
entries expire with the answer's own freshness, a lost file loses nothing, and any error
reading or writing it makes that request compute its answer as before, never fail.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: entries older than this are deleted (every answer's freshness is far shorter)
KEEP_S = 900.0
#: the deletion runs after this many writes from a worker
PRUNE_EVERY = 500


class AnswerStore:
    """Serialised answers by key, with the wall-clock time they were computed; safe from any thread."""

    def __init__(self, path: Path, keep_s: float = KEEP_S) -> None:
        self.path, self.keep_s = Path(path), keep_s
        self._local = threading.local()  # one connection per thread: sqlite3 connections stay in their thread
        self._writes = itertools.count(1)  # next() on it is one step under the GIL: no increment is lost
        self._warned_at = 0.0

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=0.2, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")  # a cache: a crash may lose the newest entries, nothing else
            db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, at REAL NOT NULL, body BLOB NOT NULL)")
            self._local.db = db
        return db

    def get(self, key: str, max_age_s: float) -> tuple[float, bytes] | None:
        """(age in seconds, body) of ``key`` if it was computed under ``max_age_s`` ago, else None."""
        try:
            row = self._db().execute("SELECT at, body FROM answers WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            self._warn("read", exc)
            return None
        if row is None:
            return None
        age = time.time() - row[0]
        return (max(age, 0.0), bytes(row[1])) if age < max_age_s else None

    def put(self, key: str, body: bytes) -> None:
        try:
            db = self._db()
            db.execute("INSERT OR REPLACE INTO answers (key, at, body) VALUES (?, ?, ?)", (key, time.time(), body))
            if next(self._writes) % PRUNE_EVERY == 0:
                db.execute("DELETE FROM answers WHERE at < ?", (time.time() - self.keep_s,))
        except sqlite3.Error as exc:
            self._warn("write", exc)

    def _warn(self, what: str, exc: sqlite3.Error) -> None:
        if time.monotonic() - self._warned_at > 60:  # once a minute: every request would otherwise log it
            self._warned_at = time.monotonic()
            log.warning("shared_answers_unavailable op=%s path=%s error=%s (answers are computed in this worker "
                        "meanwhile)", what, self.path, exc)

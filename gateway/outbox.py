"""The disk outbox: every sample is committed here before anything tries to publish it.

SQLite in WAL mode, one row per sample, in poll order. A row leaves only when the broker
has acknowledged the message that carried it (PUBACK), so a broker outage, a network cut
or a SIGKILL of the gateway loses nothing that was committed. The file is opened, never
recreated: a restart resumes from the rows still there.

Two connections: the polling side appends (``append``), the forwarder thread reads and
deletes (``batch``, ``delete``). WAL lets them work side by side.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    machine TEXT NOT NULL,
    ts INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Row:
    id: int
    machine: str  # "tenant/site/line/machine", enough to rebuild the topic even if the config changed
    ts: int
    values: dict
    size: int = 0  # bytes of the values as JSON, for packing messages


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT on an autocommit connection (rolled back on error)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL: a commit survives the process being killed (it is in the OS); FULL would
    # also survive power loss at a cost of an fsync per poll.
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class OutboxError(Exception):
    """The outbox file cannot be opened; the message says where and what to change."""


class Outbox:
    def __init__(self, path: Path, max_samples: int) -> None:
        self.path = Path(path)
        self.max_samples = max_samples
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = _connect(self.path)
            self._writer.executescript(_SCHEMA)
            self._reader = _connect(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(
                f"cannot open the outbox {self.path}: {exc}; set gateway.outbox.path to a file on a writable, "
                "persistent disk (the gateway keeps unsent samples there)"
            ) from None
        self._lock = threading.Lock()  # guards the counters below
        self._count = self._writer.execute("SELECT count(*) FROM outbox").fetchone()[0]
        row = self._writer.execute("SELECT value FROM counters WHERE name='dropped'").fetchone()
        self.dropped = row[0] if row else 0
        self.new_rows = threading.Event()
        self._last_drop_log = -1e9
        if self._count:
            log.info("outbox_resumed path=%s pending=%d dropped_total=%d", self.path, self._count, self.dropped)
            self.new_rows.set()

    @property
    def pending(self) -> int:
        return self._count

    def append(self, machine: str, ts_ms: int, values: dict) -> None:
        """Commit one sample; past ``max_samples`` the oldest rows make room (and are counted)."""
        body = json.dumps(values, separators=(",", ":"), allow_nan=False)
        self._writer.execute("INSERT INTO outbox (machine, ts, body) VALUES (?, ?, ?)", (machine, ts_ms, body))
        with self._lock:
            self._count += 1
            over = self._count - self.max_samples
        if over > 0:
            self._drop_oldest(max(over, self.max_samples // 100))  # make room in steps, not per row
        self.new_rows.set()

    def _drop_oldest(self, n: int) -> None:
        with _transaction(self._writer):  # the rows and the counter move together
            cur = self._writer.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)", (n,)
            )
            dropped = cur.rowcount
            self._writer.execute(
                "INSERT INTO counters (name, value) VALUES ('dropped', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (dropped,),
            )
        with self._lock:
            self._count -= dropped
            self.dropped += dropped
        now = time.monotonic()
        if now - self._last_drop_log >= 10:  # a full outbox drops on every poll: say so every 10 s
            self._last_drop_log = now
            log.warning("outbox_full dropped_oldest=%d dropped_total=%d max_samples=%d", dropped, self.dropped,
                        self.max_samples)

    def batch(self, after_id: int, limit: int) -> list[Row]:
        """The oldest rows with id > after_id, in order."""
        rows = self._reader.execute(
            "SELECT id, machine, ts, body FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        ).fetchall()
        return [Row(i, m, ts, json.loads(body), len(body)) for i, m, ts, body in rows]

    def delete(self, ids: list[int]) -> None:
        if not ids:
            return
        with _transaction(self._reader):  # one commit for the whole batch
            cur = self._reader.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
        with self._lock:
            self._count -= cur.rowcount if cur.rowcount >= 0 else len(ids)

    def close(self) -> None:
        self._writer.close()
        self._reader.close()

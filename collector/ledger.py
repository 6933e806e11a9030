"""The collector's own durable state: the spool and the dead letters, in one SQLite file.

Why SQLite (WAL, synchronous=FULL) rather than an append-only file with fsync: a commit is
atomic, so a power cut mid-append leaves the last whole batch, never a torn record that a
reader must detect with checksums; rows keep their insertion order (INTEGER PRIMARY KEY),
so draining oldest-first and deleting what was stored is one indexed range each; and the
operator can read the dead letters with ``smartfactory dead-letters`` (or any
sqlite3 shell) while the collector keeps writing. Each commit is one fsync of the WAL, and
the collector commits once per batch, not per message.

The spool holds raw accepted messages (topic and payload as received), not encoded points:
spooling then costs no encoding, and draining decodes them again with the same contract.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "collector.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ms INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    payload_bytes INTEGER NOT NULL,
    truncated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_reason ON dead_letters (reason, id);
"""


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    id: int
    received_ms: int
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message (or, for ``store_rejected``, one point re-encoded as a v1 message) that was not stored."""

    received_ms: int
    reason: str
    detail: str
    topic: str
    payload: bytes
    payload_bytes: int = -1  # original size; -1 = len(payload)
    truncated: bool = False
    id: int | None = None


def _connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30, check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: what the collector acknowledges because it is here must survive a power cut.
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
    return conn


class Ledger:
    """Spool and dead letters; used by one thread (the collector's store thread)."""

    def __init__(self, data_dir: Path, spool_max_bytes: int, dead_letter_max_payload_bytes: int,
                 dead_letter_max_bytes: int | None = None) -> None:
        self.path = Path(data_dir) / DB_NAME
        self.spool_max_bytes = spool_max_bytes
        self.dead_letter_max_payload_bytes = dead_letter_max_payload_bytes
        self.dead_letter_max_bytes = dead_letter_max_bytes
        self._conn = _connect(self.path)
        count, size = self._conn.execute("SELECT count(*), coalesce(sum(length(payload)), 0) FROM spool").fetchone()
        self.spool_messages: int = count
        self.spool_bytes: int = size
        (self.dead_letter_bytes,) = self._conn.execute(
            "SELECT coalesce(sum(length(payload)), 0) FROM dead_letters").fetchone()
        self.dead_letters_pruned = 0

    # -- spool -----------------------------------------------------------------------------
    def spool_has_room(self, payload_bytes: int) -> bool:
        """Room for this much more; an empty spool always takes one batch, however large."""
        return self.spool_messages == 0 or self.spool_bytes + payload_bytes <= self.spool_max_bytes

    def spool_append(self, messages: Sequence[tuple[int, str, bytes]]) -> None:
        """(received_ms, topic, payload) rows, durable when this returns."""
        if not messages:
            return
        with _transaction(self._conn):
            self._conn.executemany("INSERT INTO spool (received_ms, topic, payload) VALUES (?, ?, ?)", messages)
        self.spool_messages += len(messages)
        self.spool_bytes += sum(len(m[2]) for m in messages)

    def spool_head(self, limit: int) -> list[SpooledMessage]:
        rows = self._conn.execute(
            "SELECT id, received_ms, topic, payload FROM spool ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        return [SpooledMessage(i, r, t, bytes(p)) for i, r, t, p in rows]

    def spool_remove_through(self, last_id: int, messages: int, payload_bytes: int) -> None:
        with _transaction(self._conn):
            self._conn.execute("DELETE FROM spool WHERE id <= ?", (last_id,))
        self.spool_messages -= messages
        self.spool_bytes -= payload_bytes

    # -- dead letters -----------------------------------------------------------------------
    def add_dead_letters(self, letters: Iterable[DeadLetter]) -> int:
        cap = self.dead_letter_max_payload_bytes
        rows = [
            (d.received_ms, d.reason, d.detail[:2000], d.topic[:1000], d.payload[:cap],
             len(d.payload) if d.payload_bytes < 0 else d.payload_bytes, int(d.truncated or len(d.payload) > cap))
            for d in letters
        ]
        if rows:
            with _transaction(self._conn):
                self._conn.executemany(
                    "INSERT INTO dead_letters (received_ms, reason, detail, topic, payload, payload_bytes, truncated) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self.dead_letter_bytes += sum(len(r[4]) for r in rows)
                self._prune_dead_letters()
        return len(rows)

    def _prune_dead_letters(self) -> None:
        """Past dead_letter_max_bytes of payload, the oldest letters go: a flood of garbage must not fill
        the disk the spool needs. Counted in ``dead_letters_pruned``."""
        limit = self.dead_letter_max_bytes
        if limit is None or self.dead_letter_bytes <= limit:
            return
        excess = self.dead_letter_bytes - limit * 9 // 10  # prune to 90%, not one row per insert
        cut_id, cut_bytes, cut_rows = None, 0, 0
        for row_id, size in self._conn.execute("SELECT id, length(payload) FROM dead_letters ORDER BY id"):
            cut_id, cut_bytes, cut_rows = row_id, cut_bytes + size, cut_rows + 1
            if cut_bytes >= excess:
                break
        if cut_id is not None:
            self._conn.execute("DELETE FROM dead_letters WHERE id <= ?", (cut_id,))
            self.dead_letter_bytes -= cut_bytes
            self.dead_letters_pruned += cut_rows

    def close(self) -> None:
        self._conn.close()


class _transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def read_dead_letters(data_dir: Path, reason: str | None = None, limit: int | None = None,
                      after_id: int = 0) -> list[DeadLetter]:
    """Read-only view for operators and tests; works while the collector runs (WAL)."""
    path = Path(data_dir) / DB_NAME
    if not path.exists():
        return []
    conn = _connect(path, readonly=True)
    try:
        q = ("SELECT id, received_ms, reason, detail, topic, payload, payload_bytes, truncated FROM dead_letters "
             "WHERE id > ?")
        args: list = [after_id]
        if reason:
            q += " AND reason = ?"
            args.append(reason)
        q += " ORDER BY id"
        if limit:
            q += " LIMIT ?"
            args.append(limit)
        return [DeadLetter(r, reason_, detail, topic, bytes(payload), size, bool(trunc), id_)
                for id_, r, reason_, detail, topic, payload, size, trunc in conn.execute(q, args)]
    finally:
        conn.close()


def spool_status(data_dir: Path) -> tuple[int, int]:
    """(messages, payload bytes) waiting in the spool."""
    path = Path(data_dir) / DB_NAME
    if not path.exists():
        return 0, 0
    conn = _connect(path, readonly=True)
    try:
        return tuple(conn.execute("SELECT count(*), coalesce(sum(length(payload)), 0) FROM spool").fetchone())
    finally:
        conn.close()


def now_ms() -> int:
    return int(time.time() * 1000)

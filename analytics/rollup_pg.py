"""The rollup cache in PostgreSQL tables, so every API host reads (and a new leader keeps) the same rollups.

``RollupCache`` keeps finished hours in a SQLite file beside the store: right for one host,
but an API process on another host would compute its own, and a leader elected on another
host would start from nothing. ``PostgresRollupCache`` keeps the same rows (the same keys,
the same packed vectors) in four tables of a PostgreSQL database, normally the plant
database. The computation stays in ``analytics.rollup``; only the storage differs.

The tables are a cache, not the plant model: they are created here on first use (``CREATE
TABLE IF NOT EXISTS``), not by the plant model's migrations, and may be dropped at any time
(the maintainer fills them again). Writes are upserts, so two writers of the same hour (a
report and the maintainer, or two hosts) leave one row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (BigInteger, Column, DateTime, LargeBinary, MetaData, String, Table, Text, create_engine, select,
                        text)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Engine, Row

from analytics.rollup import RollupCache, Tally
from analytics.policy import Policy
from plant import MachineRef

METADATA = MetaData()
BUCKETS = Table("rollup_buckets", METADATA,
                Column("machine", String(300), primary_key=True), Column("shape", String(32), primary_key=True),
                Column("bucket", BigInteger, primary_key=True), Column("v", LargeBinary, nullable=False))
CORRECTIONS = Table("rollup_corrections", METADATA,
                    Column("machine", String(300), primary_key=True), Column("shape", String(32), primary_key=True),
                    Column("ts", BigInteger, primary_key=True), Column("tag", String(200), primary_key=True),
                    Column("kind", String(32), nullable=False))
GAPS = Table("rollup_gaps", METADATA,
             Column("machine", String(300), primary_key=True), Column("shape", String(32), primary_key=True),
             Column("ts", BigInteger, primary_key=True), Column("tag", String(200), primary_key=True),
             Column("from_ms", BigInteger, primary_key=True), Column("to_ms", BigInteger, nullable=False),
             Column("parts", BigInteger, nullable=False))
COVERAGE = Table("rollup_coverage", METADATA,
                 Column("machine", String(300), primary_key=True), Column("shape", String(32), primary_key=True),
                 Column("until_ms", BigInteger, nullable=False))

SUMMARIES = Table("rollup_summaries", METADATA,
                  Column("kind", String(32), primary_key=True), Column("tenant", String(200), primary_key=True),
                  Column("as_of_ms", BigInteger, nullable=False), Column("body", Text, nullable=False))
#: One row per machine (store ref): who tallies it now and until when (``analytics.leases``).
LEASES = Table("rollup_leases", METADATA,
               Column("machine", String(300), primary_key=True),
               Column("owner", String(200), nullable=True),
               Column("lease_until", DateTime(timezone=True), nullable=True),
               Column("due", DateTime(timezone=True), nullable=False, server_default=text("'-infinity'")),
               Column("tallies", BigInteger, nullable=False, server_default=text("0")),
               Column("tallied_at", DateTime(timezone=True), nullable=True),
               Column("full_due", DateTime(timezone=True), nullable=False, server_default=text("'-infinity'")))
#: Held while the tables are created: two processes creating them at once collide in PostgreSQL's catalogue
#: (CREATE TABLE IF NOT EXISTS is not safe against a concurrent one). "smartRlp" in ASCII.
SCHEMA_LOCK_KEY = int.from_bytes(b"smartRlp", "big") & 0x7FFF_FFFF_FFFF_FFFF


class PostgresRollupCache(RollupCache):
    """``RollupCache`` with its rows in PostgreSQL; give it the plant database's engine or a URL."""

    shared = True

    def __init__(self, engine_or_url: Engine | str, settle_ms: int = 2 * 3_600_000) -> None:
        if isinstance(engine_or_url, str):
            self.engine, self._owns_engine = create_engine(engine_or_url, pool_pre_ping=True), True
        else:
            self.engine, self._owns_engine = engine_or_url, False
        if self.engine.dialect.name != "postgresql":
            raise ValueError(f"PostgresRollupCache needs a PostgreSQL database, not {self.engine.dialect.name}")
        self.path = f"postgresql:{self.engine.url.render_as_string(hide_password=True)}"  # for logs only
        self.settle_ms = settle_ms
        with self.engine.begin() as c:  # several processes may start at once: create the tables one at a time
            c.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
            METADATA.create_all(c)
            # added after the table's first release: a table created before lacks it (its rows: a full recheck due).
            # Looked up first: ALTER TABLE locks the table against the workers' claims even when it changes nothing
            if c.execute(text("SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                              "AND table_name = 'rollup_leases' AND column_name = 'full_due'")).first() is None:
                c.execute(text("ALTER TABLE rollup_leases ADD COLUMN IF NOT EXISTS full_due timestamptz NOT NULL "
                               "DEFAULT '-infinity'"))
        self.hits = 0
        self.computed = 0

    def _cached_rows(self, key: str, shape: str, start_ms: int, end_ms: int) -> Sequence[Row[Any, Any]]:
        with self.engine.connect() as c:
            return c.execute(select(BUCKETS.c.bucket, BUCKETS.c.v).where(
                BUCKETS.c.machine == key, BUCKETS.c.shape == shape, BUCKETS.c.bucket >= start_ms,
                BUCKETS.c.bucket < end_ms)).all()

    def _cached_corrections(self, key: str, shape: str, start_ms: int, end_ms: int) -> Sequence[Row[Any, Any, Any]]:
        with self.engine.connect() as c:
            return c.execute(select(CORRECTIONS.c.ts, CORRECTIONS.c.tag, CORRECTIONS.c.kind).where(
                CORRECTIONS.c.machine == key, CORRECTIONS.c.shape == shape, CORRECTIONS.c.ts >= start_ms,
                CORRECTIONS.c.ts < end_ms)).all()

    def _cached_gaps(self, key: str, shape: str, start_ms: int, end_ms: int) -> Sequence[Row[Any, Any, Any, Any, Any]]:
        with self.engine.connect() as c:
            return c.execute(select(GAPS.c.ts, GAPS.c.tag, GAPS.c.from_ms, GAPS.c.to_ms, GAPS.c.parts).where(
                GAPS.c.machine == key, GAPS.c.shape == shape, GAPS.c.ts >= start_ms, GAPS.c.ts < end_ms)).all()

    def _save(self, rows: list[tuple[Any, ...]], corrections: list[tuple[Any, ...]], gaps: list[tuple[Any, ...]]) -> None:
        with self.engine.begin() as c:
            self.write(c, rows, corrections, gaps)

    @staticmethod
    def write(c: Connection, rows: list[tuple[Any, ...]], corrections: list[tuple[Any, ...]],
              gaps: list[tuple[Any, ...]]) -> None:
        """The upserts of ``_save`` on the caller's connection (inside its transaction)."""
        if rows:
            stmt = insert(BUCKETS)
            c.execute(stmt.on_conflict_do_update(index_elements=["machine", "shape", "bucket"],
                                                 set_={"v": stmt.excluded.v}),
                      [{"machine": m, "shape": s, "bucket": b, "v": v} for m, s, b, v in rows])
        if corrections:
            stmt = insert(CORRECTIONS)
            c.execute(stmt.on_conflict_do_update(index_elements=["machine", "shape", "ts", "tag"],
                                                 set_={"kind": stmt.excluded.kind}),
                      [{"machine": m, "shape": s, "ts": t, "tag": g, "kind": k} for m, s, t, g, k in corrections])
        if gaps:
            stmt = insert(GAPS)
            c.execute(stmt.on_conflict_do_update(index_elements=["machine", "shape", "ts", "tag", "from_ms"],
                                                 set_={"to_ms": stmt.excluded.to_ms, "parts": stmt.excluded.parts}),
                      [{"machine": m, "shape": s, "ts": t, "tag": g, "from_ms": a, "to_ms": z, "parts": n}
                       for m, s, t, g, a, z, n in gaps])

    def covered_until(self, machine: MachineRef, policy: Policy) -> int | None:
        from analytics.rollup import _key

        with self.engine.connect() as c:
            row = c.execute(select(COVERAGE.c.until_ms).where(COVERAGE.c.machine == _key(machine),
                                                              COVERAGE.c.shape == self.shape(policy))).first()
        return None if row is None else int(row[0])

    def set_covered_until(self, machine: MachineRef, policy: Policy, until_ms: int) -> None:
        with self.engine.begin() as c:
            self.write_covered_until(c, machine, policy, until_ms)

    def write_covered_until(self, c: Connection, machine: MachineRef, policy: Policy, until_ms: int) -> None:
        from analytics.rollup import _key

        stmt = insert(COVERAGE).values(machine=_key(machine), shape=self.shape(policy), until_ms=until_ms)
        c.execute(stmt.on_conflict_do_update(index_elements=["machine", "shape"], set_={"until_ms": until_ms}))

    def save_tally(self, machine: MachineRef, policy: Policy, tally: Tally, until_ms: int) -> None:
        with self.engine.begin() as c:
            self.write_tally(c, machine, policy, tally, until_ms)

    def write_tally(self, c: Connection, machine: MachineRef, policy: Policy, tally: Tally, until_ms: int) -> None:
        """The tally and the watermark on the caller's connection: the leased maintainer adds its lease check."""
        self.write(c, tally.rows, tally.corrections, tally.gaps)
        self.write_covered_until(c, machine, policy, until_ms)

    def put_summaries(self, kind: str, items: dict[str, tuple[int, str]]) -> None:
        if not items:
            return
        stmt = insert(SUMMARIES)
        with self.engine.begin() as c:
            c.execute(stmt.on_conflict_do_update(index_elements=["kind", "tenant"],
                                                 set_={"as_of_ms": stmt.excluded.as_of_ms, "body": stmt.excluded.body}),
                      [{"kind": kind, "tenant": t, "as_of_ms": a, "body": b} for t, (a, b) in items.items()])

    def summaries(self, kind: str) -> dict[str, tuple[int, str]]:
        with self.engine.connect() as c:
            rows = c.execute(select(SUMMARIES.c.tenant, SUMMARIES.c.as_of_ms, SUMMARIES.c.body)
                             .where(SUMMARIES.c.kind == kind)).all()
        return {t: (int(a), b) for t, a, b in rows}

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

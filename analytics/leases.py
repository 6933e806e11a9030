"""Rollups in parallel: maintainer workers on any host share the machines through row leases in PostgreSQL.

One row per machine (store ref) in ``rollup_leases``: who tallies it (``owner``), until when
(``lease_until``, the database's clock, so hosts' clocks do not matter) and when it is next
due. A worker claims a batch of due machines whose lease is free or expired with ``SELECT …
FOR UPDATE SKIP LOCKED`` (workers never wait on each other's rows), tallies each machine from
the store, and writes the tally, the machine's watermark and the lease's release in one
transaction that first re-reads the lease row ``FOR UPDATE`` and goes on only if the lease is
still its own and unexpired. So:

- adding a worker adds throughput: batches go to whoever asks first;
- a worker that dies (or freezes) stops renewing its leases; after ``lease_s`` another worker
  claims its machines, and if the first one comes back its late tally is refused (logged
  ``rollup_lease_lost``) and rolled back, so no hour is written twice and no watermark moves
  on a tally the lease did not cover;
- a live worker renews its leases every ``lease_s / 3`` from a thread of its own, so a long
  first pass over a year of history does not lose its machines half-way;
- the full recheck of a machine's last day (``analytics.continuous``) is scheduled in its row
  too (``full_due``): whichever worker claims it once that time has passed rechecks the whole
  window and moves ``full_due`` to the machine's next point on its own grid, ``full_recheck_s``
  apart, in the same transaction. A machine that moves between workers keeps its schedule, so
  every machine gets a full recheck once per ``full_recheck_s`` (plus at most an interval)
  while any worker runs, and only one, however many workers there are or however often they
  restart. The grids are offset by the machine's place in key order (i/n of the period), so
  after the first pass, which rechecks every new row in full, the full rechecks take turns: a
  pass does about one machine in k in full (k passes per period), not every machine once an hour
  (3.8 s of CPU in one stretch for 20 presses with 1-s data, in the API's leader).

The embedded SQLite default keeps ``analytics.continuous.RollupMaintainer`` in the API's
leader: one maintainer, no lease table.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError

from analytics.continuous import HOUR_MS, AfterPass, MachineTally, PassResult, RollupMaintainer
from analytics.rollup import _key
from analytics.rollup_pg import LEASES, PostgresRollupCache
from analytics.settings import AnalyticsSettings
from plant import MachineRef
from tsstore import StoreError, TimeSeriesStore

log = logging.getLogger(__name__)


def worker_id() -> str:
    """Host, process and a random part: unique per worker, readable in the lease table."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RollupLeases:
    """The lease table's statements for one worker (``owner``)."""

    def __init__(self, cache: PostgresRollupCache, owner: str | None = None, lease_s: float = 60.0) -> None:
        self.engine, self.owner, self.lease_s = cache.engine, owner or worker_id(), lease_s

    def register(self, machines: Iterable[MachineRef]) -> None:
        """New machines get a row, due at once; known ones are left as they are."""
        rows = [{"machine": _key(m)} for m in machines]
        if rows:
            with self.engine.begin() as c:
                c.execute(insert(LEASES).on_conflict_do_nothing(index_elements=["machine"]), rows)

    def claim(self, n: int, due_by: datetime | None = None) -> list[str]:
        """Up to ``n`` machines due by ``due_by`` (default: now) whose lease is free or expired, now leased to
        this worker (in key order, so a batch tends to hold one tenant's machines)."""
        return [key for key, _ in self.claim_batch(n, due_by)]

    def claim_batch(self, n: int, due_by: datetime | None = None) -> list[tuple[str, bool]]:
        """As ``claim``, each machine with whether its full recheck is due (``full_due`` has passed)."""
        with self.engine.begin() as c:
            rows = c.execute(text(
                "WITH free AS (SELECT machine FROM rollup_leases WHERE due <= coalesce(:by, now()) "
                "AND (lease_until IS NULL OR lease_until < now()) ORDER BY machine LIMIT :n FOR UPDATE SKIP LOCKED) "
                "UPDATE rollup_leases l SET owner = :me, lease_until = now() + make_interval(secs => :lease) "
                "FROM free WHERE l.machine = free.machine RETURNING l.machine, l.full_due <= now()"),
                {"n": n, "me": self.owner, "lease": self.lease_s, "by": due_by}).all()
        return sorted((key, bool(full)) for key, full in rows)

    def now(self) -> datetime:
        """The database's clock: leases and due times are on it, whatever the hosts' clocks say."""
        with self.engine.connect() as c:
            began: datetime = c.execute(text("SELECT now()")).scalar_one()
        return began

    def renew(self) -> int:
        """Extends this worker's unexpired leases; an expired one stays lost (another worker may hold it)."""
        with self.engine.begin() as c:
            return c.execute(text(
                "UPDATE rollup_leases SET lease_until = now() + make_interval(secs => :lease) "
                "WHERE owner = :me AND lease_until >= now()"), {"me": self.owner, "lease": self.lease_s}).rowcount

    def release(self, keys: Iterable[str]) -> None:
        """Gives back leases not worked on (a stopping worker), due at once for the others."""
        keys = list(keys)
        if keys:
            with self.engine.begin() as c:
                c.execute(text("UPDATE rollup_leases SET owner = NULL, lease_until = NULL "
                               "WHERE owner = :me AND machine = ANY(:keys)"), {"me": self.owner, "keys": keys})

    def make_due(self) -> None:
        """Every machine due now (``smartfactory rollups --refresh-days``, benchmarks)."""
        with self.engine.begin() as c:
            c.execute(text("UPDATE rollup_leases SET due = '-infinity'"))

    def next_due_s(self) -> float | None:
        """Seconds until the next machine is due (0 if one is), None without machines."""
        with self.engine.connect() as c:
            return c.execute(text("SELECT greatest(0, extract(epoch FROM min(due) - now()))::float8 "
                                  "FROM rollup_leases")).scalar()


class LeasedRollupMaintainer(RollupMaintainer):
    """A ``RollupMaintainer`` that tallies only the machines it holds a lease on; run as many as you like.

    ``run_pass`` registers the store's machines, then claims batches of ``batch`` machines due
    when the pass began until none is left that is due and free; each machine becomes due again ``interval_s`` after
    its tally. Runs in the API's leader (``analytics.rollups_in_api: leader``) or in every API
    process (``every``: ``needs_leader`` false), and in each process of ``smartfactory rollups --workers N``.

    Quick or full is decided per machine, not per pass: a machine gets a full recheck when its row's
    ``full_due`` has passed (module docstring), so a pass may be "mixed". There is no start-up
    rule as in ``RollupMaintainer``: the schedule is in the database, so a worker's start does
    not move it, and the first pass after a start is as quick as the machines' rows allow.
    """

    needs_leader = True  # as analytics.rollups_in_api's default; ``maintainer_for`` sets it from the settings

    def __init__(self, store: TimeSeriesStore, settings: AnalyticsSettings, cache: PostgresRollupCache,
                 interval_s: float = 300.0, recheck_ms: int = 24 * HOUR_MS, horizon_days: int = 400,
                 after_pass: AfterPass | None = None, lease_s: float = 60.0, batch: int = 10,
                 owner: str | None = None, quick_recheck_ms: int | None = None,
                 full_recheck_s: float = 3600.0) -> None:
        super().__init__(store, settings, cache, interval_s, recheck_ms, horizon_days, after_pass, quick_recheck_ms,
                         full_recheck_s)
        self.pg: PostgresRollupCache = cache
        self.leases = RollupLeases(cache, owner, lease_s)
        self.batch = batch
        #: each machine's offset of its full-recheck grid, seconds into the period (set by each pass)
        self._phases: dict[str, float] = {}

    @property
    def owner(self) -> str:
        return self.leases.owner

    def run_pass(self, now_ms: int | None = None, stop: threading.Event | None = None,
                 full: bool | None = None) -> PassResult:
        """Claim, tally and commit batches until no due machine is free; ``stop`` ends it at the next machine.
        Each machine is rechecked in full when its ``full_due`` has passed, unless ``full`` says which."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        started, result = time.perf_counter(), PassResult()
        by_key = {_key(m): m for m in self.store.machines()}
        self.leases.register(by_key.values())
        period_s = self.full_recheck_ms / 1000
        self._phases = {key: i * period_s / len(by_key) for i, key in enumerate(sorted(by_key))}
        # the machines due when the pass began: one tallied early and due again before the pass ends (a pass
        # longer than the interval) waits for the next pass instead of making this one endless
        pass_began = self.leases.now()
        renewing = threading.Event()
        keeper = threading.Thread(target=self._keep_leases, args=(renewing,), name="rollup-lease-renewal", daemon=True)
        keeper.start()
        try:
            while not (stop is not None and stop.is_set()):
                claimed = self.leases.claim_batch(self.batch, pass_began)
                if not claimed:
                    break
                for i, (key, full_due) in enumerate(claimed):
                    if stop is not None and stop.is_set():
                        self.leases.release(k for k, _ in claimed[i:])
                        log.info("rollup_pass_stopped machines_done=%d reason=maintainer stopping", result.machines)
                        break
                    machine = by_key.get(key)
                    if machine is None:  # in the lease table, no longer in this worker's store
                        self._commit(key, None)
                        continue
                    self._one(machine, now_ms, result, full_due if full is None else full)
        finally:
            renewing.set()
            keeper.join(timeout=10)
        quick = result.machines - result.full_rechecks
        result.recheck = "mixed" if quick and result.full_rechecks else ("full" if result.full_rechecks else "quick")
        return self.finish_pass(result, started, now_ms)

    def _one(self, machine: MachineRef, now_ms: int, result: PassResult, full: bool) -> None:
        try:
            t = self.tally_machine(machine, now_ms, full)
        except StoreError as exc:  # due again next interval (by any worker); one machine must not stop the rest
            result.failed.append(machine.machine)
            log.warning("rollup_machine_skipped machine=%s reason=store error=%r", machine, str(exc))
            self._commit(_key(machine), None)
            return
        if self._commit(_key(machine), t, full):
            result.machines += 1
            result.full_rechecks += full
            result.buckets_computed += t.tally.computed
            result.tenants.add(machine.tenant)
        else:
            result.lost.append(machine.machine)
            log.warning("rollup_lease_lost machine=%s owner=%s lease_s=%g: its lease expired and passed to another "
                        "worker, so this tally is dropped (that worker's counts); a worker slower than its lease "
                        "needs a longer analytics.rollup_lease_s", machine, self.owner, self.leases.lease_s)

    def _commit(self, key: str, t: MachineTally | None, full: bool = False) -> bool:
        """Tally, watermark and lease release in one transaction, if the lease is still this worker's; a ``full``
        tally moves the machine's next full recheck to the next point of its grid (at most ``full_recheck_s`` on)."""
        with self.pg.engine.begin() as c:
            held = c.execute(text("SELECT 1 FROM rollup_leases WHERE machine = :m AND owner = :me "
                                  "AND lease_until >= now() FOR UPDATE"), {"m": key, "me": self.owner}).first()
            if held is None:
                return False
            if t is not None:
                self.pg.write_tally(c, t.machine, t.policy, t.tally, t.until_ms)
            c.execute(text("UPDATE rollup_leases SET owner = NULL, lease_until = NULL, tallied_at = now(), "
                           "due = now() + make_interval(secs => :every), tallies = tallies + :n, "
                           "full_due = CASE WHEN :full THEN to_timestamp((floor((extract(epoch FROM now()) - :phase) "
                           "/ :period) + 1) * :period + :phase) ELSE full_due END "
                           "WHERE machine = :m"),
                      {"m": key, "every": self.interval_s, "n": 1 if t is not None else 0,
                       "full": t is not None and full, "period": max(self.full_recheck_ms / 1000, 1.0),
                       "phase": self._phases.get(key, 0.0)})
        return True

    def _keep_leases(self, done: threading.Event) -> None:
        while not done.wait(self.leases.lease_s / 3):
            try:
                self.leases.renew()
            except SQLAlchemyError as exc:  # the commit's own check decides; this only keeps leases alive
                log.warning("rollup_lease_renewal_failed owner=%s error=%s", self.owner, str(exc).splitlines()[0])

    def run_until(self, stop: threading.Event) -> None:
        """Passes until stopped; between them, waits until the next machine is due (at most ``interval_s``)."""
        while not stop.is_set():
            try:
                self.run_pass(stop=stop)
                wait = self.leases.next_due_s()
            except Exception:  # never let one bad pass end the maintainer; the next one retries
                log.exception("rollup_pass_failed owner=%s", self.owner)
                wait = None
            stop.wait(min(self.interval_s, max(1.0, wait if wait is not None else self.interval_s)))

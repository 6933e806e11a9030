"""Keeps the rollup cache up to date as data arrives, so no report has to start cold.

A continuous aggregate in the manner of TimescaleDB's or InfluxDB's continuous queries: every
few minutes each machine's finished hours are tallied once from the store
(``analytics.rollup``) and kept in the rollup cache. A report of 20 machines x 180 days then
reads 86,400 small rows instead of every sample.

Late data is the hard part of any continuous aggregate. Gateways replay their outbox after
an outage, into hours that may already be tallied, so passes recompute ("recheck") recent
hours from the store, in two windows:

- every pass rechecks the ``quick_recheck_ms`` (``analytics.rollup_quick_recheck_hours``, 2 h)
  before the newest kept hour (hours end ``settle_ms``, 2 h, before they are kept): a replay
  of data up to about 4 h old reaches the rollups at the next pass;
- once per ``full_recheck_s`` (``analytics.rollup_full_recheck_s``, 1 h) each machine gets a
  full recheck of the ``recheck_ms`` (``analytics.rollup_recheck_hours``, 24 h) before it: a
  replay after a longer outage reaches them within the hour. The machines take turns, so each
  pass rechecks about one in k in full (k passes per ``full_recheck_s``: 12) and the rest
  quick: a "mixed" pass (``RollupMaintainer``'s docstring says when all are full at once).

Rechecking the whole day on every pass cost 3.8 s of CPU per pass for 20 presses with 1-s
data, in the API's leader process, competing for the GIL with its requests. A quick pass
costs a tenth of that; one full pass an hour still competed for 3.8 s in one stretch (enough
to show in the requests' p95 when it met load), which taking turns avoids
(bench/rollup_recheck.py). Hours with no data at all are never kept, so a report computes
those from the store (and sees a replay into them) whatever the maintainer has rechecked.
Only hours older than ``recheck_ms`` are frozen. History written later than that (a
backfill, an import) is refreshed by whoever writes it (``smartfactory backfill`` does) or
with ``smartfactory rollups --refresh-days``.

Pure of I/O apart from the store and the cache it is given; runs in the API's leader worker
(``api.leader``) or as ``smartfactory rollups``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from analytics.policy import Policy
from analytics.rollup import RollupCache, Tally
from analytics.settings import AnalyticsSettings
from plant import MachineRef
from tsstore import StoreError, TimeSeriesStore

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000


@dataclass
class PassResult:
    machines: int = 0
    recheck: str = "quick"  # "quick", "full", or "mixed" (some machines were due a full recheck, the others not)
    full_rechecks: int = 0  # machines whose whole recheck window this pass recomputed
    buckets_computed: int = 0
    seconds: float = 0.0
    failed: list[str] = field(default_factory=list)
    tenants: set[str] = field(default_factory=set)  # whose machines this pass tallied
    lost: list[str] = field(default_factory=list)  # tallies dropped: the lease had passed to another worker


@dataclass
class MachineTally:
    """One machine's pass, computed but not yet written (``RollupMaintainer.tally_machine``)."""

    machine: MachineRef
    policy: Policy
    tally: Tally
    until_ms: int  # the new watermark

#: Called after a pass with the tenants whose machines it tallied and the pass's time (epoch ms).
AfterPass = Callable[[set[str], int], None]


class RollupMaintainer:
    """One pass per ``interval_s``: catch each machine up to its newest finished hour, recheck recent hours.

    The single maintainer: the API's leader runs it (one per deployment), right for the embedded
    SQLite cache. On PostgreSQL any number of ``analytics.leases.LeasedRollupMaintainer`` share
    the machines instead. ``after_pass`` (the centre's per-tenant summaries) runs after each pass.

    Which machines a pass rechecks in full (``_full_rechecks``), kept in memory:

    - The first pass after a start is quick for every machine. It runs while the API's caches
      are cold and its requests are slowest, and the persistent watermark already has it catch
      up on every hour since the last tally, so it need not also retally a day.
    - The third pass (two intervals on, 10 min by default) rechecks every machine in full at
      once, the one pass that still costs the whole day (3.8 s of CPU for 20 presses with 1-s
      data). A start often ends an outage of the whole site (a power cut, a shop PC rebooted),
      whose gateways all replay their outboxes in the first minutes: one full pass then folds
      every replay in within 10 min instead of within the hour, and a process restarted more
      often than ``full_recheck_s`` (deploys, a crash loop) still rechecks every machine's day
      each time. Spreading this pass too would leave a restart loop's later machines never
      rechecked (the rotation is in memory), for 4 s of CPU once per start.
    - From there the machines take turns: in sorted order, machine i of n is next due
      ``(i + 1) / n`` of a ``full_recheck_s`` after that pass, then every ``full_recheck_s`` on its
      own grid (the first pass at or after each point; a pass that overran skips the points it
      missed). Each pass so rechecks about n / k machines in full (k passes a period) and the
      rest quick, and the requests never compete with more than that share of the day's
      recheck at once (0.75 s of CPU at most instead of 3.9 s, for 20 presses: 1 or 2 in full a
      pass). A machine first seen later (new in the store) joins the rotation in the middle of
      the widest gap between the others' due times, so within a period and without crowding
      one pass (a machine new to the cache has its whole history tallied by its first pass
      anyway). A machine whose tally failed is due again at the next pass.
    - ``run_pass(full=True)`` (``smartfactory rollups --once``, benchmarks) rechecks every machine
      in full and starts the rotation afresh from there; ``full=False`` none.
    """

    #: Whether only the API's leader may run it (a leased one may run in every API process: analytics.leases).
    needs_leader = True

    #: Passes after a start before the first full recheck (see the class docstring).
    FIRST_FULL_AFTER_INTERVALS = 2

    def __init__(self, store: TimeSeriesStore, settings: AnalyticsSettings, cache: RollupCache,
                 interval_s: float = 300.0, recheck_ms: int = 24 * HOUR_MS, horizon_days: int = 400,
                 after_pass: AfterPass | None = None, quick_recheck_ms: int | None = None,
                 full_recheck_s: float = 3600.0) -> None:
        self.store, self.settings, self.cache, self.after_pass = store, settings, cache, after_pass
        self.interval_s, self.recheck_ms, self.horizon_ms = interval_s, recheck_ms, horizon_days * 86_400_000
        self.quick_recheck_ms = min(2 * HOUR_MS, recheck_ms) if quick_recheck_ms is None else quick_recheck_ms
        if not 0 <= self.quick_recheck_ms <= recheck_ms:
            raise ValueError(f"quick_recheck_ms={self.quick_recheck_ms} must be within [0, recheck_ms={recheck_ms}]")
        self.full_recheck_ms = int(full_recheck_s * 1000)
        # the schedule of full rechecks, on the passes' clock (now_ms), in memory: reset at each start (run_until)
        self._startup_full_ms: int | None = None  # when the start-up full pass is due; None once it ran
        self._due: dict[MachineRef, int] = {}  # each machine's next full recheck, once the rotation runs
        self._rotating = False  # whether the start-up (or a forced) full pass has set the rotation going
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: PassResult | None = None

    def _full_rechecks(self, machines: list[MachineRef], now_ms: int, full: bool | None) -> dict[MachineRef, int]:
        """The machines this pass rechecks in full, each with its next due time once that is done (``full`` forces
        every machine or none), and machines seen for the first time put in the rotation."""
        if self._startup_full_ms is None and not self._rotating:  # the first pass of a run
            self._startup_full_ms = now_ms + min(self.full_recheck_ms,
                                                 int(self.FIRST_FULL_AFTER_INTERVALS * self.interval_s * 1000))
        listed = set(machines)
        self._due = {m: due for m, due in self._due.items() if m in listed}  # machines gone from the store
        if full is False:
            return {}
        if full or (self._startup_full_ms is not None and now_ms >= self._startup_full_ms):
            self._startup_full_ms, self._rotating = None, True  # every machine now, the rotation from here
            period = max(self.full_recheck_ms, 1)
            n = len(machines)
            return {m: now_ms + -(-period * (i + 1) // n) for i, m in enumerate(sorted(machines))}
        if not self._rotating:  # before the start-up full pass: every machine is quick
            return {}
        for m in sorted(listed - self._due.keys()):  # new machines join the rotation where it is emptiest
            self._due[m] = self._join_rotation(now_ms)
        return {m: self._after(due, now_ms) for m, due in self._due.items() if due <= now_ms}

    def _after(self, due_ms: int, now_ms: int) -> int:
        """The machine's next point on its own grid after ``now_ms``; a pass that overran skips the points it missed."""
        period = max(self.full_recheck_ms, 1)
        return due_ms + ((now_ms - due_ms) // period + 1) * period

    def _join_rotation(self, now_ms: int) -> int:
        """A due time for a new machine: the middle of the widest gap between the others' (within a period)."""
        period = max(self.full_recheck_ms, 1)
        phases = sorted({(due - now_ms) % period for due in self._due.values()})
        if not phases:
            return now_ms + period
        gaps = [(b - a, a) for a, b in zip(phases, phases[1:] + [phases[0] + period])]
        width, start = max(gaps, key=lambda g: (g[0], -g[1]))
        phase = (start + width // 2) % period
        return now_ms + (phase or period)

    def run_pass(self, now_ms: int | None = None, stop: threading.Event | None = None,
                 full: bool | None = None) -> PassResult:
        """One pass over every machine; each is rechecked in full when its turn has come (class docstring), unless
        ``full`` says whether all or none are; with ``stop``, ends early (logged as stopped) once it is set."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        started, result = time.perf_counter(), PassResult()
        machines = self.store.machines()
        due = self._full_rechecks(machines, now_ms, full)
        result.recheck = "quick" if not due else ("full" if len(due) == len(machines) else "mixed")
        before = self.cache.computed
        for machine in machines:
            if stop is not None and stop.is_set():
                log.info("rollup_pass_stopped machines_done=%d recheck=%s reason=maintainer stopping",
                         result.machines, result.recheck)
                return result
            in_full = machine in due
            try:
                self.update_machine(machine, now_ms, in_full)
                result.tenants.add(machine.tenant)
                if in_full:
                    result.full_rechecks += 1
                    self._due[machine] = due[machine]
            except StoreError as exc:  # the next pass catches up; one machine's trouble must not stop the rest
                result.failed.append(machine.machine)
                log.warning("rollup_machine_skipped machine=%s reason=store error=%r", machine, str(exc))
                if in_full:  # its full recheck is due again at the next pass
                    self._due[machine] = now_ms
            result.machines += 1
        result.buckets_computed = int(self.cache.computed - before)
        return self.finish_pass(result, started, now_ms)

    def finish_pass(self, result: PassResult, started: float, now_ms: int) -> PassResult:
        """Times and logs the pass, then refreshes the summaries of the tenants it touched."""
        result.seconds = time.perf_counter() - started
        self.last = result
        hours = {"quick": f"{self.quick_recheck_ms / HOUR_MS:g}", "full": f"{self.recheck_ms / HOUR_MS:g}"}.get(
            result.recheck, f"{self.quick_recheck_ms / HOUR_MS:g}/{self.recheck_ms / HOUR_MS:g}")
        log.info("rollup_pass machines=%d recheck=%s recheck_hours=%s full_rechecks=%d buckets_computed=%d "
                 "seconds=%.2f failed=%d lost=%d", result.machines, result.recheck, hours, result.full_rechecks,
                 result.buckets_computed, result.seconds, len(result.failed), len(result.lost))
        if self.after_pass is not None and result.tenants:
            try:
                self.after_pass(result.tenants, now_ms)
            except Exception:  # summaries are a convenience: a failure must not stop the rollups
                log.exception("rollup_after_pass_failed tenants=%d", len(result.tenants))
        return result

    def update_machine(self, machine: MachineRef, now_ms: int, full: bool = True) -> None:
        t = self.tally_machine(machine, now_ms, full)
        self.cache.save_tally(t.machine, t.policy, t.tally, t.until_ms)

    def tally_machine(self, machine: MachineRef, now_ms: int, full: bool = True) -> MachineTally:
        """The machine's newly finished hours and the hours before them (``recheck_ms`` when ``full``, else
        ``quick_recheck_ms``) recomputed, not yet written."""
        policy = self.settings.policy(machine.tenant)
        every = policy.bucket_min * 60_000
        final_until = (now_ms - self.cache.settle_ms) // every * every  # hours that may be kept
        window = self.recheck_ms if full else self.quick_recheck_ms
        recheck_from = max((now_ms - self.cache.settle_ms - window) // every * every, 0)
        covered = self.cache.covered_until(machine, policy)
        start = covered if covered is not None else self._first_data(machine, policy.tags.state, now_ms, every)
        if start is None:  # nothing in the horizon yet
            start = recheck_from
        tally = Tally()
        if start < recheck_from:  # first pass, or after downtime: fill what the cache lacks
            self.cache.machine_buckets(self.store, machine, policy, start, recheck_from, now_ms, pending=tally)
        if recheck_from < final_until:
            self.cache.machine_buckets(self.store, machine, policy, recheck_from, final_until, now_ms, refresh=True,
                                       pending=tally)
        return MachineTally(machine, policy, tally, final_until)

    def _first_data(self, machine: MachineRef, tag: str, now_ms: int, every: int) -> int | None:
        """Where the machine's history starts, so the first pass does not tally a year of empty hours."""
        day = 86_400_000
        days = self.store.history(machine, tag, (now_ms - self.horizon_ms) // day * day, now_ms, day, "count")
        return days[0][0] // every * every if days else None

    def refresh(self, machines: list[MachineRef], start_ms: int, end_ms: int, now_ms: int | None = None) -> int:
        """Recompute the rollups of [start, end) after history was written there (backfill, import)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        before = self.cache.computed
        for machine in machines:
            policy = self.settings.policy(machine.tenant)
            every = policy.bucket_min * 60_000
            a, b = start_ms // every * every, -(-end_ms // every) * every
            self.cache.machine_buckets(self.store, machine, policy, a, b, now_ms, refresh=True)
        return int(self.cache.computed - before)

    # -- background thread (API leader worker) --------------------------------------------
    def start(self) -> None:
        """Restartable (a worker may lead, resign and lead again): each run has its own stop event."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run_until, args=(self._stop,), name="rollup-maintainer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ends the pass at the next machine: a resigning leader must not keep tallying beside the new one."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def run_until(self, stop: threading.Event) -> None:
        """Passes every ``interval_s`` until stopped; each run is a start (its first pass quick, class docstring)."""
        self._startup_full_ms, self._due, self._rotating = None, {}, False
        while not stop.is_set():
            try:
                self.run_pass(stop=stop)
            except Exception:  # never let one bad pass end the maintainer; the next one retries
                log.exception("rollup_pass_failed")
            stop.wait(self.interval_s)

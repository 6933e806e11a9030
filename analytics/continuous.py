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
- once per ``full_recheck_s`` (``analytics.rollup_full_recheck_s``, 1 h) a full pass rechecks the
  ``recheck_ms`` (``analytics.rollup_recheck_hours``, 24 h) before it: a replay after a longer
  outage reaches them within the hour.

Rechecking the whole day on every pass cost 3.8 s of CPU per pass for 20 presses with 1-s
data, in the API's leader process beside its requests; a quick pass costs a tenth of that,
and 11 passes in 12 are quick (bench/rollup_recheck.py). Hours with no data at all are never
kept, so a report computes those from the store (and sees a replay into them) whatever the
maintainer has rechecked. Only hours older than ``recheck_ms`` are frozen. History written
later than that (a backfill, an import) is refreshed by whoever writes it (``smartfactory
backfill`` does) or with ``smartfactory rollups --refresh-days``.

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
    recheck: str = "quick"  # "quick", "full", or "mixed" (a leased pass: some machines were due a full recheck)
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

    Which passes are full (``_full_due``): the first pass after a start is quick, and the first
    full one comes two intervals later (the third pass, 10 min by default), then one every
    ``full_recheck_s`` on a fixed grid from there (the first pass at or after each point). The
    first pass runs while the API's caches are cold and its requests are slowest, and the
    persistent watermark already has it catch up on every hour since the last tally, so it need
    not also retally a day. But a start often ends an outage of the whole site (a power cut, a
    shop PC rebooted), whose gateways replay their outboxes in the first minutes: a full recheck
    soon after the start folds those replays in without waiting an hour, and a process restarted
    more often than ``full_recheck_s`` (deploys, a crash loop) still rechecks the day.
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
        self._next_full_ms: int | None = None  # on the passes' clock (now_ms); set by the first pass
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: PassResult | None = None

    def _full_due(self, now_ms: int, full: bool | None) -> bool:
        """Whether this pass rechecks the whole ``recheck_ms`` (``full`` forces it either way), and moves the
        schedule on: a full pass sets the next one ``full_recheck_s`` on (on the grid, unless forced)."""
        if self._next_full_ms is None:
            first = min(self.full_recheck_ms, int(self.FIRST_FULL_AFTER_INTERVALS * self.interval_s * 1000))
            self._next_full_ms = now_ms + first
        if full is None:
            full = now_ms >= self._next_full_ms
            if full:  # the first pass at or after the point; a pass that overran skips the points it missed
                while self._next_full_ms <= now_ms:
                    self._next_full_ms += max(self.full_recheck_ms, 1)
        elif full:
            self._next_full_ms = now_ms + self.full_recheck_ms
        return full

    def run_pass(self, now_ms: int | None = None, stop: threading.Event | None = None,
                 full: bool | None = None) -> PassResult:
        """One pass over every machine, quick or full by the schedule unless ``full`` says which; with ``stop``,
        ends early (logged as stopped) once it is set."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        started, result = time.perf_counter(), PassResult()
        full = self._full_due(now_ms, full)
        result.recheck = "full" if full else "quick"
        before = self.cache.computed
        for machine in self.store.machines():
            if stop is not None and stop.is_set():
                log.info("rollup_pass_stopped machines_done=%d recheck=%s reason=maintainer stopping",
                         result.machines, result.recheck)
                return result
            try:
                self.update_machine(machine, now_ms, full)
                result.tenants.add(machine.tenant)
                result.full_rechecks += full
            except StoreError as exc:  # the next pass catches up; one machine's trouble must not stop the rest
                result.failed.append(machine.machine)
                log.warning("rollup_machine_skipped machine=%s reason=store error=%r", machine, str(exc))
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
        """Passes every ``interval_s`` until stopped; each run is a start (its first pass quick: ``_full_due``)."""
        self._next_full_ms = None
        while not stop.is_set():
            try:
                self.run_pass(stop=stop)
            except Exception:  # never let one bad pass end the maintainer; the next one retries
                log.exception("rollup_pass_failed")
            stop.wait(self.interval_s)

"""Poll one Modbus device on its own schedule, each device in its own task.

A device that fails only delays itself: its requests time out after its own timeout, it
backs off (exponential, capped) and tries again by itself, while the other devices' tasks
keep their schedules. Units on a shared link wait for the link's lock, which a dead unit
holds for at most its timeout per (backed-off) attempt.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.links import ILLEGAL_DATA_ADDRESS, LinkError, ModbusLink, Refused, Unsupported
from gateway.mclink import McLink
from gateway.xgtlink import XgtLink
from gateway.planner import AnyRead, DevicePlan, IndividualRead, RandomRead, area_name
from gateway.reporting import ChangeFilter
from gateway.settings import DeviceSettings, Protocol
from plcprotocol.mc import LIMITS as MC_LIMITS
from plcprotocol.xgt import MAX_BLOCKS as XGT_MAX_VARIABLES
from registermap import OpcUaTag, decode

log = logging.getLogger(__name__)

#: MC end codes for "more points than this CPU takes in one random read"
TOO_MANY_RANDOM_POINTS = frozenset({0xC053, 0xC054})

Values = dict[str, bool | int | float | str]
#: Called with (device, source timestamp in epoch ms, decoded values) after every good poll.
SampleSink = Callable[[DeviceSettings, int, Values], None]
#: Called with (device, health) when the device goes online/offline and every status interval.
HealthSink = Callable[[DeviceSettings, "DeviceHealth"], None]


class PollError(Exception):
    pass


@dataclass
class DeviceHealth:
    online: bool | None = None  # None until the first poll
    polls_ok: int = 0
    polls_failed: int = 0
    consecutive_failures: int = 0
    timeouts: int = 0
    exceptions: int = 0
    last_success_ms: int | None = None
    last_error: str | None = None
    last_latency_ms: float | None = None
    unreadable_tags: list[str] = field(default_factory=list)
    #: how late cycles started behind their schedule since the last status (p50, p99), in ms
    lateness_p50_ms: float | None = None
    lateness_p99_ms: float | None = None

    def as_status(self) -> dict:
        return {
            "state": "online" if self.online else "offline",
            "last_success_ts": self.last_success_ms,
            "polls_ok": self.polls_ok,
            "polls_failed": self.polls_failed,
            "consecutive_failures": self.consecutive_failures,
            "timeouts": self.timeouts,
            "exception_responses": self.exceptions,
            "latency_ms": None if self.last_latency_ms is None else round(self.last_latency_ms, 2),
            "last_error": self.last_error,
            "unreadable_tags": self.unreadable_tags,
            "lateness_p50_ms": None if self.lateness_p50_ms is None else round(self.lateness_p50_ms, 2),
            "lateness_p99_ms": None if self.lateness_p99_ms is None else round(self.lateness_p99_ms, 2),
        }


def _stop_if_cancelled() -> None:
    """Raise CancelledError if this task is being cancelled. A cancellation can be lost
    inside a library (pymodbus turns it into ModbusIOException; asyncio.wait_for in 3.11
    drops it when the awaited future completes at the same moment); a poller that went on
    after that would keep a shutting-down gateway alive forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError()


def random_limit_of(device: DeviceSettings) -> int | None:
    """Points per random read for a device whose protocol has one (MC), else None."""
    return MC_LIMITS[device.series][2] if device.protocol is Protocol.mc else None


def individual_limit_of(device: DeviceSettings) -> int | None:
    """Variables per individual read for a device whose protocol has one (XGT), else None."""
    return XGT_MAX_VARIABLES if device.protocol is Protocol.xgt else None


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank: a value that occurred, as an operator reads it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def backoff_s(interval_s: float, failures: int, cap_s: float) -> float:
    """Wait after ``failures`` consecutive failed polls: doubling from the poll interval, capped."""
    return min(cap_s, interval_s * 2 ** min(max(failures - 1, 0), 20))


def next_slot(previous: float, interval: float, now: float) -> float:
    """The next scheduled start after ``previous`` that is not already in the past:
    a drift-free grid; missed slots are skipped, not bunched."""
    due = previous + interval
    if due < now:
        due += math.ceil((now - due) / interval) * interval
    return due


class DeviceHealthKeeping:
    """Health, damping and status publishing shared by every device runner: the polling
    ``DevicePoller`` and the subscribing ``gateway.opcua.OpcUaDevice``. A subclass sets the
    fields below (as dataclass fields) and ``link_label``."""

    device: DeviceSettings
    health: DeviceHealth
    health_sink: HealthSink | None
    lateness_ms: deque
    clock: Callable[[], float]
    _last_status: float
    _cycles: int
    _cycles_summarised: int
    _failing_since: float | None

    @property
    def link_label(self) -> str:
        raise NotImplementedError

    def _succeeded(self, ts_ms: int, latency_ms: float) -> None:
        h = self.health
        if h.consecutive_failures:
            log.info("device_recovered device=%s after_failures=%d", self.device.name, h.consecutive_failures)
        h.polls_ok += 1
        h.consecutive_failures = 0
        self._failing_since = None
        h.last_success_ms = ts_ms
        h.last_latency_ms = latency_ms
        if h.online is not True:
            h.online = True
            log.info("device_online device=%s link=%s", self.device.name, self.link_label)
            self._publish_status()

    def _failed(self, error: str) -> None:
        h = self.health
        h.polls_failed += 1
        h.consecutive_failures += 1
        h.last_error = error
        log.warning(
            "poll_failed device=%s link=%s failures=%d backoff_s=%.1f error=%r",
            self.device.name, self.link_label, h.consecutive_failures,
            backoff_s(self.device.poll_interval_s, h.consecutive_failures, self.device.max_backoff_s), error,
        )
        now = self.clock()
        if self._failing_since is None:
            self._failing_since = now
        # damping: one failed poll (a dropped frame, a PLC busy for a moment) is not an outage
        damped = (h.consecutive_failures < self.device.offline_after_failures
                  and now - self._failing_since < self.device.offline_after_s)
        if h.online is not False and not damped:
            h.online = False
            log.warning("device_offline device=%s link=%s failures=%d error=%r", self.device.name, self.link_label,
                        h.consecutive_failures, error)
            self._publish_status()
        elif h.online is not None:  # a device never seen yet says nothing until it is online or offline
            self._maybe_status()

    def _maybe_status(self) -> None:
        if time.monotonic() - self._last_status >= self.device.status_interval_s:
            self._publish_status()

    def _publish_status(self) -> None:
        self._last_status = time.monotonic()
        new = min(self._cycles - self._cycles_summarised, len(self.lateness_ms))
        if new:
            recent = list(itertools.islice(reversed(self.lateness_ms), new))
            self.health.lateness_p50_ms, self.health.lateness_p99_ms = percentile(recent, 50), percentile(recent, 99)
        self._cycles_summarised = self._cycles
        if self.health_sink is not None:
            self.health_sink(self.device, self.health)


@dataclass
class DevicePoller(DeviceHealthKeeping):
    device: DeviceSettings
    link: ModbusLink | McLink | XgtLink
    sink: SampleSink
    health_sink: HealthSink | None = None
    health: DeviceHealth = field(default_factory=DeviceHealth)
    #: lateness of each cycle start behind its schedule, in ms (for health and the bench)
    lateness_ms: deque = field(default_factory=lambda: deque(maxlen=100_000))
    #: seconds on a monotonic clock; the tests give their own
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        d = self.device
        if any(isinstance(t, OpcUaTag) for t in d.tags):
            raise ValueError(f"{d.name}: an OPC UA device runs as gateway.opcua.OpcUaDevice, not a poller")
        tags = [t for t in d.tags if not isinstance(t, OpcUaTag)]
        self.plan = DevicePlan(
            tags, [d.interval_of(t) for t in tags], d.max_registers_per_read, d.max_bits_per_read, d.max_gap,
            random_limit_of(d), individual_limit_of(d),
        )
        self.filter = ChangeFilter(d.tags)
        self._last_status = 0.0
        self._cycles = self._cycles_summarised = 0  # cycle starts so far, and when the last status summarised them
        self._failing_since: float | None = None
        self._learned_at = time.monotonic()

    @property
    def link_label(self) -> str:
        # an MC or XGT port is one CPU: no Modbus unit id to name
        return f"{self.link.name} unit={self.device.unit_id}" if self.device.protocol is Protocol.modbus else self.link.name

    @property
    def reads(self) -> list[AnyRead]:
        """The plan of a cycle in which every tag is due."""
        return self.plan.reads_for(self.plan.intervals)

    async def run(self, phase_s: float = 0.0) -> None:
        """Poll until cancelled. ``phase_s`` delays the first cycle, so that a gateway can
        spread its devices over the interval instead of sending every request at once."""
        intervals = self.plan.intervals
        if phase_s > 0:
            await asyncio.sleep(phase_s)
        now = time.monotonic()
        due_at = {i: now for i in intervals}
        while True:
            start = time.monotonic()
            scheduled = min(due_at.values())
            self.lateness_ms.append((start - scheduled) * 1000)
            self._cycles += 1
            due = [i for i in intervals if due_at[i] <= start + 0.001]
            try:
                await self.poll_once(due)
            except Exception as exc:  # noqa: BLE001 - a long-running poller must outlive any one poll
                _stop_if_cancelled()
                if not isinstance(exc, PollError):
                    log.exception("poll_crashed device=%s", self.device.name)
                self._failed(str(exc))
                wait = backoff_s(self.device.poll_interval_s, self.health.consecutive_failures,
                                 self.device.max_backoff_s)
                await asyncio.sleep(wait)
                retry = time.monotonic()
                due_at = {i: retry for i in intervals}
                continue
            _stop_if_cancelled()
            now = time.monotonic()
            for i in due:
                due_at[i] = next_slot(due_at[i], i, now)
            self._maybe_status()
            self._maybe_relearn(now)
            await asyncio.sleep(max(0.0, min(due_at.values()) - time.monotonic()))

    async def poll_once(self, due: list[float] | None = None) -> Values:
        """Read the due tags (all by default), hand the sample to the sink and return it."""
        d = self.device
        ts_ms = time.time_ns() // 1_000_000
        started = time.perf_counter()
        values: Values = {}
        pending = list(self.plan.reads_for(due if due is not None else self.plan.intervals))
        done: list[AnyRead] = []
        cuts_before = set(self.plan.breaks)
        while pending:
            read = pending.pop(0)
            try:
                if isinstance(read, RandomRead):
                    assert isinstance(self.link, McLink), "random reads are planned for MC devices only"
                    got = await self.link.read_random(read, d.timeout_s)
                    raws: dict[str, list[int] | list[bool]] = {tag.name: read.values_for(tag, got) for tag in read.tags}
                elif isinstance(read, IndividualRead):
                    assert isinstance(self.link, XgtLink), "individual reads are planned for XGT devices only"
                    got = await self.link.read_individual(read, d.timeout_s)
                    raws = {tag.name: read.values_for(tag, got) for tag in read.tags}
                else:
                    raw = await self.link.read(read.table, read.address, read.count, d.unit_id, d.timeout_s)
                    raws = {tag.name: raw[read.slice_for(tag)] for tag in read.tags}
            except Unsupported as exc:
                if not isinstance(read, RandomRead):
                    self.health.exceptions += 1
                    raise PollError(str(exc)) from exc
                instead = self.plan.without_random(read)
                log.warning("random_read_unsupported device=%s end_code=0x%04X action=batch-reads-from-now-on "
                            "error=%r", d.name, exc.code, str(exc))
                pending[:0] = instead
                continue
            except Refused as exc:
                self.health.exceptions += 1
                if exc.code != ILLEGAL_DATA_ADDRESS:
                    raise PollError(str(exc)) from exc
                if isinstance(read, RandomRead) and exc.protocol_code in TOO_MANY_RANDOM_POINTS and read.points > 1:
                    self.plan.fewer_random_points(read)
                    log.warning("random_read_limit device=%s points=%d refused=0x%04X action=at-most-%s-points",
                                d.name, read.points, exc.protocol_code, self.plan.random_limit)
                    pending[:0] = self.plan.plan(list(read.tags))
                    continue
                instead = self.plan.refuse(read)
                if isinstance(read, RandomRead):
                    log.warning("read_refused device=%s random_read points=%d action=%s", d.name, read.points,
                                "split" if instead else "skip-tags:" + ",".join(t.name for t in read.tags))
                elif isinstance(read, IndividualRead):
                    log.warning("read_refused device=%s individual_read size=%s variables=%d nak=0x%04X action=%s",
                                d.name, read.size, len(read.points), exc.protocol_code or 0,
                                "split" if instead else "skip-tags:" + ",".join(t.name for t in read.tags))
                else:
                    log.warning(
                        "read_refused device=%s table=%s address=%d count=%d action=%s", d.name,
                        area_name(read.table), read.address, read.count,
                        "bisect" if instead else "skip-tags:" + ",".join(t.name for t in read.tags),
                    )
                if not instead:
                    self.health.unreadable_tags = sorted(self.plan.unreadable)
                pending[:0] = instead
                continue
            except LinkError as exc:
                if "Timeout" in str(exc) or "No response" in str(exc):
                    self.health.timeouts += 1
                raise PollError(str(exc)) from exc
            done.append(read)
            for tag in read.tags:
                value = decode(tag, raws[tag.name])
                if isinstance(value, float) and not math.isfinite(value):
                    log.warning("value_skipped device=%s tag=%s reason=not-finite value=%r", d.name, tag.name, value)
                    continue
                values[tag.name] = value
        latency_ms = (time.perf_counter() - started) * 1000
        self._succeeded(ts_ms, latency_ms)
        selected = self.filter.select(ts_ms, values)
        if selected:
            self.sink(d, ts_ms, selected)
        if self.plan.breaks - cuts_before:
            await self._prune_cuts(self.plan.breaks - cuts_before, done)
        return selected

    async def _prune_cuts(self, cuts: set, done: list[AnyRead]) -> None:
        """Keep only the cuts that isolate a bad address (see ``DevicePlan.cut_checks``);
        each is checked once, with one read of just the gap it guards."""
        d = self.device
        for cut, lo, hi in self.plan.cut_checks(cuts, done):
            if hi > lo:
                try:
                    await self.link.read(cut[0], lo, hi - lo, d.unit_id, d.timeout_s)
                except (Refused, LinkError):
                    continue  # the gap holds a bad address: the cut stays
            self.plan.drop_break(cut)
        log.info("plan_learned device=%s breaks=%s unreadable=%s", d.name,
                 ",".join(f"{area_name(t)}@{a}" for t, a in sorted(self.plan.breaks, key=lambda c: (area_name(c[0]), c[1])))
                 or "-", ",".join(sorted(self.plan.unreadable)) or "-")

    def _maybe_relearn(self, now: float) -> None:
        if not (self.plan.breaks or self.plan.unreadable):
            self._learned_at = now
            return
        if now - self._learned_at >= self.device.relearn_s:
            log.info("plan_relearn device=%s breaks=%d unreadable=%s", self.device.name, len(self.plan.breaks),
                     ",".join(sorted(self.plan.unreadable)) or "-")
            self.plan.forgive()
            self.health.unreadable_tags = []
            self._learned_at = now


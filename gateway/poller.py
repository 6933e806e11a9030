"""Poll one Modbus device on a fixed schedule, each device in its own task and client.

A device that fails only delays itself: its own client times out, backs off and
reconnects while the other devices' tasks keep their schedules.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from gateway.planner import Read, plan_reads
from gateway.settings import DeviceSettings
from registermap import Table, decode

log = logging.getLogger("gateway.poller")

Values = dict[str, bool | int | float | str]
#: Called with (device, source timestamp in epoch ms, decoded values) after every good poll.
SampleSink = Callable[[DeviceSettings, int, Values], None]


class PollError(Exception):
    pass


@dataclass
class DeviceHealth:
    polls_ok: int = 0
    polls_failed: int = 0
    consecutive_failures: int = 0
    last_success_ms: int | None = None
    last_error: str | None = None
    last_latency_ms: float | None = None


@dataclass
class DevicePoller:
    device: DeviceSettings
    sink: SampleSink
    health: DeviceHealth = field(default_factory=DeviceHealth)
    max_backoff_s: float = 30.0

    def __post_init__(self) -> None:
        d = self.device
        self.reads: list[Read] = plan_reads(d.tags, d.max_registers_per_read, d.max_bits_per_read, d.max_gap)
        self._client = AsyncModbusTcpClient(d.host, port=d.port, timeout=d.timeout_s, retries=0)

    async def run(self) -> None:
        """Poll forever on a drift-free schedule; missed slots are skipped, not bunched."""
        interval = self.device.poll_interval_s
        next_at = time.monotonic()
        while True:
            try:
                await self.poll_once()
            except Exception as exc:  # noqa: BLE001 - a long-running poller must outlive any one poll
                if not isinstance(exc, PollError):
                    log.exception("poll_crashed device=%s", self.device.name)
                self._failed(str(exc))
                await asyncio.sleep(self._backoff_s())
                next_at = time.monotonic()
                continue
            next_at += interval
            now = time.monotonic()
            if next_at < now:  # overran: skip to the next slot in the future
                next_at += math.ceil((now - next_at) / interval) * interval
            await asyncio.sleep(next_at - now)

    async def poll_once(self) -> None:
        d = self.device
        if not self._client.connected:
            if not await self._client.connect():
                raise PollError(f"cannot connect to {d.host}:{d.port}")
        ts_ms = time.time_ns() // 1_000_000
        started = time.perf_counter()
        values: Values = {}
        for read in self.reads:
            raw = await self._read(read)
            for tag in read.tags:
                value = decode(tag, raw[read.slice_for(tag)])
                if isinstance(value, float) and not math.isfinite(value):
                    log.warning("value_skipped device=%s tag=%s reason=not-finite value=%r", d.name, tag.name, value)
                    continue
                values[tag.name] = value
        latency_ms = (time.perf_counter() - started) * 1000
        self._succeeded(ts_ms, latency_ms)
        self.sink(d, ts_ms, values)

    async def _read(self, read: Read) -> list[int] | list[bool]:
        d = self.device
        call = {
            Table.coil: self._client.read_coils,
            Table.discrete_input: self._client.read_discrete_inputs,
            Table.holding_register: self._client.read_holding_registers,
            Table.input_register: self._client.read_input_registers,
        }[read.table]
        try:
            response = await call(read.address, count=read.count, device_id=d.unit_id)
        except (ModbusException, OSError, asyncio.TimeoutError) as exc:
            self._client.close()
            raise PollError(f"{read.table.value} {read.address}+{read.count}: {type(exc).__name__}: {exc}") from exc
        if response.isError():
            code = getattr(response, "exception_code", None)
            raise PollError(f"{read.table.value} {read.address}+{read.count}: Modbus exception {code}")
        data = response.bits if read.table in (Table.coil, Table.discrete_input) else response.registers
        if len(data) < read.count:
            raise PollError(f"{read.table.value} {read.address}+{read.count}: short response ({len(data)})")
        return data

    def _succeeded(self, ts_ms: int, latency_ms: float) -> None:
        h = self.health
        if h.consecutive_failures:
            log.info("device_recovered device=%s after_failures=%d", self.device.name, h.consecutive_failures)
        h.polls_ok += 1
        h.consecutive_failures = 0
        h.last_success_ms = ts_ms
        h.last_latency_ms = latency_ms

    def _failed(self, error: str) -> None:
        h = self.health
        h.polls_failed += 1
        h.consecutive_failures += 1
        h.last_error = error
        log.warning(
            "poll_failed device=%s host=%s:%d failures=%d backoff_s=%.1f error=%r",
            self.device.name, self.device.host, self.device.port, h.consecutive_failures, self._backoff_s(), error,
        )

    def _backoff_s(self) -> float:
        base = self.device.poll_interval_s
        return min(self.max_backoff_s, base * 2 ** min(self.health.consecutive_failures - 1, 10))

    def close(self) -> None:
        self._client.close()

"""Fault injection for simulated PLCs: what real shop floors do to a gateway, on a schedule.

A ``FaultProxy`` sits between a gateway and a Modbus TCP server and misbehaves per its
``FaultSchedule`` ("at t+X for D seconds do MODE", optionally only for some unit ids) or
per a mode set by hand from a test:

- ``delay``: answer, but ``delay_s`` late (a slow PLC);
- ``drop``: close the connection when a request arrives (a flaky network);
- ``exception``: answer with Modbus exception ``code`` (4 device failure, 6 busy, ...);
- ``illegal_address``: exception 2 for reads touching ``addresses`` (a map that is wrong);
- ``malformed``: answer with a frame that cannot be parsed;
- ``silent``: accept requests but never answer (a PLC that hangs);
- ``disappear``: stop listening and cut every connection, and listen again when the
  window ends (a PLC switched off and on).

A proxy, rather than hooks inside the server, keeps connection-level faults honest (the
gateway sees real closed sockets and real silence) and works in front of any server.

Also here: ``CountingPlc``, a device that numbers every read it serves (ground truth for
zero-loss tests and benchmarks), ``CountingFramedPlc``, the same behind an MC or XGT port, and ``NullModem``, two pseudo-terminals wired back to
back so an RTU serial client and server can talk without hardware.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pty
import select
import struct
import threading
import time
import tty
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Annotated, TextIO

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pymodbus import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

log = logging.getLogger(__name__)

_READ_FUNCTIONS = (1, 2, 3, 4)


class Mode(str, Enum):
    delay = "delay"
    drop = "drop"
    exception = "exception"
    illegal_address = "illegal_address"
    malformed = "malformed"
    silent = "silent"
    disappear = "disappear"


class Fault(BaseModel):
    """One window of misbehaviour, relative to the proxy's start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode
    at_s: Annotated[float, Field(ge=0)] = 0.0
    for_s: Annotated[float, Field(gt=0)] = float("inf")
    delay_s: Annotated[float, Field(ge=0, le=600)] = 0.0
    code: Annotated[int, Field(ge=1, le=255, description="exception code for mode 'exception'")] = 4
    addresses: tuple[tuple[int, int], ...] = Field(
        (), description="inclusive (first, last) wire addresses refused in mode 'illegal_address'"
    )
    units: tuple[int, ...] | None = Field(None, description="only requests to these unit ids; all by default")

    @model_validator(mode="after")
    def _complete(self) -> "Fault":
        if self.mode is Mode.delay and self.delay_s <= 0:
            raise ValueError("mode 'delay' needs delay_s > 0")
        if self.mode is Mode.illegal_address and not self.addresses:
            raise ValueError("mode 'illegal_address' needs addresses: [[first, last], ...]")
        if self.mode is Mode.disappear and self.units is not None:
            raise ValueError("mode 'disappear' takes the whole device away; 'units' does not apply")
        return self

    def covers(self, t_s: float) -> bool:
        return self.at_s <= t_s < self.at_s + self.for_s

    def applies_to(self, unit: int) -> bool:
        return self.units is None or unit in self.units


class FaultSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    faults: tuple[Fault, ...] = ()

    def active(self, t_s: float, unit: int | None = None) -> Fault | None:
        """The first fault whose window covers ``t_s`` (and ``unit``, if given)."""
        for f in self.faults:
            if f.covers(t_s) and (unit is None or f.applies_to(unit)):
                return f
        return None

    def absent(self, t_s: float) -> bool:
        return any(f.mode is Mode.disappear and f.covers(t_s) for f in self.faults)


def exception_frame(tid: int, unit: int, function: int, code: int) -> bytes:
    """A Modbus TCP exception response."""
    return struct.pack(">HHHBBB", tid, 0, 3, unit, function | 0x80, code)


def malformed_frame(tid: int, unit: int, function: int) -> bytes:
    """A response that claims 20 data bytes but carries 2: unparseable for any client."""
    return struct.pack(">HHHBBB", tid, 0, 5, unit, function, 20) + b"\x00\x01"


def _touches(address: int, count: int, ranges: Iterable[tuple[int, int]]) -> bool:
    return any(address <= last and first < address + count for first, last in ranges)


class FaultProxy:
    """Modbus TCP proxy that injects faults; ``port`` is where clients connect."""

    def __init__(
        self, upstream: tuple[str, int], schedule: FaultSchedule | None = None, listen: tuple[str, int] = ("127.0.0.1", 0)
    ) -> None:
        self.upstream = upstream
        self.schedule = schedule or FaultSchedule()
        self.listen = listen
        self.port = listen[1]
        self.manual: Fault | None = None  # overrides the schedule while set
        self.requests = 0
        self.faulted = 0
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self._t0 = 0.0
        self._watch: asyncio.Task | None = None

    # ------------------------------------------------------------------ control

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def set_fault(self, fault: Fault | None) -> None:
        """Misbehave now (until cleared with None), regardless of the schedule."""
        self.manual = fault

    def _current(self, unit: int | None) -> Fault | None:
        if self.manual is not None:
            return self.manual if unit is None or self.manual.applies_to(unit) else None
        return self.schedule.active(self.elapsed(), unit)

    def _absent(self) -> bool:
        if self.manual is not None:
            return self.manual.mode is Mode.disappear
        return self.schedule.absent(self.elapsed())

    async def start(self) -> None:
        self._t0 = time.monotonic()
        await self._open()
        self._watch = asyncio.create_task(self._watch_presence())

    async def stop(self) -> None:
        if self._watch:
            self._watch.cancel()
        await self._close_listener()

    async def _open(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.listen[0], self.port or self.listen[1])
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._conns):
            w.transport.abort()
        self._conns.clear()

    async def _watch_presence(self) -> None:
        while True:
            absent = self._absent()
            if absent and self._server is not None:
                log.info("fault_disappear port=%d", self.port)
                await self._close_listener()
            elif not absent and self._server is None:
                log.info("fault_reappear port=%d", self.port)
                await self._open()
            await asyncio.sleep(0.02)

    # ------------------------------------------------------------------ traffic

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        up_writer = None
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            while True:
                header = await reader.readexactly(7)
                tid, _pid, length, unit = struct.unpack(">HHHB", header)
                pdu = await reader.readexactly(length - 1)
                self.requests += 1
                function = pdu[0]
                fault = self._current(unit)
                if fault is not None:
                    self.faulted += 1
                    if fault.mode is Mode.drop:
                        break
                    if fault.mode is Mode.silent:
                        continue
                    if fault.mode is Mode.exception:
                        writer.write(exception_frame(tid, unit, function, fault.code))
                        await writer.drain()
                        continue
                    if fault.mode is Mode.malformed:
                        writer.write(malformed_frame(tid, unit, function))
                        await writer.drain()
                        continue
                    if fault.mode is Mode.illegal_address and function in _READ_FUNCTIONS:
                        address, count = struct.unpack(">HH", pdu[1:5])
                        if _touches(address, count, fault.addresses):
                            writer.write(exception_frame(tid, unit, function, 2))
                            await writer.drain()
                            continue
                    if fault.mode is Mode.delay:
                        await asyncio.sleep(fault.delay_s)
                up_writer.write(header + pdu)
                await up_writer.drain()
                rh = await up_reader.readexactly(7)
                (rlen,) = struct.unpack(">H", rh[4:6])
                body = await up_reader.readexactly(rlen - 1)
                writer.write(rh + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self._conns.discard(writer)
            writer.transport.abort()
            if up_writer is not None:
                up_writer.transport.abort()


# ---------------------------------------------------------------------- a numbered PLC


class CountingPlc:
    """A device whose holding registers 0-1 (uint32, ABCD) hold a sequence number that
    increases with every read of them that it serves, with ``extra`` more registers after
    it holding ``seq + i``. Each served number is written to ``served_log`` (JSON lines),
    so a test can match every sample a subscriber got to the read that produced it.

    ``holes`` are (first, last) holding-register ranges left undefined: reading them
    draws exception 2 from pymodbus, as a real device with a gappy map does. ``held`` maps
    register addresses to values a test sets (they override ``seq + i`` there).
    """

    def __init__(
        self,
        name: str,
        unit_id: int = 1,
        extra: int = 8,
        served_log: TextIO | None = None,
        holes: Sequence[tuple[int, int]] = (),
        size: int | None = None,
    ) -> None:
        self.name = name
        self.unit_id = unit_id
        self.extra = extra
        self.size = size or 2 + extra
        self.served_log = served_log
        self.holes = tuple(holes)
        self.seq = 0
        self.held: dict[int, int] = {}

    def device(self) -> SimDevice:
        blocks: list[SimData] = []
        start = 0
        for first, last in sorted(self.holes) + [(self.size, self.size)]:
            if first > start:
                blocks.append(SimData(start, count=first - start, values=0, datatype=DataType.REGISTERS))
            start = last + 1
        bits = [SimData(0, count=1, values=False, datatype=DataType.BITS)]
        return SimDevice(id=self.unit_id, simdata=(bits, bits, blocks, blocks), action=self._on_request)

    async def _on_request(self, function_code, start_address, address, count, registers, values) -> None:
        if function_code != 3 or values is not None or address > 1:
            return None
        self.seq += 1
        regs = [(self.seq >> 16) & 0xFFFF, self.seq & 0xFFFF] + [(self.seq + i) & 0xFFFF for i in range(self.extra)]
        for a, v in self.held.items():
            if 0 <= a < len(regs):
                regs[a] = v & 0xFFFF
        for i, r in enumerate(regs):
            if 0 <= i - start_address < len(registers):
                registers[i - start_address] = r
        if self.served_log is not None:
            self.served_log.write(json.dumps({"t_ms": int(time.time() * 1000), "machine": self.name, "seq": self.seq}) + "\n")
            self.served_log.flush()
        return None


class CountingFramedPlc:
    """``CountingPlc`` behind an MC (SLMP) or XGT (FEnet) port: the sequence number in words 0-1
    (``D0``-``D1`` or ``%DD0``, low word first as these PLCs store 32-bit values), ``seq + i``
    in the ``extra`` words after it, ``held`` words set by a test; the number goes up with every
    request served, and is logged to ``served_log`` like ``CountingPlc``'s. ``start`` again after
    ``stop`` listens on the same port, as a PLC switched off and on."""

    def __init__(self, name: str, protocol: str, extra: int = 8, served_log: TextIO | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        from simulators.mc_server import McMemory, McServer
        from simulators.xgt_server import XgtMemory, XgtServer

        self.name, self.protocol, self.extra, self.served_log = name, protocol, extra, served_log
        self.seq = 0
        self.held: dict[int, int] = {}
        if protocol == "mc":
            self.mc_memory = McMemory()
            self.server: McServer | XgtServer = McServer(self.mc_memory, host, port)
        elif protocol == "xgt":
            self.xgt_memory = XgtMemory()
            self.server = XgtServer(self.xgt_memory, host, port)
        else:
            raise ValueError(f"CountingFramedPlc serves 'mc' or 'xgt', not {protocol!r}")
        inner = self.server.answer

        def answer(frame: bytes) -> bytes:
            self._count()
            return inner(frame)

        self.server.answer = answer

    @property
    def port(self) -> int:
        return self.server.port

    def _count(self) -> None:
        self.seq += 1
        words = [self.seq & 0xFFFF, (self.seq >> 16) & 0xFFFF] + [(self.seq + i) & 0xFFFF for i in range(self.extra)]
        for a, v in self.held.items():
            if 0 <= a < len(words):
                words[a] = v & 0xFFFF
        if self.protocol == "mc":
            self.mc_memory.words["D"][:len(words)] = words
        else:
            self.xgt_memory.areas["D"][:2 * len(words)] = b"".join(w.to_bytes(2, "little") for w in words)
        if self.served_log is not None:
            self.served_log.write(json.dumps({"t_ms": int(time.time() * 1000), "machine": self.name, "seq": self.seq}) + "\n")
            self.served_log.flush()

    async def start(self) -> int:
        return await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()


def hanging_device(unit_id: int, release: asyncio.Event) -> SimDevice:
    """A unit that never answers until ``release`` is set: a dead drop on a shared bus,
    where the other units keep answering (pymodbus handles each request in its own task)."""

    async def hang(*_args) -> None:
        await release.wait()
        return None

    bits = [SimData(0, count=1, values=False, datatype=DataType.BITS)]
    regs = [SimData(0, count=64, values=0, datatype=DataType.REGISTERS)]
    return SimDevice(id=unit_id, simdata=(bits, bits, regs, regs), action=hang)


async def start_tcp_server(
    devices: SimDevice | list[SimDevice], host: str = "127.0.0.1", port: int = 0, framer: FramerType = FramerType.SOCKET,
    ignore_missing_devices: bool = True,
) -> tuple[ModbusTcpServer, int]:
    """Start a pymodbus TCP server on a free port; returns it and its port. A unit id with no
    device gets no answer (as on a real bus), not exception 0x0B."""
    if port == 0:
        import socket

        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    server = ModbusTcpServer(devices, address=(host, port), framer=framer, ignore_missing_devices=ignore_missing_devices)
    await server.serve_forever(background=True)
    return server, port


# ---------------------------------------------------------------------- serial without hardware


class NullModem:
    """Two pseudo-terminals wired back to back: open ``ports[0]`` on one side and
    ``ports[1]`` on the other, as with a null-modem cable between two serial ports."""

    def __init__(self) -> None:
        self._masters: list[int] = []
        self.ports: list[str] = []
        for _ in range(2):
            master, slave = pty.openpty()
            tty.setraw(master)
            tty.setraw(slave)
            self._masters.append(master)
            self.ports.append(os.ttyname(slave))
            self._slaves = getattr(self, "_slaves", []) + [slave]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="null-modem", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        a, b = self._masters
        peer = {a: b, b: a}
        while not self._stop.is_set():
            ready, _, _ = select.select([a, b], [], [], 0.1)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                if data:
                    os.write(peer[fd], data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        for fd in self._masters + self._slaves:
            try:
                os.close(fd)
            except OSError:
                pass


# ---------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m simulators.faults --upstream HOST:PORT --port N --schedule faults.yaml``:
    put a misbehaving proxy in front of any Modbus TCP device (a simulator or a real PLC on
    a test bench) to see how a gateway copes."""
    import argparse

    import yaml

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0] if main.__doc__ else None)
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the real device or simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="port the gateway connects to")
    parser.add_argument("--schedule", help="YAML: faults: [{mode: silent, at_s: 10, for_s: 30, units: [2]}, ...]")
    a = parser.parse_args(argv)
    host, _, port = a.upstream.rpartition(":")
    schedule = FaultSchedule()
    if a.schedule:
        with open(a.schedule, encoding="utf-8") as f:
            schedule = FaultSchedule.model_validate(yaml.safe_load(f) or {})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    async def run() -> None:
        proxy = FaultProxy((host or "127.0.0.1", int(port)), schedule, listen=(a.host, a.port))
        await proxy.start()
        log.info("fault_proxy_listening port=%d upstream=%s faults=%d", proxy.port, a.upstream, len(schedule.faults))
        try:
            await asyncio.Event().wait()
        finally:
            await proxy.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

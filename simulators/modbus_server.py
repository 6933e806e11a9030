"""Serve simulated machines as Modbus TCP devices (pymodbus), one server per machine; a machine
with ``protocol: mc`` or ``xgt`` is served by ``simulators.framed_plcs`` beside them, one with
``protocol: opcua`` by ``simulators.opcua_plcs``.

Registers are refreshed from the machine's timeline on every request, so every response
carries the machine's state at the simulated instant it was served. The simulated clock
is ``start + (wall - wall_at_start) * speed``. With ``served_log`` set, each served block
is recorded with its wall-clock time and simulated time as ground truth for tests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from registermap import Table, Tag, encode
from simulators.faults import FaultProxy, FaultSchedule
from simulators.scenario import Scenario, SimMachine
from simulators.timeline import MachineTimeline

log = logging.getLogger(__name__)

_TABLE_OF_FUNCTION = {1: Table.coil, 5: Table.coil, 15: Table.coil, 2: Table.discrete_input, 4: Table.input_register}
_TABLE_OF_FUNCTION.update({fc: Table.holding_register for fc in (3, 6, 16, 22, 23)})


def register_values(timeline: MachineTimeline, t: float) -> dict[str, bool | int | float]:
    """The machine's signals at one instant as register-friendly Python values."""
    out: dict[str, bool | int | float] = {}
    for name, arr in timeline.values_at(t).items():
        v = arr[0].item()
        out[name] = v if isinstance(v, (bool, float)) else int(v)
    return out


class SimulatedPlc:
    """One machine behind one Modbus unit id: a timeline, its register map and a clock."""

    def __init__(
        self,
        machine: SimMachine,
        timeline: MachineTimeline | None = None,
        sim_time: Callable[[float], float] = lambda wall: wall,
        served_log: TextIO | None = None,
    ) -> None:
        self.machine = machine
        self.timeline = timeline or MachineTimeline(machine.spec)
        self.tags: tuple[Tag, ...] = machine.tags
        self.sim_time = sim_time
        self.served_log = served_log

    def device(self) -> SimDevice:
        def block(table: Table) -> list[SimData]:
            tags = [t for t in self.tags if t.table is table]
            if table in (Table.coil, Table.discrete_input):
                size = max((t.address + 1 for t in tags), default=1)
                return [SimData(0, count=size, values=False, datatype=DataType.BITS)]
            size = max((t.address + t.width for t in tags), default=1)
            return [SimData(0, count=size, values=0, datatype=DataType.REGISTERS)]

        return SimDevice(
            id=self.machine.unit_id,
            simdata=(
                block(Table.coil),
                block(Table.discrete_input),
                block(Table.holding_register),
                block(Table.input_register),
            ),
            action=self._on_request,
        )

    async def _on_request(
        self, function_code: int, start_address: int, address: int, count: int, registers: list[int], _set: object
    ) -> None:
        table = _TABLE_OF_FUNCTION.get(function_code)
        if table is None:
            return None
        wall = time.time()
        sim = self.sim_time(wall)
        values = register_values(self.timeline, sim)
        bit_table = table in (Table.coil, Table.discrete_input)
        for tag in self.tags:
            if tag.table is not table:
                continue
            if bit_table:
                word, bit = divmod(tag.address, 16)
                idx = word - start_address
                if 0 <= idx < len(registers):
                    registers[idx] = (registers[idx] & ~(1 << bit)) | ((1 if values[tag.name] else 0) << bit)
            else:
                regs = encode(tag, values[tag.name])
                offset = tag.address - start_address
                if offset + len(regs) > 0 and offset < len(registers):
                    lo = max(offset, 0)
                    registers[lo : offset + len(regs)] = regs[lo - offset :][: len(registers) - lo]
        if self.served_log is not None:
            record = {
                "t_ms": int(wall * 1000),
                "sim_s": sim,
                "machine": self.machine.ref.machine,
                "line": self.machine.ref.line,
                "table": table.value,
                "block_start": start_address * 16 if bit_table else start_address,
                "registers": registers[:-1],  # pymodbus appends one guard register
            }
            self.served_log.write(json.dumps(record) + "\n")
            self.served_log.flush()
        return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def serve_scenario(
    scenario: Scenario,
    host: str | None = None,
    speed: float = 1.0,
    start_s: float | None = None,
    served_log: Path | None = None,
    truth_dir: Path | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Serve every machine of the scenario that has a port, until cancelled.

    ``start_s``: the simulated instant at startup (default: now). With ``truth_dir``, the
    ground truth of the simulated span is written there on the way out.
    """
    wall0 = time.time()
    sim0 = wall0 if start_s is None else start_s

    def sim_time(wall: float) -> float:
        return sim0 + (wall - wall0) * speed

    machines = [m for m in scenario.machines() if m.port is not None]
    if not machines:
        raise ValueError("no machine in the scenario has a Modbus port; give each a 'port' to serve it live")
    log_file = open(served_log, "a", encoding="utf-8") if served_log else None
    host = host or scenario.host
    servers = []
    plcs = []
    proxies: list[FaultProxy] = []
    framed: list = []  # MC and XGT machines (simulators/framed_plcs.py), OPC UA ones (simulators/opcua_plcs.py)
    try:
        for m in machines:
            if m.protocol == "opcua":
                from simulators.opcua_plcs import SimulatedOpcUaPlc

                uaplc = SimulatedOpcUaPlc(m, sim_time=sim_time, served_log=log_file, host=host)
                framed.append(uaplc)  # its timeline drew the history up to now for the server's first values
                continue
            if m.protocol != "modbus":
                from simulators.framed_plcs import SimulatedFramedPlc

                fplc = SimulatedFramedPlc(m, sim_time=sim_time, served_log=log_file, host=host)
                register_values(fplc.timeline, sim0)  # draw the history up to now before listening
                framed.append(fplc)
                continue
            plc = SimulatedPlc(m, sim_time=sim_time, served_log=log_file)
            register_values(plc.timeline, sim0)  # draw the history up to now before listening
            plcs.append(plc)
            if m.faults:
                # the PLC listens on a private port; clients reach it through the fault proxy
                inner = _free_port()
                servers.append(ModbusTcpServer(plc.device(), address=("127.0.0.1", inner)))
                proxies.append(FaultProxy(("127.0.0.1", inner), FaultSchedule(faults=m.faults), listen=(host, m.port)))
            else:
                servers.append(ModbusTcpServer(plc.device(), address=(host, m.port)))
        for server in servers:
            await server.serve_forever(background=True)  # returns once listening
        for fplc in framed:
            await fplc.start()
        for proxy in proxies:
            await proxy.start()  # fault windows count from here
        for m in machines:
            log.info("plc_listening machine=%s/%s kind=%s protocol=%s address=%s:%d unit=%d speed=%g faults=%d",
                     m.ref.line, m.ref.machine, m.spec.kind.name, m.protocol, host, m.port, m.unit_id, speed,
                     len(m.faults))
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()
    finally:
        for fplc in framed:
            await fplc.stop()
        for proxy in proxies:
            await proxy.stop()
        for s in servers:
            await s.shutdown()
        if log_file is not None:
            log_file.close()
        if truth_dir is not None:
            from simulators.backfill import truth_only

            path = truth_only(scenario, sim0, sim_time(time.time()), truth_dir)
            log.info("ground_truth_written path=%s", path)


async def serve(settings, base_dir: Path | None = None, ready: asyncio.Event | None = None) -> None:
    """Run the config's ``simulator`` section until cancelled."""
    scenario = settings.resolve_scenario(base_dir)
    await serve_scenario(scenario, host=settings.host, speed=settings.speed, start_s=settings.start_s(),
                         served_log=settings.served_log, truth_dir=settings.truth_dir, ready=ready)

"""Serve simulated machines as Modbus TCP devices (pymodbus), one server per machine.

Registers are refreshed from the model on every request, so every response carries the
machine's state at the moment it was served; with ``served_log`` set, each served block
is recorded with its wall-clock time as ground truth for tests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import TextIO

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from registermap import Table, Tag, encode
from simulators.press import PRESS_TAGS, PressModel
from simulators.settings import SimulatedMachine, SimulatorSettings

log = logging.getLogger("simulators.modbus")

_TABLE_OF_FUNCTION = {1: Table.coil, 5: Table.coil, 15: Table.coil, 2: Table.discrete_input, 4: Table.input_register}
_TABLE_OF_FUNCTION.update({fc: Table.holding_register for fc in (3, 6, 16, 22, 23)})


class SimulatedPlc:
    """One machine behind one Modbus unit id: a model, its register map and a clock."""

    def __init__(
        self,
        machine: SimulatedMachine,
        model: PressModel,
        tags: tuple[Tag, ...] = PRESS_TAGS,
        sim_time: Callable[[float], float] = lambda wall: wall,
        served_log: TextIO | None = None,
    ) -> None:
        self.machine = machine
        self.model = model
        self.tags = tags
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
        values = self.model.at(self.sim_time(wall)).values()
        bit_table = table in (Table.coil, Table.discrete_input)
        for tag in self.tags:
            if tag.table is not table:
                continue
            if bit_table:
                word, bit = divmod(tag.address, 16)
                idx = word - start_address
                registers[idx] = (registers[idx] & ~(1 << bit)) | ((1 if values[tag.name] else 0) << bit)
            else:
                regs = encode(tag, values[tag.name])
                offset = tag.address - start_address
                registers[offset : offset + len(regs)] = regs
        if self.served_log is not None:
            record = {
                "t_ms": int(wall * 1000),
                "machine": self.machine.name,
                "table": table.value,
                "block_start": start_address * 16 if bit_table else start_address,
                "registers": registers[:-1],  # pymodbus appends one guard register
            }
            self.served_log.write(json.dumps(record) + "\n")
            self.served_log.flush()
        return None


async def serve(settings: SimulatorSettings, ready: asyncio.Event | None = None) -> None:
    """Run every configured machine until cancelled."""
    start = time.time()

    def sim_time(wall: float) -> float:
        return start + (wall - start) * settings.speed

    served_log = open(settings.served_log, "a", encoding="utf-8") if settings.served_log else None
    servers = []
    try:
        for m in settings.machines:
            model = PressModel(seed=m.seed, start_s=start, initial_good_count=m.initial_good_count)
            plc = SimulatedPlc(m, model, sim_time=sim_time, served_log=served_log)
            server = ModbusTcpServer(plc.device(), address=(settings.host, m.port))
            servers.append(server)
        for server, m in zip(servers, settings.machines):
            await server.serve_forever(background=True)  # returns once listening
            log.info("plc_listening machine=%s address=%s:%d unit=%d seed=%d", m.name, settings.host, m.port, m.unit_id, m.seed)
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()
    finally:
        for s in servers:
            await s.shutdown()
        if served_log is not None:
            served_log.close()

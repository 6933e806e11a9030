"""Connections to devices: one pymodbus client per physical link, shared by the units on it.

Units behind one serial line or one RTU-over-TCP converter must share a client: the bus
carries one request at a time, and a second connection to a converter is often refused.
So a link serialises requests with its own lock, gives each request the timeout of the
unit it addresses, and does not drop the connection when one unit is silent (pymodbus
would after a few no-responses, cutting off every healthy unit behind the converter).
A dead unit therefore costs the others at most its own timeout per attempt, and its
backoff keeps those attempts rare.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from gateway.settings import DeviceSettings, Protocol, Transport
from registermap import BIT_TABLES, Table

if TYPE_CHECKING:
    from gateway.mclink import McLink
    from gateway.xgtlink import XgtLink

log = logging.getLogger(__name__)


def _reraise_cancellation() -> None:
    """pymodbus turns a cancelled request into ModbusIOException; a task being cancelled
    (shutdown) must stop, not treat it as a failed poll and go on polling."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError()


class LinkError(Exception):
    """No usable answer: not connected, timed out, connection dropped or garbled frame."""


class Refused(Exception):
    """The device answered with a Modbus exception response."""

    def __init__(self, code: int, what: str, detail: str | None = None, protocol_code: int | None = None) -> None:
        """``detail``: the protocol's own words for the refusal (default: the Modbus exception code);
        ``protocol_code``: the protocol's own code (an MC end code, an XGT NAK code) when ``code``
        stands for it."""
        super().__init__(f"{what}: {detail or f'Modbus exception {code}'}")
        self.code = code
        self.detail = detail or f"Modbus exception {code}"
        self.protocol_code = code if protocol_code is None else protocol_code


class Unsupported(Refused):
    """The device does not support this request's command (MC end code C059 for a random read on
    an older CPU): the planner falls back to requests it does support."""


ILLEGAL_DATA_ADDRESS = 2

_NO_AUTO_DISCONNECT = 1 << 30


class ModbusLink:
    def __init__(self, name: str, client: AsyncModbusTcpClient | AsyncModbusSerialClient, shared: bool) -> None:
        """``shared``: several units use this connection, so a silent unit must not close it."""
        self.name = name
        self.client = client
        self.shared = shared
        self._lock = asyncio.Lock()
        if shared:
            self.client.ctx.max_until_disconnect = self.client.ctx.count_until_disconnect = _NO_AUTO_DISCONNECT

    @classmethod
    def for_device(cls, device: DeviceSettings, shared: bool) -> "ModbusLink":
        # reconnect_delay=0: pymodbus must not reconnect behind our back; the pollers'
        # backoff decides when to try again.
        client: AsyncModbusTcpClient | AsyncModbusSerialClient
        if device.transport is Transport.rtu:
            s = device.serial
            assert s is not None
            client = AsyncModbusSerialClient(
                s.port, framer=FramerType.RTU, baudrate=s.baudrate, bytesize=s.bytesize, parity=s.parity,
                stopbits=s.stopbits, timeout=device.timeout_s, retries=0, reconnect_delay=0,
            )
        else:
            framer = FramerType.RTU if device.transport is Transport.rtu_over_tcp else FramerType.SOCKET
            client = AsyncModbusTcpClient(
                device.host or "", port=device.port, framer=framer, timeout=device.timeout_s, retries=0,
                reconnect_delay=0,
            )
        return cls(device.link_name, client, shared or device.transport is not Transport.tcp)

    async def read(self, table: Table | str, address: int, count: int, unit: int, timeout_s: float) -> list[int] | list[bool]:
        if not isinstance(table, Table):
            raise LinkError(f"{self.name}: {table!r} is not a Modbus table")
        what = f"{table.value} {address}+{count} unit {unit}"
        async with self._lock:
            if not self.client.connected:
                self.client.ctx.comm_params.timeout_connect = timeout_s
                try:
                    ok = await self.client.connect()
                except (OSError, ModbusException) as exc:
                    _reraise_cancellation()
                    raise LinkError(f"cannot connect to {self.name}: {exc}") from exc
                if not ok:
                    raise LinkError(f"cannot connect to {self.name}")
            self.client.ctx.comm_params.timeout_connect = timeout_s
            call = {
                Table.coil: self.client.read_coils,
                Table.discrete_input: self.client.read_discrete_inputs,
                Table.holding_register: self.client.read_holding_registers,
                Table.input_register: self.client.read_input_registers,
            }[table]
            try:
                response = await call(address, count=count, device_id=unit)
            except (ModbusException, OSError, asyncio.TimeoutError) as exc:
                _reraise_cancellation()
                if not self.shared or not self.client.connected:
                    # a lone device's stale connection is reset; a shared one is kept
                    # unless the link itself went down
                    self.client.close()
                raise LinkError(f"{what}: {type(exc).__name__}: {exc}") from exc
        if response.isError():
            raise Refused(int(getattr(response, "exception_code", 0) or 0), what)
        data = response.bits if table in BIT_TABLES else response.registers
        if len(data) < count:
            raise LinkError(f"{what}: short response ({len(data)} of {count})")
        return list(data[:count])

    def close(self) -> None:
        self.client.close()


def build_links(devices: list[DeviceSettings]) -> dict[tuple, ModbusLink | McLink | XgtLink]:
    """One link per distinct connection; a link is 'shared' when several units use it.
    Needs a running event loop (pymodbus clients bind to it)."""
    from gateway.mclink import McLink
    from gateway.xgtlink import XgtLink

    users: dict[tuple, list[DeviceSettings]] = {}
    for d in devices:
        if d.protocol is not Protocol.opcua:  # an OPC UA device runs its own session (gateway.opcua)
            users.setdefault(d.link, []).append(d)
    links: dict[tuple, ModbusLink | McLink | XgtLink] = {}
    for key, ds in users.items():
        first = ds[0]
        if first.protocol is Protocol.mc:
            links[key] = McLink(first.host or "", first.port, first.series)
        elif first.protocol is Protocol.xgt:
            links[key] = XgtLink(first.host or "", first.port)
        else:
            links[key] = ModbusLink.for_device(first, shared=len(ds) > 1)
    return links

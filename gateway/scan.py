"""Probe which addresses of a device answer, to help a field engineer build a register map.

Reads the range in the largest blocks the protocol allows; a block refused with
exception 2 (illegal data address) is bisected until the addresses that answer are
found. A refusal only says "at least one address here is missing", so every missing
address costs about one request; present runs cost one per block plus a few per edge.
That is why the scan stops once a table has clearly ended: after ``end_after``
addresses in a row that do not answer, following the last one that did (PLC tables are
contiguous from 0 far more often than not), it says where it stopped instead of paying a
request for each of the thousands of addresses past the end.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from gateway.links import ILLEGAL_DATA_ADDRESS, Refused
from registermap import BIT_TABLES, Table

#: Refused blocks this small are probed address by address.
_SINGLES = 16
#: (table, address, count) -> data; raises Refused or another error
ReadFn = Callable[[Table, int, int], Awaitable[list]]


@dataclass
class ScanResult:
    table: Table
    answered: list[int] = field(default_factory=list)
    values: dict[int, int | bool] = field(default_factory=dict)
    requests: int = 0
    refusals: dict[int, int] = field(default_factory=dict)  # other exception codes -> count
    #: the scan stopped here (the first address not probed) because the table had ended
    stopped_at: int | None = None

    @property
    def all_zero(self) -> bool:
        """Every answering address read 0: a device (or a converter with nothing behind it) that
        answers any address with zeros looks like this, so it is worth saying."""
        return bool(self.values) and not any(self.values.values())

    def ranges(self) -> list[tuple[int, int]]:
        """Answered addresses as inclusive (first, last) runs."""
        out: list[tuple[int, int]] = []
        for a in sorted(self.answered):
            if out and a == out[-1][1] + 1:
                out[-1] = (out[-1][0], a)
            else:
                out.append((a, a))
        return out


class _Ended(Exception):
    def __init__(self, at: int) -> None:
        self.at = at


async def scan_table(read: ReadFn, table: Table, start: int, end: int, block: int | None = None,
                     end_after: int | None = 256) -> ScanResult:
    """Addresses in [start, end) of ``table`` that the device serves; with ``end_after``, stop
    after that many missing addresses in a row past the last one that answered (None: never)."""
    result = ScanResult(table)
    block = block or (2000 if table in BIT_TABLES else 125)
    last_answer = [start - 1]  # probes go in address order: everything between was missing or not yet seen

    async def probe(address: int, count: int) -> None:
        if end_after is not None and address - last_answer[0] > end_after and result.answered:
            raise _Ended(address)
        result.requests += 1
        try:
            data = await read(table, address, count)
        except Refused as exc:
            if exc.code != ILLEGAL_DATA_ADDRESS:
                result.refusals[exc.code] = result.refusals.get(exc.code, 0) + 1
                return
            if count == 1:
                return
            if count <= _SINGLES:
                # bisecting further would cost up to 2n-1 requests; probing each costs n
                for a in range(address, address + count):
                    await probe(a, 1)
                return
            half = count // 2
            await probe(address, half)
            await probe(address + half, count - half)
            return
        for i in range(count):
            result.answered.append(address + i)
            result.values[address + i] = data[i]
        last_answer[0] = address + count - 1

    address = start
    try:
        while address < end:
            count = min(block, end - address)
            await probe(address, count)
            address += count
    except _Ended as ended:
        result.stopped_at = ended.at
    return result


async def reachability(host: str, port: int, timeout_s: float) -> str | None:
    """Why ``host:port`` cannot be reached, in a field engineer's words, or None if it accepts a
    connection. Checked with a plain TCP connect, so the answer never quotes a library's internals."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except TimeoutError:
        return (f"no answer within {timeout_s:g} s: the address may be wrong, the device off or unplugged, "
                "or a firewall drops the connection")
    except socket.gaierror:
        return "the name does not resolve: check the host name, or use the device's IP address"
    except ConnectionRefusedError:
        return ("the host refused the connection: nothing listens on that port; check the port (502 for "
                "Modbus TCP) and that the device's Modbus TCP server is enabled")
    except OSError as exc:
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "no route to the host: check that this PC is on the device's network (address, netmask, cable)"
        return f"cannot connect ({exc.strerror or exc})"
    writer.close()
    return None

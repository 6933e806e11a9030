"""Probe which addresses of a device answer, to help a field engineer build a register map.

Modbus (``scan_table``):

Reads the range in the largest blocks the protocol allows; a block refused with
exception 2 (illegal data address) is bisected until the addresses that answer are
found. A refusal only says "at least one address here is missing", so every missing
address costs about one request; present runs cost one per block plus a few per edge.
That is why the scan stops once a table has clearly ended: after ``end_after``
addresses in a row that do not answer, following the last one that did (PLC tables are
contiguous from 0 far more often than not), it says where it stopped instead of paying a
request for each of the thousands of addresses past the end.

MC and XGT (``scan_area``): a PLC's device area (D, M, %M, %D, ...) is allocated from 0 to the
size its parameters set, so the question is its size. One read at 0 says whether the area is
there at all (the refusal's end code or NAK says why not); reads at 1, 2, 4, ... then bisection
find the last word that answers, about 2 log2(size) requests; the values of the requested range
are then read in the largest blocks the protocol takes.
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


#: (area, word address, word count) -> words; raises Refused or LinkError
AreaReadFn = Callable[[str, int, int], Awaitable[list[int]]]


@dataclass
class AreaScan:
    area: str
    #: words [0, size) answer; None when the area does not answer at 0
    size: int | None = None
    #: the refusal of the read at 0: why the area is not there
    refused: Refused | None = None
    #: the area answered up to the search limit: it may go on
    unbounded: bool = False
    requests: int = 0
    #: the requested range's values (word address -> value), up to the area's end
    values: dict[int, int] = field(default_factory=dict)

    @property
    def all_zero(self) -> bool:
        return bool(self.values) and not any(self.values.values())

    def nonzero(self) -> list[int]:
        return sorted(a for a, v in self.values.items() if v)


async def scan_area(read: AreaReadFn, area: str, start: int, end: int, block: int, limit: int) -> AreaScan:
    """Which words of ``area`` answer (its size, searched up to ``limit`` words) and the values
    of [start, end) within it. Costs at most 1 + 2 log2(limit) + ceil((end - start) / block) requests."""
    result = AreaScan(area)

    async def answers(address: int) -> bool:
        result.requests += 1
        try:
            await read(area, address, 1)
        except Refused as exc:
            if address == 0:
                result.refused = exc
            return False
        return True

    if not await answers(0):
        return result
    good, bad, probe = 0, None, 1
    while probe < limit:  # double until a word does not answer
        if not await answers(probe):
            bad = probe
            break
        good, probe = probe, probe * 2
    if bad is None:
        if await answers(limit - 1):
            result.size, result.unbounded = limit, True
        bad = limit - 1
    while result.size is None and bad - good > 1:  # the last word that answers lies in [good, bad)
        mid = (good + bad) // 2
        if await answers(mid):
            good = mid
        else:
            bad = mid
    if result.size is None:
        result.size = good + 1
    address, stop = start, min(end, result.size)
    while address < stop:
        count = min(block, stop - address)
        result.requests += 1
        for i, value in enumerate(await read(area, address, count)):
            result.values[address + i] = value
        address += count
    return result


#: what to check when nothing listens on the port, per protocol
PORT_HINTS = {
    "modbus": "check the port (502 for Modbus TCP) and that the device's Modbus TCP server is enabled",
    "mc": ("check the port (the MC protocol / SLMP port opened in GX Works' Ethernet settings, TCP, binary code) "
           "and that those settings were written to the CPU"),
    "xgt": ("check the port (2004 for the FEnet dedicated protocol over TCP) and that the FEnet module's "
            "dedicated service is enabled in XG-PD"),
}


async def reachability(host: str, port: int, timeout_s: float, protocol: str = "modbus") -> str | None:
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
        return f"the host refused the connection: nothing listens on that port; {PORT_HINTS[protocol]}"
    except OSError as exc:
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "no route to the host: check that this PC is on the device's network (address, netmask, cable)"
        return f"cannot connect ({exc.strerror or exc})"
    writer.close()
    return None

"""Probe which addresses of a device answer, to help a field engineer build a register map.

Reads the range in the largest blocks the protocol allows; a block refused with
exception 2 (illegal data address) is bisected until the addresses that answer are
found. A refusal only says "at least one address here is missing", so every missing
address costs about one request; present runs cost one per block plus a few per edge.
"""

from __future__ import annotations

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

    def ranges(self) -> list[tuple[int, int]]:
        """Answered addresses as inclusive (first, last) runs."""
        out: list[tuple[int, int]] = []
        for a in sorted(self.answered):
            if out and a == out[-1][1] + 1:
                out[-1] = (out[-1][0], a)
            else:
                out.append((a, a))
        return out


async def scan_table(read: ReadFn, table: Table, start: int, end: int, block: int | None = None) -> ScanResult:
    """Addresses in [start, end) of ``table`` that the device serves."""
    result = ScanResult(table)
    block = block or (2000 if table in BIT_TABLES else 125)

    async def probe(address: int, count: int) -> None:
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

    address = start
    while address < end:
        count = min(block, end - address)
        await probe(address, count)
        address += count
    return result

"""An LS ELECTRIC XGT PLC's FEnet dedicated-protocol port on asyncio.

Serves byte-addressed device areas (%M, %D, %P, ...) that a simulated machine writes into,
with the PLC's answers to what it cannot serve: a NAK 0x0004 for a read past an area, 0x0003
for an area the PLC does not have, 0x0001 for more than 16 blocks. It shares the codec in
``plcprotocol.xgt``, so tests check the gateway's client against the framing a PLC uses.
Continuous (block) reads and individual reads (up to 16 variables of one size, bits as one
byte 0/1) are both answered; ``XgtServer.requests`` counts them by kind.
"""

from __future__ import annotations

import logging
import struct
from collections import Counter
from dataclasses import dataclass, field

from plcprotocol import xgt
from simulators.framed_server import FramedServer

log = logging.getLogger(__name__)

#: bytes per area of a small XGK CPU (P and M 4 KB, D 40 KB)
DEFAULT_SIZES = {"P": 4096, "M": 4096, "K": 4096, "F": 4096, "L": 22528, "D": 40960, "R": 65536}


@dataclass
class XgtMemory:
    sizes: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SIZES))
    areas: dict[str, bytearray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for area, size in self.sizes.items():
            self.areas.setdefault(area, bytearray(size))

    def set(self, variable: str, value: int | float) -> None:
        """Write a variable as the PLC stores it (little-endian)."""
        v = xgt.Variable.parse(variable)
        mem = self.areas[v.area]
        if v.size == "X" or v.bit is not None:
            bit = v.index if v.size == "X" else v.index * 16 + (v.bit or 0)
            byte, mask = bit // 8, 1 << (bit % 8)
            mem[byte] = (mem[byte] | mask) if value else (mem[byte] & ~mask)
            return
        n = {"B": 1, "W": 2, "D": 4, "L": 8}[v.size]
        if isinstance(value, float):
            raw = struct.pack({"D": "<f", "L": "<d"}[v.size], value)
        else:
            raw = (int(value) & ((1 << 8 * n) - 1)).to_bytes(n, "little")
        mem[v.byte_offset:v.byte_offset + n] = raw

    def read(self, area: str, offset: int, count: int) -> bytes:
        mem = self.areas.get(area)
        if mem is None:
            raise xgt.NakError(0xFFFF, 0x0003)
        if offset + count > len(mem):
            raise xgt.NakError(0xFFFF, 0x0004)
        return bytes(mem[offset:offset + count])


def answer(memory: XgtMemory, frame: bytes) -> bytes:
    invoke = xgt.invoke_id_of(frame)
    try:
        req = xgt.parse_request(frame)
        if req.data_type == xgt.CONTINUOUS:
            (name,) = req.names
            v = xgt.Variable.parse(name)
            if v.size != "B" or req.count is None:
                raise xgt.NakError(0xFFFF, 0x0002)
            if req.count > xgt.MAX_BYTES:
                raise xgt.NakError(0xFFFF, 0x0006)
            return xgt.response(invoke, req.data_type, [memory.read(v.area, v.index, req.count)])
        if len(req.names) > xgt.MAX_BLOCKS:
            raise xgt.NakError(0xFFFF, 0x0001)
        blocks = []
        for name in req.names:
            v = xgt.Variable.parse(name)
            size = xgt.SIZE_BYTES[v.size]
            if v.size == "X":
                byte = memory.read(v.area, v.index // 8, 1)[0]
                blocks.append(bytes([(byte >> (v.index % 8)) & 1]))
            else:
                blocks.append(memory.read(v.area, v.byte_offset, size))
        return xgt.response(invoke, req.data_type, blocks)
    except xgt.NakError as exc:
        return xgt.nak(invoke, 0, exc.code or 0)
    except (xgt.XgtError, struct.error, ValueError):
        return xgt.nak(invoke, 0, 0x0002)


def request_kind(frame: bytes) -> str:
    """``block`` or ``individual`` for a read request, ``other`` for anything else."""
    try:
        return xgt.request_kind(xgt.parse_request(frame).data_type)
    except (xgt.XgtError, xgt.NakError, struct.error, ValueError):
        return "other"


class XgtServer(FramedServer):
    """The PLC's FEnet dedicated-protocol port on ``host:port``; ``requests`` counts the requests
    answered by kind (``block``, ``individual``, ``other``)."""

    def __init__(self, memory: XgtMemory, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__("xgt", xgt.HEADER_BYTES, xgt.frame_length, self._count_and_answer, xgt.XgtError, host, port)
        self.memory = memory
        self.requests: Counter[str] = Counter()

    def _count_and_answer(self, frame: bytes) -> bytes:
        self.requests[request_kind(frame)] += 1
        return answer(self.memory, frame)

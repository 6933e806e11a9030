"""Simulated machines behind a Mitsubishi MC (SLMP) or an LS ELECTRIC XGT port: the same seeded
machine model the Modbus simulators serve, with register maps for the same signals.

A scenario machine with ``protocol: mc`` or ``protocol: xgt`` keeps its kind's Modbus map (the
signals; backfill and ground truth use it) and is served through a map derived from it:

| Modbus (the kind's map)    | MC (Q series)           | XGT                               |
|----------------------------|-------------------------|-----------------------------------|
| holding register ``a``     | ``D{100 + a}``          | ``%DW{2a}`` (16-bit)              |
| 32-bit value at ``a``      | ``D{100 + a}``, 2 words | ``%DD{a}`` (words 2a, 2a + 1)     |
| coil ``a``                 | ``M{a}``                | ``%MX{a}``                        |

32-bit values take each protocol's own default order (low word first), as a real PLC stores
them; the XGT map spaces values two words apart so a double word is always whole (``%DD``
counts double words). Memory is refreshed from the machine's timeline before every request
is answered, so each answer carries the machine's state at the simulated instant it was
served; ``served_log`` records, per request, its kind (MC batch/random, XGT block/individual), the
areas asked for (an MC random read or an XGT individual read asks for several) and every tag's
words; ``requests`` counts the requests by kind.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import TextIO

from plcprotocol import mc, xgt
from registermap import McTag, Table, Tag, XgtTag, encode
from simulators.framed_server import FramedServer
from simulators.mc_server import McMemory
from simulators.mc_server import answer as mc_answer
from simulators.scenario import SimMachine
from simulators.timeline import MachineTimeline
from simulators.xgt_server import XgtMemory
from simulators.xgt_server import answer as xgt_answer
from simulators.xgt_server import request_kind as xgt_request_kind

log = logging.getLogger(__name__)

#: first D register of the MC map (D0-D99 are often a PLC program's scratch area)
MC_WORD_BASE = 100


def _signal(tag: Tag) -> dict:
    return {"name": tag.name, "type": tag.type.value, "scale": tag.scale, "offset": tag.offset, "unit": tag.unit,
            **({"length": tag.length} if tag.length else {})}


def mc_register_map(tags: tuple[Tag, ...]) -> tuple[McTag, ...]:
    """The MC map for the signals of a Modbus map (holding registers and coils)."""
    out = []
    for t in tags:
        if t.table is Table.holding_register:
            out.append(McTag(device=f"D{MC_WORD_BASE + t.address}", **_signal(t)))
        elif t.table is Table.coil:
            out.append(McTag(device=f"M{t.address}", name=t.name))
        else:
            raise ValueError(f"{t.name}: the MC map serves holding registers and coils, not {t.table.value}")
    return tuple(out)


def xgt_register_map(tags: tuple[Tag, ...]) -> tuple[XgtTag, ...]:
    """The XGT map for the signals of a Modbus map (holding registers and coils)."""
    out = []
    for t in tags:
        if t.table is Table.holding_register:
            variable = f"%DD{t.address}" if t.width == 2 else f"%DW{2 * t.address}"
            if t.width not in (1, 2):
                raise ValueError(f"{t.name}: the XGT map serves 16- and 32-bit values")
            out.append(XgtTag(variable=variable, **_signal(t)))
        elif t.table is Table.coil:
            out.append(XgtTag(variable=f"%MX{t.address}", name=t.name))
        else:
            raise ValueError(f"{t.name}: the XGT map serves holding registers and coils, not {t.table.value}")
    return tuple(out)


def register_map(machine: SimMachine) -> tuple[McTag, ...] | tuple[XgtTag, ...]:
    """The map a machine is served through over its protocol."""
    if machine.protocol == "mc":
        return mc_register_map(machine.tags)
    if machine.protocol == "xgt":
        return xgt_register_map(machine.tags)
    raise ValueError(f"{machine.ref.machine} speaks {machine.protocol}, not a framed protocol")


class SimulatedFramedPlc:
    """One machine behind an MC or XGT port: a timeline, its protocol map, a clock and memory."""

    def __init__(self, machine: SimMachine, timeline: MachineTimeline | None = None,
                 sim_time: Callable[[float], float] = lambda wall: wall, served_log: TextIO | None = None,
                 host: str = "127.0.0.1") -> None:
        from simulators.modbus_server import register_values

        self.machine = machine
        self.timeline = timeline or MachineTimeline(machine.spec)
        self.tags = register_map(machine)
        self.sim_time = sim_time
        self.served_log = served_log
        self._values = register_values
        self.requests: Counter[str] = Counter()
        if machine.protocol == "mc":
            self.memory: McMemory | XgtMemory = McMemory()
            self.server = FramedServer("mc", mc.HEADER_BYTES, mc.frame_length, self._answer, mc.McError, host,
                                       machine.port or 0)
        else:
            self.memory = XgtMemory()
            self.server = FramedServer("xgt", xgt.HEADER_BYTES, xgt.frame_length, self._answer, xgt.XgtError, host,
                                       machine.port or 0)

    def _write(self, tag: McTag | XgtTag, value: bool | int | float | str) -> list[int]:
        """Put one value into memory as the PLC stores it; returns the tag's words as served."""
        if tag.is_bit_device:
            point = tag.address * 16 + (tag.bit_in_word or 0)
            if isinstance(self.memory, McMemory):
                self.memory.bits[tag.table][point] = bool(value)
            else:
                area = self.memory.areas[tag.table]
                byte, mask = point // 8, 1 << (point % 8)
                area[byte] = (area[byte] | mask) if value else (area[byte] & ~mask)
            return [1 if value else 0]
        words = encode(tag, value)
        if isinstance(self.memory, McMemory):
            self.memory.words[tag.table][tag.address:tag.address + len(words)] = words
        else:
            raw = b"".join(w.to_bytes(2, "little") for w in words)  # XGT memory is little-endian bytes
            self.memory.areas[tag.table][2 * tag.address:2 * tag.address + len(raw)] = raw
        return words

    def _areas(self, frame: bytes) -> list[str]:
        """The device areas a request asks for: one for a batch or block read, every kind in an MC
        random read or an XGT individual read."""
        try:
            if isinstance(self.memory, McMemory):
                req = mc.parse_request(frame)
                if req.command == mc.RANDOM_READ:
                    return sorted({d.kind.name for d in req.devices(2, req.data[0] + req.data[1])})
                return [req.devices(0, 1)[0].kind.name]
            return sorted({xgt.Variable.parse(name).area for name in xgt.parse_request(frame).names})
        except (mc.McError, mc.EndCodeError, xgt.XgtError, IndexError, ValueError):
            return []  # the codec's answer says what is wrong with the frame

    def _kind(self, frame: bytes) -> str:
        if isinstance(self.memory, XgtMemory):
            return xgt_request_kind(frame)
        try:
            return "random" if mc.parse_request(frame).command == mc.RANDOM_READ else "batch"
        except (mc.McError, mc.EndCodeError, IndexError, ValueError):
            return "other"

    def _answer(self, frame: bytes) -> bytes:
        kind = self._kind(frame)
        self.requests[kind] += 1
        wall = time.time()
        sim = self.sim_time(wall)
        values = self._values(self.timeline, sim)
        served = {t.name: self._write(t, values[t.name]) for t in self.tags}
        if self.served_log is not None:
            record = {"t_ms": int(wall * 1000), "sim_s": sim, "machine": self.machine.ref.machine,
                      "line": self.machine.ref.line, "protocol": self.machine.protocol, "kind": kind, "areas": self._areas(frame),
                      "words": served}
            self.served_log.write(json.dumps(record) + "\n")
            self.served_log.flush()
        if isinstance(self.memory, McMemory):
            return mc_answer(self.memory, frame)
        return xgt_answer(self.memory, frame)

    async def start(self) -> int:
        return await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()

"""A Mitsubishi PLC's MC protocol (SLMP) port, binary 3E frames over TCP, on asyncio.

Serves device memory (D, W, R, M, X, Y, B, ...) that a simulated machine writes into, with
the PLC's own limits: a read past a device's range answers end code C056, an unknown
command C059, more points than one request takes C051/C052/C054. Set ``random_read=False`` to
play an older CPU that answers random read (0x0403) with C059. Written from the protocol
facts in ``plcprotocol.mc`` and sharing its codec, so tests can check the gateway's
client against the framing a real PLC uses.
"""

from __future__ import annotations

import logging
import struct
from collections import Counter
from dataclasses import dataclass, field

from plcprotocol import mc
from simulators.framed_server import FramedServer

log = logging.getLogger(__name__)

#: Device ranges of a small Q-series CPU's default settings (points per device kind)
DEFAULT_SIZES = {"D": 12288, "W": 8192, "R": 32768, "ZR": 65536, "SD": 2048, "SW": 2048,
                 "M": 8192, "L": 8192, "B": 8192, "X": 8192, "Y": 8192, "SM": 2048, "SB": 2048}


@dataclass
class McMemory:
    """Word and bit devices; a bit device is also readable in word units, 16 points a word."""

    sizes: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SIZES))
    words: dict[str, list[int]] = field(default_factory=dict)
    bits: dict[str, list[bool]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, size in self.sizes.items():
            kind = mc.DEVICE_KINDS[name]
            if kind.is_bit:
                self.bits.setdefault(name, [False] * size)
            else:
                self.words.setdefault(name, [0] * size)

    def set_word(self, device: str, value: int) -> None:
        d = mc.Device.parse(device)
        self.words[d.kind.name][d.number] = value & 0xFFFF

    def set_dword(self, device: str, value: int) -> None:
        """A 32-bit value over two words, low word first (Mitsubishi's order)."""
        d = mc.Device.parse(device)
        self.words[d.kind.name][d.number:d.number + 2] = [value & 0xFFFF, (value >> 16) & 0xFFFF]

    def set_bit(self, device: str, value: bool) -> None:
        d = mc.Device.parse(device)
        self.bits[d.kind.name][d.number] = bool(value)

    def read_words(self, head: mc.Device, points: int) -> list[int]:
        name = head.kind.name
        if head.kind.is_bit:  # 16 points a word, the head device in bit 0
            bits = self.bits.get(name)
            if bits is None or head.number + 16 * points > len(bits):
                raise mc.EndCodeError(0xC056)
            chunk = bits[head.number:head.number + 16 * points]
            return [sum(1 << i for i, b in enumerate(chunk[w * 16:(w + 1) * 16]) if b) for w in range(points)]
        words = self.words.get(name)
        if words is None or head.number + points > len(words):
            raise mc.EndCodeError(0xC056)
        return words[head.number:head.number + points]

    def read_bits(self, head: mc.Device, points: int) -> list[bool]:
        bits = self.bits.get(head.kind.name)
        if bits is None or head.number + points > len(bits):
            raise mc.EndCodeError(0xC056)
        return bits[head.number:head.number + points]


def answer(memory: McMemory, frame: bytes, random_read: bool = True, random_points: int | None = None) -> bytes:
    """The PLC's response to one request frame; without ``random_read``, random read is an
    unsupported command (C059), as on some older CPUs and modules; ``random_points`` plays a CPU
    that takes fewer random-read points than the manual's limit (C054 past it)."""
    req = mc.parse_request(frame)
    try:
        if req.command == mc.BATCH_READ:
            size = 6 if req.series is mc.Series.iq_r else 4
            (head,) = req.devices(0, 1)
            (points,) = struct.unpack_from("<H", req.data, size)
            words_max, bits_max, _ = mc.LIMITS[req.series]
            if req.bits:
                if points > bits_max:
                    raise mc.EndCodeError(0xC051)
                return mc.response(req.route, mc.pack_bits(memory.read_bits(head, points)))
            if points > words_max:
                raise mc.EndCodeError(0xC052)
            return mc.response(req.route, mc.pack_words(memory.read_words(head, points)))
        if req.command == mc.RANDOM_READ and random_read:
            n_words, n_dwords = req.data[0], req.data[1]
            if n_words + n_dwords > (random_points or mc.LIMITS[req.series][2]):
                raise mc.EndCodeError(0xC054)
            devices = req.devices(2, n_words + n_dwords)
            out = b"".join(mc.pack_words(memory.read_words(d, 1)) for d in devices[:n_words])
            for d in devices[n_words:]:
                low, high = memory.read_words(d, 2)
                out += struct.pack("<I", low | high << 16)
            return mc.response(req.route, out)
        raise mc.EndCodeError(0xC059)
    except mc.EndCodeError as exc:
        return mc.response(req.route, end_code=exc.end_code, command=req.command, subcommand=req.subcommand)
    except (struct.error, IndexError):
        return mc.response(req.route, end_code=0xC061, command=req.command, subcommand=req.subcommand)


class McServer(FramedServer):
    """The PLC's MC port on ``host:port``; ``commands`` counts the requests it answered by command
    (0x0401 batch read, 0x0403 random read), so tests and the bench count at the PLC."""

    def __init__(self, memory: McMemory, host: str = "127.0.0.1", port: int = 0, random_read: bool = True,
                 random_points: int | None = None) -> None:
        super().__init__("mc", mc.HEADER_BYTES, mc.frame_length, self._answer, mc.McError, host, port)
        self.memory, self.random_read, self.random_points = memory, random_read, random_points
        self.commands: Counter[int] = Counter()

    def _answer(self, frame: bytes) -> bytes:
        self.commands[mc.parse_request(frame).command] += 1
        return answer(self.memory, frame, self.random_read, self.random_points)

"""A connection to a Mitsubishi PLC's MC protocol (SLMP) port: binary 3E frames over TCP.

A 3E frame carries no request id, so answers are matched by order: one request at a time,
and a timeout drops the connection (``gateway.framedlink``).
"""

from __future__ import annotations

from gateway.framedlink import FramedLink
from gateway.links import ILLEGAL_DATA_ADDRESS, LinkError, Refused, Unsupported
from gateway.planner import Area, RandomRead
from plcprotocol import mc


class McLink(FramedLink):
    def __init__(self, host: str, port: int, series: mc.Series = mc.Series.q, route: mc.Route = mc.LOCAL_CPU) -> None:
        super().__init__("mc", host, port, mc.HEADER_BYTES, mc.frame_length, mc.McError)
        self.series, self.route = series, route

    async def read(self, area: Area, address: int, count: int, unit: int, timeout_s: float) -> list[int]:
        """The poller's read: ``count`` words of device kind ``area`` from word ``address``
        (a bit device's word w holds points 16w to 16w+15). ``unit`` is not used: an MC port
        is one CPU, addressed by ``route``."""
        return await self.read_words(self._device((area, address)), count, timeout_s)

    async def read_words(self, head: mc.Device, points: int, timeout_s: float) -> list[int]:
        """``points`` words from ``head`` (a bit device: 16 points a word)."""
        data = await self._request(mc.batch_read(head, points, bits=False, series=self.series, route=self.route),
                                   f"read {points} words from {head}", timeout_s)
        return mc.words_of(data, points)

    async def read_bits(self, head: mc.Device, points: int, timeout_s: float) -> list[bool]:
        data = await self._request(mc.batch_read(head, points, bits=True, series=self.series, route=self.route),
                                   f"read {points} bits from {head}", timeout_s)
        return mc.bits_of(data, points)

    async def random_read(self, words: list[mc.Device], dwords: list[mc.Device],
                          timeout_s: float) -> tuple[list[int], list[int]]:
        data = await self._request(mc.random_read(words, dwords, series=self.series, route=self.route),
                                   f"random read of {len(words)} words and {len(dwords)} double words", timeout_s)
        return mc.random_values(data, len(words), len(dwords))

    async def read_random(self, read: RandomRead, timeout_s: float) -> dict[tuple[Area, int], int]:
        """The poller's random read: each point's words by (device kind, word address)."""
        words, dwords = [self._device(p) for p in read.words], [self._device(p) for p in read.dwords]
        got_words, got_dwords = await self.random_read(words, dwords, timeout_s)
        out: dict[tuple[Area, int], int] = dict(zip(read.words, got_words))
        for (area, address), value in zip(read.dwords, got_dwords):
            out[(area, address)], out[(area, address + 1)] = value & 0xFFFF, value >> 16  # low word first
        return out

    def _device(self, point: tuple[Area, int]) -> mc.Device:
        kind = mc.DEVICE_KINDS.get(str(point[0]))
        if kind is None:
            raise LinkError(f"{self.name}: {point[0]!r} is not an MC device kind")
        return mc.Device(kind, point[1] * 16 if kind.is_bit else point[1])

    async def _request(self, request: bytes, what: str, timeout_s: float) -> bytes:
        frame = await self.exchange(request, what, timeout_s)
        try:
            return mc.response_data(frame)
        except mc.EndCodeError as exc:
            # an address the PLC refuses is split like a Modbus exception 2; a command this CPU
            # lacks is Unsupported (the planner falls back); anything else fails the poll
            if exc.unsupported:
                raise Unsupported(exc.end_code, what, str(exc)) from None
            raise Refused(ILLEGAL_DATA_ADDRESS if exc.refused_address else exc.end_code, what, str(exc),
                          protocol_code=exc.end_code) from None
        except mc.McError as exc:
            self.close()
            raise LinkError(f"{what}: {exc}") from None

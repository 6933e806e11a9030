"""A connection to a Mitsubishi PLC's MC protocol (SLMP) port: binary 3E frames over TCP.

One request at a time per connection (the PLC answers in order and a 3E frame carries no
request id), each with the timeout of its device. A timeout or a garbled answer drops the
connection, so the next request starts on a clean stream instead of reading a late reply
to an earlier request; the next read reconnects.
"""

from __future__ import annotations

import asyncio
import logging

from plcprotocol import mc
from gateway.links import ILLEGAL_DATA_ADDRESS, LinkError, Refused
from gateway.planner import Area

log = logging.getLogger(__name__)


class McLink:
    def __init__(self, host: str, port: int, series: mc.Series = mc.Series.q, route: mc.Route = mc.LOCAL_CPU) -> None:
        self.host, self.port, self.series, self.route = host, port, series, route
        self.name = f"mc:{host}:{port}"
        self._lock = asyncio.Lock()
        self._stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    def close(self) -> None:
        if self._stream is not None:
            _, writer = self._stream
            self._stream = None
            writer.close()

    async def read(self, area: Area, address: int, count: int, unit: int, timeout_s: float) -> list[int]:
        """The poller's read: ``count`` words of device kind ``area`` from word ``address``
        (a bit device's word w holds points 16w to 16w+15). ``unit`` is not used: an MC port
        is one CPU, addressed by ``route``."""
        kind = mc.DEVICE_KINDS.get(str(area))
        if kind is None:
            raise LinkError(f"{self.name}: {area!r} is not an MC device kind")
        head = mc.Device(kind, address * 16 if kind.is_bit else address)
        return await self.read_words(head, count, timeout_s)

    async def read_words(self, head: mc.Device, points: int, timeout_s: float) -> list[int]:
        """``points`` words from ``head`` (a bit device: 16 points a word)."""
        data = await self._exchange(mc.batch_read(head, points, bits=False, series=self.series, route=self.route),
                                    f"read {points} words from {head}", timeout_s)
        return mc.words_of(data, points)

    async def read_bits(self, head: mc.Device, points: int, timeout_s: float) -> list[bool]:
        data = await self._exchange(mc.batch_read(head, points, bits=True, series=self.series, route=self.route),
                                    f"read {points} bits from {head}", timeout_s)
        return mc.bits_of(data, points)

    async def random_read(self, words: list[mc.Device], dwords: list[mc.Device],
                          timeout_s: float) -> tuple[list[int], list[int]]:
        data = await self._exchange(mc.random_read(words, dwords, series=self.series, route=self.route),
                                    f"random read of {len(words)} words and {len(dwords)} double words", timeout_s)
        return mc.random_values(data, len(words), len(dwords))

    async def _exchange(self, request: bytes, what: str, timeout_s: float) -> bytes:
        async with self._lock:
            try:
                frame = await asyncio.wait_for(self._round_trip(request), timeout_s)
            except TimeoutError:
                self.close()
                raise LinkError(f"{what}: Timeout, no answer from {self.host}:{self.port} in {timeout_s:g} s") from None
            except (OSError, asyncio.IncompleteReadError) as exc:
                self.close()
                raise LinkError(f"{what}: {self.host}:{self.port} {type(exc).__name__}: {exc}") from None
            except mc.McError as exc:
                self.close()
                raise LinkError(f"{what}: {exc}") from None
        try:
            return mc.response_data(frame)
        except mc.EndCodeError as exc:
            # an address the PLC refuses is split like a Modbus exception 2; anything else fails the poll
            raise Refused(ILLEGAL_DATA_ADDRESS if exc.refused_address else exc.end_code, what, str(exc)) from None
        except mc.McError as exc:
            self.close()
            raise LinkError(f"{what}: {exc}") from None

    async def _round_trip(self, request: bytes) -> bytes:
        if self._stream is None:
            self._stream = await asyncio.open_connection(self.host, self.port)
            log.info("mc_connected link=%s series=%s", self.name, self.series.value)
        reader, writer = self._stream
        writer.write(request)
        await writer.drain()
        head = await reader.readexactly(mc.HEADER_BYTES)
        return head + await reader.readexactly(mc.frame_length(head) - mc.HEADER_BYTES)

"""A connection to an LS ELECTRIC XGT PLC's FEnet module, dedicated protocol over TCP (port 2004).

Dense spans are continuous (block) reads of a byte area; scattered variables are individual
reads (up to 16 variables of one size, any areas), whichever the planner finds takes fewer
round trips; it plans both in words. Each request carries its own invoke id, which the
answer must echo: a late answer to a timed-out request is never taken for the next one's.
"""

from __future__ import annotations

from gateway.framedlink import FramedLink
from gateway.links import ILLEGAL_DATA_ADDRESS, LinkError, Refused
from gateway.planner import Area, IndividualRead
from plcprotocol import xgt


class XgtLink(FramedLink):
    def __init__(self, host: str, port: int) -> None:
        super().__init__("xgt", host, port, xgt.HEADER_BYTES, xgt.frame_length, xgt.XgtError)
        self._invoke = 0

    async def read(self, area: Area, address: int, count: int, unit: int, timeout_s: float) -> list[int]:
        """The poller's read: ``count`` words of ``area`` from word ``address``."""
        return xgt.words_of(await self.read_bytes(str(area), address * 2, count * 2, timeout_s))

    async def read_individual(self, read: IndividualRead, timeout_s: float) -> dict[tuple[Area, int], int]:
        """The poller's individual read: each variable's words by (area, word address), low word first."""
        step = read.words_per_point
        variables = [xgt.Variable(str(area), read.size, word // step) for area, word in read.points]
        what = f"individual read of {len(variables)} {read.size} variables ({variables[0]}...)"
        response = await self._exchange(xgt.read_individual(variables, self._next_invoke()), what, timeout_s)
        if len(response.blocks) != len(variables) or any(len(b) != 2 * step for b in response.blocks):
            raise LinkError(f"{what}: answer of {len(response.blocks)} blocks "
                            f"({sum(len(b) for b in response.blocks)} bytes), expected {len(variables)} of {2 * step} bytes")
        out: dict[tuple[Area, int], int] = {}
        for (area, word), block in zip(read.points, response.blocks):
            for i, value in enumerate(xgt.words_of(block)):
                out[(area, word + i)] = value
        return out

    async def read_bytes(self, area: str, first_byte: int, count: int, timeout_s: float) -> bytes:
        what = f"read %{area}B{first_byte} +{count} bytes"
        response = await self._exchange(xgt.read_block(area, first_byte, count, self._next_invoke()), what, timeout_s)
        if len(response.blocks) != 1 or len(response.blocks[0]) != count:
            raise LinkError(f"{what}: short answer ({sum(len(b) for b in response.blocks)} of {count} bytes)")
        return response.blocks[0]

    def _next_invoke(self) -> int:
        self._invoke = (self._invoke + 1) & 0xFFFF
        return self._invoke

    async def _exchange(self, request: bytes, what: str, timeout_s: float) -> xgt.Response:
        """Send a read, wait for the answer with its invoke id; a NAK is a refused read."""
        invoke = xgt.invoke_id_of(request)
        frame = await self.exchange(
            request, what, timeout_s,
            lambda f: None if xgt.invoke_id_of(f) == invoke else f"answer to request {xgt.invoke_id_of(f)}, not {invoke}")
        try:
            return xgt.parse_response(frame)
        except xgt.NakError as exc:
            raise Refused(ILLEGAL_DATA_ADDRESS if exc.refused_address else (exc.code or 0), what, str(exc),
                          protocol_code=exc.code) from None
        except xgt.XgtError as exc:
            self.close()
            raise LinkError(f"{what}: {exc}") from None

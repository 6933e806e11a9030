"""A connection to an LS ELECTRIC XGT PLC's FEnet module, dedicated protocol over TCP (port 2004).

Reads are continuous (block) reads of a byte area, the fewest round trips the protocol
offers; the poller plans them in words. Each request carries its own invoke id, which the
answer must echo: a late answer to a timed-out request is never taken for the next one's.
"""

from __future__ import annotations

from gateway.framedlink import FramedLink
from gateway.links import ILLEGAL_DATA_ADDRESS, LinkError, Refused
from gateway.planner import Area
from plcprotocol import xgt


class XgtLink(FramedLink):
    def __init__(self, host: str, port: int) -> None:
        super().__init__("xgt", host, port, xgt.HEADER_BYTES, xgt.frame_length, xgt.XgtError)
        self._invoke = 0

    async def read(self, area: Area, address: int, count: int, unit: int, timeout_s: float) -> list[int]:
        """The poller's read: ``count`` words of ``area`` from word ``address``."""
        return xgt.words_of(await self.read_bytes(str(area), address * 2, count * 2, timeout_s))

    async def read_bytes(self, area: str, first_byte: int, count: int, timeout_s: float) -> bytes:
        what = f"read %{area}B{first_byte} +{count} bytes"
        self._invoke = invoke = (self._invoke + 1) & 0xFFFF
        frame = await self.exchange(
            xgt.read_block(area, first_byte, count, invoke), what, timeout_s,
            lambda f: None if xgt.invoke_id_of(f) == invoke else f"answer to request {xgt.invoke_id_of(f)}, not {invoke}")
        try:
            response = xgt.parse_response(frame)
        except xgt.NakError as exc:
            raise Refused(ILLEGAL_DATA_ADDRESS if exc.refused_address else (exc.code or 0), what, str(exc),
                          protocol_code=exc.code) from None
        except xgt.XgtError as exc:
            self.close()
            raise LinkError(f"{what}: {exc}") from None
        if len(response.blocks) != 1 or len(response.blocks[0]) != count:
            raise LinkError(f"{what}: short answer ({sum(len(b) for b in response.blocks)} of {count} bytes)")
        return response.blocks[0]

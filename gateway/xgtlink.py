"""A connection to an LS ELECTRIC XGT PLC's FEnet module, dedicated protocol over TCP (port 2004).

Reads are continuous (block) reads of a byte area, the fewest round trips the protocol
offers; the poller plans them in words. One request at a time per connection, each with
its own invoke id, which the answer must echo: a late answer to a timed-out request is
never taken for the next one's, and a timeout drops the connection all the same.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.links import ILLEGAL_DATA_ADDRESS, LinkError, Refused
from gateway.planner import Area
from plcprotocol import xgt

log = logging.getLogger(__name__)


class XgtLink:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.name = f"xgt:{host}:{port}"
        self._lock = asyncio.Lock()
        self._stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._invoke = 0

    def close(self) -> None:
        if self._stream is not None:
            _, writer = self._stream
            self._stream = None
            writer.close()

    async def read(self, area: Area, address: int, count: int, unit: int, timeout_s: float) -> list[int]:
        """The poller's read: ``count`` words of ``area`` from word ``address``."""
        return xgt.words_of(await self.read_bytes(str(area), address * 2, count * 2, timeout_s))

    async def read_bytes(self, area: str, first_byte: int, count: int, timeout_s: float) -> bytes:
        what = f"read %{area}B{first_byte} +{count} bytes"
        async with self._lock:
            self._invoke = (self._invoke + 1) & 0xFFFF
            request = xgt.read_block(area, first_byte, count, self._invoke)
            try:
                frame = await asyncio.wait_for(self._round_trip(request), timeout_s)
            except TimeoutError:
                self.close()
                raise LinkError(f"{what}: Timeout, no answer from {self.host}:{self.port} in {timeout_s:g} s") from None
            except (OSError, asyncio.IncompleteReadError) as exc:
                self.close()
                raise LinkError(f"{what}: {self.host}:{self.port} {type(exc).__name__}: {exc}") from None
            except xgt.XgtError as exc:
                self.close()
                raise LinkError(f"{what}: {exc}") from None
            if xgt.invoke_id_of(frame) != self._invoke:
                self.close()
                raise LinkError(f"{what}: answer to request {xgt.invoke_id_of(frame)}, not {self._invoke}")
        try:
            response = xgt.parse_response(frame)
        except xgt.NakError as exc:
            raise Refused(ILLEGAL_DATA_ADDRESS if exc.refused_address else (exc.code or 0), what, str(exc)) from None
        except xgt.XgtError as exc:
            self.close()
            raise LinkError(f"{what}: {exc}") from None
        if len(response.blocks) != 1 or len(response.blocks[0]) != count:
            raise LinkError(f"{what}: short answer ({sum(len(b) for b in response.blocks)} of {count} bytes)")
        return response.blocks[0]

    async def _round_trip(self, request: bytes) -> bytes:
        if self._stream is None:
            self._stream = await asyncio.open_connection(self.host, self.port)
            log.info("xgt_connected link=%s", self.name)
        reader, writer = self._stream
        writer.write(request)
        await writer.drain()
        head = await reader.readexactly(xgt.HEADER_BYTES)
        return head + await reader.readexactly(xgt.frame_length(head) - xgt.HEADER_BYTES)

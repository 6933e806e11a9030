"""A PLC port that answers one request frame at a time, for the simulators of framed protocols
(MC protocol, XGT): the frame's header gives its length, an ``answer`` function its reply."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class FramedServer:
    """Listens on ``host:port``; each connection's requests are answered in order. A frame that
    is not the protocol's (``frame_error`` raised by ``frame_length``) drops the connection, as a
    real PLC does. ``stop`` also cuts the open connections (a PLC switched off answers nothing
    more); ``start`` again listens on the same port."""

    def __init__(self, name: str, header_bytes: int, frame_length: Callable[[bytes], int],
                 answer: Callable[[bytes], bytes], frame_error: type[Exception], host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.name, self.header_bytes, self.frame_length = name, header_bytes, frame_length
        self.answer, self.frame_error = answer, frame_error
        self.host, self.port = host, port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("%s_server_listening host=%s port=%d", self.name, self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readexactly(self.header_bytes)
                try:
                    rest = await reader.readexactly(self.frame_length(head) - self.header_bytes)
                except self.frame_error as exc:
                    log.warning("%s_server_bad_frame error=%s", self.name, exc)
                    return
                writer.write(self.answer(head + rest))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

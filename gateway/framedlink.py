"""A TCP connection to a PLC port that answers framed requests one at a time (MC protocol, XGT).

One request at a time per connection, each with its device's timeout. A timeout or a garbled
answer drops the connection, so the next request starts on a clean stream instead of reading
a late reply to an earlier request; the next read reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gateway.links import LinkError

log = logging.getLogger(__name__)


class FramedLink:
    def __init__(self, protocol: str, host: str, port: int, header_bytes: int, frame_length: Callable[[bytes], int],
                 frame_error: type[Exception]) -> None:
        self.host, self.port = host, port
        self.name = f"{protocol}:{host}:{port}"
        self.header_bytes, self.frame_length, self.frame_error = header_bytes, frame_length, frame_error
        self._lock = asyncio.Lock()
        self._stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    def close(self) -> None:
        if self._stream is not None:
            _, writer = self._stream
            self._stream = None
            writer.close()

    async def exchange(self, request: bytes, what: str, timeout_s: float,
                       mismatch: Callable[[bytes], str | None] | None = None) -> bytes:
        """Send ``request`` and return the answer frame; ``mismatch`` says why a frame is not the
        answer to this request (it then drops the connection like a garbled frame)."""
        async with self._lock:
            try:
                frame = await asyncio.wait_for(self._round_trip(request), timeout_s)
            except TimeoutError:
                self.close()
                raise LinkError(f"{what}: Timeout, no answer from {self.host}:{self.port} in {timeout_s:g} s") from None
            except (OSError, asyncio.IncompleteReadError) as exc:
                self.close()
                raise LinkError(f"{what}: {self.host}:{self.port} {type(exc).__name__}: {exc}") from None
            except self.frame_error as exc:
                self.close()
                raise LinkError(f"{what}: {exc}") from None
            problem = mismatch(frame) if mismatch is not None else None
            if problem is not None:
                self.close()
                raise LinkError(f"{what}: {problem}")
        return frame

    async def _round_trip(self, request: bytes) -> bytes:
        if self._stream is None:
            self._stream = await asyncio.open_connection(self.host, self.port)
            log.info("plc_connected link=%s", self.name)
        reader, writer = self._stream
        writer.write(request)
        await writer.drain()
        head = await reader.readexactly(self.header_bytes)
        return head + await reader.readexactly(self.frame_length(head) - self.header_bytes)

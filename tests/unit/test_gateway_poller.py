"""The poller's own logic with a scripted link (no server): shutdown even when a library
swallows the cancellation."""

from __future__ import annotations

import asyncio

from gateway.poller import DevicePoller
from gateway.settings import DeviceSettings


class SwallowingLink:
    """Answers every read, and swallows a cancellation that lands during one (as
    asyncio.wait_for in Python 3.11 can when the response arrives at the same moment)."""

    name = "fake"

    def __init__(self) -> None:
        self.reads = 0
        self.in_read = asyncio.Event()

    async def read(self, table, address, count, unit, timeout_s):
        self.reads += 1
        self.in_read.set()
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            pass  # swallowed
        return [0] * count


def test_a_swallowed_cancellation_still_stops_the_poller():
    async def main():
        device = DeviceSettings.model_validate({
            "name": "m", "line": "l", "host": "h", "poll_interval_s": 0.05,
            "tags": [{"name": "a", "table": "holding_register", "address": 0}]})
        link = SwallowingLink()
        samples = []
        poller = DevicePoller(device, link, lambda d, ts, v: samples.append(v))
        task = asyncio.create_task(poller.run())
        await link.in_read.wait()
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=2)
        if not done:
            task.cancel()  # do not leave it running
        return done, task, len(samples)

    done, task, n = asyncio.run(main())
    assert done and task.cancelled()
    assert n <= 1  # at most the poll that was in flight

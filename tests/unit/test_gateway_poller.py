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


class ScriptedLink:
    """Answers or fails each read as scripted: True answers, False times out."""

    name = "scripted"

    def __init__(self, script: list[bool]) -> None:
        self.script = list(script)

    async def read(self, table, address, count, unit, timeout_s):
        from gateway.links import LinkError

        if self.script and not self.script.pop(0):
            raise LinkError("holding_register 0+1 unit 1: Timeout")
        return [7] * count


def _device(**kw) -> DeviceSettings:
    return DeviceSettings.model_validate({"name": "m", "line": "l", "host": "h",
                                          "tags": [{"name": "a", "table": "holding_register", "address": 0}], **kw})


def _states_after(script: list[bool], clock: list[float] | None = None, **kw) -> list[str]:
    """Feed the poller's success/failure handling one poll at a time, as its run loop does, and
    return the state changes it reported (``clock``: the time of each poll, in seconds)."""
    changes: list[str] = []

    def health(d, h) -> None:
        state = h.as_status()["state"]
        if not changes or changes[-1] != state:
            changes.append(state)

    times = list(clock) if clock is not None else None
    now = [0.0]
    poller = DevicePoller(_device(**kw), ScriptedLink([]), lambda d, ts, v: None, health, clock=lambda: now[0])

    async def main():
        for i, ok in enumerate(script):
            now[0] = times[i] if times is not None else float(i)
            if ok:
                await poller.poll_once()
            else:
                poller._failed("Timeout")

    asyncio.run(main())
    return changes


def test_one_failed_poll_does_not_report_the_device_offline():
    assert _states_after([True, False, True]) == ["online"]


def test_the_device_is_reported_offline_after_the_configured_failures():
    assert _states_after([True, False, False, False]) == ["online", "offline"]
    assert _states_after([True, False, False], offline_after_failures=2) == ["online", "offline"]


def test_a_long_silence_reports_offline_even_before_n_failures():
    # two failures 40 s apart (a long backoff): past offline_after_s (30 s) the second one reports offline
    assert _states_after([True, False, False], clock=[0.0, 100.0, 140.0]) == ["online", "offline"]


def test_status_carries_cycle_lateness_percentiles_of_the_cycles_since_the_last_status():
    poller = DevicePoller(_device(), ScriptedLink([]), lambda d, ts, v: None)
    for late in [1.0] * 98 + [50.0, 80.0]:
        poller.lateness_ms.append(late)
        poller._cycles += 1
    poller._publish_status()
    status = poller.health.as_status()
    assert (status["lateness_p50_ms"], status["lateness_p99_ms"]) == (1.0, 50.0)
    for late in (5.0, 6.0):  # the next status summarises only its own cycles
        poller.lateness_ms.append(late)
        poller._cycles += 1
    poller._publish_status()
    assert (poller.health.lateness_p50_ms, poller.health.lateness_p99_ms) == (5.0, 6.0)


def test_percentile_is_a_value_that_occurred():
    from gateway.poller import percentile

    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0] * 99 + [9.0], 99) == 1.0 and percentile([1.0] * 99 + [9.0], 100) == 9.0

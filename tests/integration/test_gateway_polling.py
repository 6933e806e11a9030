"""Pollers against real pymodbus servers: isolation of dead devices, shared RTU-over-TCP links,
RTU on a (pseudo) serial line, bisecting illegal addresses, backoff and recovery; deadband and
heartbeat against a Modbus, MC and XGT port."""

from __future__ import annotations

import asyncio
import time

import pytest
from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer

from gateway.links import build_links
from gateway.poller import DevicePoller
from gateway.settings import DeviceSettings
from simulators.faults import (CountingFramedPlc, CountingPlc, Fault, FaultProxy, Mode, NullModem, hanging_device,
                               start_tcp_server)

pytestmark = pytest.mark.integration

SEQ_TAGS = [
    {"name": "seq", "table": "holding_register", "address": 0, "type": "uint32"},
    {"name": "x1", "table": "holding_register", "address": 3},
]


def dev(name: str, **kw) -> DeviceSettings:
    return DeviceSettings.model_validate({"name": name, "line": "l1", "host": "127.0.0.1", "tags": SEQ_TAGS, **kw})


#: the polled protocols whose devices share the device model (per-device task, health, backoff, reporting)
PROTOCOLS = ["modbus", "mc", "xgt"]


def word_tag(protocol: str, name: str, word: int, **kw) -> dict:
    """A tag on 16-bit word ``word`` of a counting PLC (``CountingPlc``/``CountingFramedPlc``)
    in ``protocol``'s addressing: holding register, D device or %DW variable. A ``uint32``
    is read from ``%DD`` on XGT, where double words are counted apart from words."""
    if protocol == "modbus":
        return {"name": name, "table": "holding_register", "address": word, **kw}
    if protocol == "mc":
        return {"name": name, "device": f"D{word}", **kw}
    return {"name": name, "variable": f"%DD{word // 2}" if kw.get("type") == "uint32" else f"%DW{word}", **kw}


def counting_tags(protocol: str) -> list[dict]:
    """``seq`` (the counting PLC's sequence number) and ``x`` (word 2: the same number)."""
    return [word_tag(protocol, "seq", 0, type="uint32"), word_tag(protocol, "x", 2)]


def counting_device(protocol: str, name: str, port: int, tags: list[dict] | None = None, **kw) -> dict:
    """A device's config (as in gateway.yaml) for a counting PLC of ``protocol`` on 127.0.0.1:``port``."""
    return {"name": name, "line": "l1", "host": "127.0.0.1", "port": port, "tags": tags or counting_tags(protocol),
            **({} if protocol == "modbus" else {"protocol": protocol}), **kw}


async def start_counting_plc(protocol: str, name: str, served_log=None, port: int = 0):
    """A counting PLC of ``protocol`` listening on 127.0.0.1: (plc, its port, a coroutine
    function that stops it, a coroutine function that starts it again on the same port)."""
    if protocol == "modbus":
        plc = CountingPlc(name, served_log=served_log)
        box = {}
        box["server"], port = await start_tcp_server(plc.device(), port=port)

        async def stop_modbus() -> None:
            await box["server"].shutdown()

        async def restart_modbus() -> None:
            box["server"], _ = await start_tcp_server(plc.device(), port=port)

        return plc, port, stop_modbus, restart_modbus
    framed = CountingFramedPlc(name, protocol, served_log=served_log, port=port)
    port = await framed.start()
    return framed, port, framed.stop, framed.start


class Recorder:
    def __init__(self) -> None:
        self.samples: dict[str, list[tuple[float, dict]]] = {}
        self.status: dict[str, list[str]] = {}
        self.ts_ms: dict[str, list[int]] = {}  # each sample's source timestamp, beside ``samples``

    def sink(self, device, ts_ms, values) -> None:
        self.samples.setdefault(device.name, []).append((time.monotonic(), values))
        self.ts_ms.setdefault(device.name, []).append(ts_ms)

    def health(self, device, health) -> None:
        self.status.setdefault(device.name, []).append(health.as_status()["state"])

    def count(self, name: str) -> int:
        return len(self.samples.get(name, []))


async def wait_for(condition, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def poll_until(server, device, condition, what: str):
    """Run one device's poller against ``server`` (started and stopped here) until
    ``condition(poller, recorder)`` holds; returns (poller, recorder)."""
    await server.start()
    rec = Recorder()
    links = build_links([device])
    poller = DevicePoller(device, links[device.link], rec.sink, rec.health)
    task = asyncio.create_task(poller.run())
    try:
        await wait_for(lambda: condition(poller, rec), what=what)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        links[device.link].close()
        await server.stop()
    return poller, rec


def start_pollers(devices, rec):
    links = build_links(devices)
    pollers = [DevicePoller(d, links[d.link], rec.sink, rec.health) for d in devices]
    tasks = [asyncio.create_task(p.run()) for p in pollers]
    return pollers, tasks, links


async def stop(tasks, links):
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for link in links.values():
        link.close()


def test_a_silent_device_does_not_delay_a_healthy_one():
    async def main():
        good, dead = CountingPlc("good"), CountingPlc("dead")
        s1, p1 = await start_tcp_server(good.device())
        s2, p2 = await start_tcp_server(dead.device())
        proxy = FaultProxy(("127.0.0.1", p2))
        await proxy.start()
        proxy.set_fault(Fault(mode=Mode.silent))
        rec = Recorder()
        devices = [dev("good", port=p1, poll_interval_s=0.1),
                   dev("dead", port=proxy.port, poll_interval_s=0.1, timeout_s=2.0, max_backoff_s=2.0)]
        pollers, tasks, links = start_pollers(devices, rec)
        during = []  # healthy polls completed while each of the dead device's requests hung
        for k in (1, 2, 3):
            await wait_for(lambda: proxy.requests >= k, 30, f"dead request {k} sent")
            before = rec.count("good")
            await wait_for(lambda: pollers[1].health.timeouts >= k, 30, f"dead request {k} timed out")
            during.append(rec.count("good") - before)
        await stop(tasks, links)
        await proxy.stop()
        await s1.shutdown()
        await s2.shutdown()
        # each hang lasts the dead device's 2 s timeout, 20 of the healthy device's intervals;
        # a shared stall would leave the healthy device with none
        assert all(n >= 3 for n in during), during
        assert rec.count("dead") == 0 and rec.status["dead"][0] == "offline"
        assert pollers[1].health.consecutive_failures >= 3 and pollers[0].health.polls_failed == 0

    run(main())


def test_units_behind_one_rtu_over_tcp_converter_share_a_connection_that_a_dead_unit_does_not_close():
    async def main():
        plcs = [CountingPlc(f"u{u}", unit_id=u) for u in (1, 2)]
        release = asyncio.Event()
        server, port = await start_tcp_server([p.device() for p in plcs] + [hanging_device(3, release)],
                                              framer=FramerType.RTU)
        rec = Recorder()
        devices = [dev(f"u{u}", unit_id=u, port=port, transport="rtu_over_tcp", poll_interval_s=0.1, timeout_s=0.3,
                       max_backoff_s=0.3) for u in (1, 2, 3)]  # unit 3 never answers
        pollers, tasks, links = start_pollers(devices, rec)
        (link,) = links.values()
        transports = set()

        def note_connection():
            if link.client.ctx.transport is not None:
                transports.add(id(link.client.ctx.transport))

        def healthy_and_same_connection():
            note_connection()
            return pollers[2].health.timeouts >= 6 and rec.count("u1") >= 10 and rec.count("u2") >= 10

        await wait_for(healthy_and_same_connection, 30, "dead unit timeouts while the others poll")
        # pymodbus alone would close the connection after 4 no-responses
        before = (rec.count("u1"), rec.count("u2"))
        await wait_for(lambda: rec.count("u1") > before[0] + 3 and rec.count("u2") > before[1] + 3, 10,
                       "polls continuing")
        note_connection()
        await stop(tasks, links)
        release.set()
        await server.shutdown()
        assert len(transports) == 1 and link.shared
        # each unit got its own numbers: requests went to the right unit id
        assert [v["seq"] for _, v in rec.samples["u1"]] == list(range(1, rec.count("u1") + 1))
        assert rec.count("u3") == 0

    run(main())


def test_rtu_over_a_serial_line():
    async def main():
        modem = NullModem()
        plcs = [CountingPlc(f"s{u}", unit_id=u) for u in (1, 2)]
        server = ModbusSerialServer([p.device() for p in plcs], port=modem.ports[0], framer=FramerType.RTU,
                                    baudrate=115200, parity="N")  # a pty refuses parity bits
        await server.serve_forever(background=True)
        rec = Recorder()
        serial = {"port": modem.ports[1], "baudrate": 115200, "parity": "N"}
        devices = [dev(f"s{u}", unit_id=u, host=None, transport="rtu", serial=serial, poll_interval_s=0.1)
                   for u in (1, 2)]
        pollers, tasks, links = start_pollers(devices, rec)
        await wait_for(lambda: rec.count("s1") >= 3 and rec.count("s2") >= 3, 20, "serial polls")
        await stop(tasks, links)
        await server.shutdown()
        modem.close()
        assert len(links) == 1
        assert [v["x1"] for _, v in rec.samples["s1"][:3]] == [1 + 1, 2 + 1, 3 + 1]  # seq + 1 at address 3

    run(main())


def test_illegal_address_bisects_so_one_bad_register_does_not_blind_the_rest():
    async def main():
        # addresses 22..23 do not exist on the device; the planned read 20..25 spans them
        plc = CountingPlc("m", holes=[(22, 23)], size=30)
        server, port = await start_tcp_server(plc.device())
        tags = SEQ_TAGS + [{"name": "far", "table": "holding_register", "address": 20},
                           {"name": "farther", "table": "holding_register", "address": 25}]
        rec = Recorder()
        (d,) = devices = [dev("m", port=port, tags=tags, poll_interval_s=0.1)]
        pollers, tasks, links = start_pollers(devices, rec)
        await wait_for(lambda: rec.count("m") >= 3, 20, "polls")
        await stop(tasks, links)
        await server.shutdown()
        p = pollers[0]
        assert all(set(v) == {"seq", "x1", "far", "farther"} for _, v in rec.samples["m"])
        assert p.health.exceptions >= 1 and not p.plan.unreadable and p.plan.breaks
        assert p.health.polls_failed == 0

    run(main())


def test_failing_device_backs_off_and_recovers_by_itself():
    async def main():
        plc = CountingPlc("m")
        server, port = await start_tcp_server(plc.device())
        proxy = FaultProxy(("127.0.0.1", port))
        await proxy.start()
        proxy.set_fault(Fault(mode=Mode.disappear))
        rec = Recorder()
        devices = [dev("m", port=proxy.port, poll_interval_s=0.05, max_backoff_s=0.4)]
        pollers, tasks, links = start_pollers(devices, rec)
        p = pollers[0]
        await wait_for(lambda: p.health.consecutive_failures >= 5, 20, "failures")
        proxy.set_fault(Fault(mode=Mode.exception, code=6))  # back, but busy
        await wait_for(lambda: p.health.exceptions >= 1, 20, "busy answers")
        assert rec.count("m") == 0
        proxy.set_fault(None)
        await wait_for(lambda: rec.count("m") >= 2, 20, "recovery")
        await stop(tasks, links)
        await proxy.stop()
        await server.shutdown()
        assert rec.status["m"][:2] == ["offline", "online"]
        assert p.health.consecutive_failures == 0 and p.health.last_success_ms is not None

    run(main())


def test_malformed_and_dropped_answers_fail_the_poll_not_the_poller():
    async def main():
        plc = CountingPlc("m")
        server, port = await start_tcp_server(plc.device())
        proxy = FaultProxy(("127.0.0.1", port))
        await proxy.start()
        rec = Recorder()
        devices = [dev("m", port=proxy.port, poll_interval_s=0.05, timeout_s=0.3, max_backoff_s=0.2)]
        pollers, tasks, links = start_pollers(devices, rec)
        p = pollers[0]
        for mode in (Mode.malformed, Mode.drop):
            failed = p.health.polls_failed
            proxy.set_fault(Fault(mode=mode))
            await wait_for(lambda: p.health.polls_failed >= failed + 2, 20, f"{mode} failures")
            proxy.set_fault(None)
            n = rec.count("m")
            await wait_for(lambda: rec.count("m") >= n + 2, 20, f"recovery after {mode}")
        await stop(tasks, links)
        await proxy.stop()
        await server.shutdown()
        assert not tasks[0].cancelled() or True  # the task ran until we stopped it
        assert p.health.polls_ok >= 4

    run(main())


def test_cancelling_pollers_mid_request_stops_them():
    """Shutdown while a request hangs on a silent device: the poller must stop at once and not
    count it as a failed poll (pymodbus may turn a cancelled request into ModbusIOException;
    the link re-raises the cancellation whatever pymodbus raised)."""

    async def main():
        plc = CountingPlc("m")
        server, port = await start_tcp_server(plc.device())
        proxy = FaultProxy(("127.0.0.1", port))
        await proxy.start()
        proxy.set_fault(Fault(mode=Mode.silent))
        rec = Recorder()
        devices = [dev("m", port=proxy.port, timeout_s=30)]  # the request hangs for the whole test
        pollers, tasks, links = start_pollers(devices, rec)
        await wait_for(lambda: proxy.requests >= 1, 10, "a request in flight")
        tasks[0].cancel()
        done, _ = await asyncio.wait(tasks, timeout=5)
        for link in links.values():
            link.close()
        await proxy.stop()
        await server.shutdown()
        assert done and tasks[0].cancelled()
        assert pollers[0].health.polls_failed == 0  # the cancellation was not counted as a failed poll

    run(main())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_deadband_holds_back_a_small_change_and_the_heartbeat_resends_an_unchanged_value(protocol):
    """Report by exception against a real PLC port of each protocol: ``banded`` (deadband 5) is
    not sent again for a change of 3, but is for a change of 6 from the value last sent;
    ``beat`` never changes and is sent again every ``max_silence_s``, not every poll."""

    async def main():
        plc, port, stop_plc, _ = await start_counting_plc(protocol, "m")
        plc.held.update({4: 100, 5: 7})
        tags = counting_tags(protocol) + [
            word_tag(protocol, "banded", 4, report="on_change", deadband=5),
            word_tag(protocol, "beat", 5, report="on_change", max_silence_s=0.6),
        ]
        device = DeviceSettings.model_validate(counting_device(protocol, "m", port, tags, poll_interval_s=0.05))
        rec = Recorder()
        pollers, tasks, links = start_pollers([device], rec)
        try:
            seqs = lambda: [v["seq"] for _, v in rec.samples.get("m", [])]  # noqa: E731 - every poll sends seq
            await wait_for(lambda: len(seqs()) >= 2, what="first polls")
            plc.held[4] = 103  # within the deadband: every poll from the next request on reads 103
            small_from = plc.seq + 1
            await wait_for(lambda: max(seqs()) >= small_from + 5, what="five polls of the small change")
            plc.held[4] = 106  # 6 from the 100 last sent
            big_from = plc.seq + 1
            await wait_for(lambda: max(seqs()) >= big_from, what="a poll of the big change")
            await wait_for(lambda: sum("beat" in v for _, v in rec.samples["m"]) >= 3, what="three heartbeats")
        finally:
            await stop(tasks, links)
            await stop_plc()
        return rec.samples["m"], rec.ts_ms["m"]

    recorded, stamps = run(main())
    samples = [v for _, v in recorded]
    banded = [(v["seq"], v["banded"]) for v in samples if "banded" in v]
    assert banded[0][1] == 100
    # the small change was read in every poll from small_from on, and never sent
    assert all(value != 103 for _, value in banded), banded
    assert [value for _, value in banded] == [100, 106], banded
    beats = [ts for ts, v in zip(stamps, samples) if "beat" in v]
    assert len(beats) >= 3 and len(beats) < len(samples)  # not every poll: only after a silence...
    assert all(b - a >= 600 for a, b in zip(beats, beats[1:])), beats  # ...of max_silence_s
    assert all(v.get("beat", 7) == 7 for v in samples)

"""Every fault mode of the simulators' FaultProxy, observed from a real pymodbus client."""

from __future__ import annotations

import asyncio

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from simulators.faults import CountingPlc, Fault, FaultProxy, FaultSchedule, Mode, start_tcp_server

pytestmark = pytest.mark.integration


async def _setup(schedule: FaultSchedule | None = None):
    plc = CountingPlc("m1", holes=[(20, 29)], size=40)
    server, port = await start_tcp_server(plc.device())
    proxy = FaultProxy(("127.0.0.1", port), schedule)
    await proxy.start()
    return plc, server, proxy


async def _client(proxy: FaultProxy, timeout: float = 0.5) -> AsyncModbusTcpClient:
    client = AsyncModbusTcpClient("127.0.0.1", port=proxy.port, timeout=timeout, retries=0, reconnect_delay=0)
    assert await client.connect()
    return client


async def _teardown(server, proxy, *clients) -> None:
    for c in clients:
        c.close()
    await proxy.stop()
    await server.shutdown()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_pass_through_serves_the_counting_plc():
    async def main():
        plc, server, proxy = await _setup()
        client = await _client(proxy)
        r1 = await client.read_holding_registers(0, count=4, device_id=1)
        r2 = await client.read_holding_registers(0, count=4, device_id=1)
        await _teardown(server, proxy, client)
        assert (r1.registers[1], r2.registers[1]) == (1, 2)
        assert r2.registers[2:4] == [2, 3]  # seq + i
        assert plc.seq == 2 and proxy.requests == 2 and proxy.faulted == 0

    run(main())


@pytest.mark.parametrize("code", [2, 4, 6])
def test_exception_mode_answers_with_the_configured_code(code):
    async def main():
        plc, server, proxy = await _setup()
        client = await _client(proxy)
        proxy.set_fault(Fault(mode=Mode.exception, code=code))
        refused = await client.read_holding_registers(0, count=2, device_id=1)
        proxy.set_fault(None)
        ok = await client.read_holding_registers(0, count=2, device_id=1)
        await _teardown(server, proxy, client)
        assert refused.isError() and refused.exception_code == code
        assert not ok.isError()
        assert plc.seq == 1  # the refused read never reached the device

    run(main())


def test_illegal_address_refuses_only_reads_touching_the_range():
    async def main():
        plc, server, proxy = await _setup()
        client = await _client(proxy)
        proxy.set_fault(Fault(mode=Mode.illegal_address, addresses=((5, 6),)))
        touching = await client.read_holding_registers(0, count=6, device_id=1)
        beside = await client.read_holding_registers(0, count=5, device_id=1)
        after = await client.read_holding_registers(7, count=3, device_id=1)
        await _teardown(server, proxy, client)
        assert touching.isError() and touching.exception_code == 2
        assert not beside.isError() and not after.isError()

    run(main())


def test_device_holes_are_illegal_addresses_without_a_proxy_fault():
    async def main():
        plc, server, proxy = await _setup()
        client = await _client(proxy)
        hole = await client.read_holding_registers(18, count=4, device_id=1)
        around = await client.read_holding_registers(30, count=10, device_id=1)
        await _teardown(server, proxy, client)
        assert hole.isError() and hole.exception_code == 2
        assert not around.isError()

    run(main())


def test_delay_makes_a_short_timeout_expire_and_a_long_one_succeed():
    async def main():
        plc, server, proxy = await _setup()
        impatient = await _client(proxy, timeout=0.1)
        patient = await _client(proxy, timeout=5)
        proxy.set_fault(Fault(mode=Mode.delay, delay_s=0.6))
        with pytest.raises(ModbusException):
            await impatient.read_holding_registers(0, count=2, device_id=1)
        late = await patient.read_holding_registers(0, count=2, device_id=1)
        await _teardown(server, proxy, impatient, patient)
        assert not late.isError()

    run(main())


def test_drop_closes_the_connection():
    async def main():
        plc, server, proxy = await _setup()
        client = await _client(proxy, timeout=2)
        proxy.set_fault(Fault(mode=Mode.drop))
        with pytest.raises(ModbusException):
            await client.read_holding_registers(0, count=2, device_id=1)
        for _ in range(100):
            if not client.connected:
                break
            await asyncio.sleep(0.01)
        connected = client.connected
        await _teardown(server, proxy, client)
        assert not connected
        assert plc.seq == 0

    run(main())


@pytest.mark.parametrize("mode", [Mode.silent, Mode.malformed])
def test_silent_and_malformed_answers_are_no_usable_answer(mode):
    async def main():
        plc, server, proxy = await _setup()
        client = await _client(proxy, timeout=0.3)
        proxy.set_fault(Fault(mode=mode))
        with pytest.raises(ModbusException):
            await client.read_holding_registers(0, count=2, device_id=1)
        await _teardown(server, proxy, client)

    run(main())


def test_disappear_stops_listening_and_comes_back():
    async def main():
        plc, server, proxy = await _setup()
        client = await _client(proxy, timeout=0.3)
        proxy.set_fault(Fault(mode=Mode.disappear))
        while proxy._server is not None:  # the presence watcher closes the listener
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        lost = client.connected
        refused = not await client.connect()
        proxy.set_fault(None)
        while proxy._server is None:
            await asyncio.sleep(0.01)
        back = await client.connect()
        r = await client.read_holding_registers(0, count=2, device_id=1)
        await _teardown(server, proxy, client)
        assert not lost and refused and back and not r.isError()

    run(main())


def test_scheduled_window_ends_by_itself():
    async def main():
        schedule = FaultSchedule(faults=(Fault(mode=Mode.exception, code=6, at_s=0, for_s=0.5),))
        plc, server, proxy = await _setup(schedule)
        client = await _client(proxy)
        first = await client.read_holding_registers(0, count=2, device_id=1)
        while True:  # busy until the window closes, then served
            r = await client.read_holding_registers(0, count=2, device_id=1)
            if not r.isError():
                break
            assert r.exception_code == 6
            await asyncio.sleep(0.05)
        await _teardown(server, proxy, client)
        assert first.isError() and first.exception_code == 6

    run(main())


def test_unit_filter_faults_one_unit_behind_a_shared_connection():
    async def main():
        a, b = CountingPlc("a", unit_id=1), CountingPlc("b", unit_id=2)
        server, port = await start_tcp_server([a.device(), b.device()])
        proxy = FaultProxy(("127.0.0.1", port))
        await proxy.start()
        client = await _client(proxy)
        proxy.set_fault(Fault(mode=Mode.exception, code=4, units=(2,)))
        r1 = await client.read_holding_registers(0, count=2, device_id=1)
        r2 = await client.read_holding_registers(0, count=2, device_id=2)
        await _teardown(server, proxy, client)
        assert not r1.isError() and r2.isError() and r2.exception_code == 4

    run(main())

"""The gateway's MC protocol client against the simulator's MC port, over real loopback TCP."""

import asyncio
import socket

import pytest

from plcprotocol import mc
from gateway.links import ILLEGAL_DATA_ADDRESS, LinkError, Refused
from gateway.mclink import McLink
from simulators.mc_server import McMemory, McServer

pytestmark = pytest.mark.integration


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_words_bits_and_random_reads_come_back_as_the_plc_holds_them():
    memory = McMemory()
    memory.set_word("D100", 1234)
    memory.set_word("D101", 0xFFFF)
    memory.set_dword("D200", 123_456_789)  # low word first
    memory.set_word("W1A", 77)  # W is numbered in hexadecimal
    for device in ("M3", "M17", "X1F"):
        memory.set_bit(device, True)

    async def scenario():
        server = McServer(memory)
        port = await server.start()
        link = McLink("127.0.0.1", port)
        try:
            words = await link.read_words(mc.Device.parse("D100"), 2, 5)
            bits = await link.read_bits(mc.Device.parse("M0"), 20, 5)
            m_as_words = await link.read_words(mc.Device.parse("M0"), 2, 5)
            x = await link.read_bits(mc.Device.parse("X1E"), 2, 5)
            scattered = await link.random_read([mc.Device.parse("W1A"), mc.Device.parse("D101")],
                                               [mc.Device.parse("D200")], 5)
        finally:
            link.close()
            await server.stop()
        return words, bits, m_as_words, x, scattered

    words, bits, m_as_words, x, scattered = _run(scenario())
    assert words == [1234, 0xFFFF]
    assert [i for i, b in enumerate(bits) if b] == [3, 17]
    assert mc.bits_of_words(m_as_words, 32)[3] and mc.bits_of_words(m_as_words, 32)[17]
    assert x == [False, True]
    assert scattered == ([77, 0xFFFF], [123_456_789])


def test_a_read_past_the_device_range_is_a_refused_address_and_the_link_stays_usable():
    memory = McMemory(sizes={"D": 100})

    async def scenario():
        server = McServer(memory)
        port = await server.start()
        link = McLink("127.0.0.1", port)
        try:
            with pytest.raises(Refused) as refused:
                await link.read_words(mc.Device.parse("D95"), 10, 5)
            after = await link.read_words(mc.Device.parse("D90"), 10, 5)
        finally:
            link.close()
            await server.stop()
        return refused.value, after

    refused, after = _run(scenario())
    assert refused.code == ILLEGAL_DATA_ADDRESS and "C056" in str(refused) and "D95" in str(refused)
    assert after == [0] * 10


def test_a_silent_plc_times_out_and_the_next_read_reconnects():
    answered = {"n": 0}
    memory = McMemory()
    memory.set_word("D0", 42)

    async def scenario():
        silent_first = asyncio.Event()

        async def serve(reader, writer):
            if not silent_first.is_set():  # the first connection accepts and never answers
                silent_first.set()
                await reader.read()  # until the client gives up and closes
                writer.close()
                return
            real_reader, real_writer = reader, writer
            from simulators.mc_server import answer
            head = await real_reader.readexactly(mc.HEADER_BYTES)
            rest = await real_reader.readexactly(mc.frame_length(head) - mc.HEADER_BYTES)
            answered["n"] += 1
            real_writer.write(answer(memory, head + rest))
            await real_writer.drain()
            real_writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        link = McLink("127.0.0.1", port)
        try:
            with pytest.raises(LinkError, match="Timeout"):
                await link.read_words(mc.Device.parse("D0"), 1, 0.5)
            value = await link.read_words(mc.Device.parse("D0"), 1, 10)
        finally:
            link.close()
            server.close()
            await server.wait_closed()
        return value

    assert _run(scenario()) == [42]
    assert answered["n"] == 1


def test_a_closed_port_is_a_link_error_that_names_the_host():
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def scenario():
        link = McLink("127.0.0.1", port)
        with pytest.raises(LinkError, match=f"127.0.0.1:{port}"):
            await link.read_words(mc.Device.parse("D0"), 1, 5)

    _run(scenario())

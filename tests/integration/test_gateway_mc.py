"""The gateway polling a Mitsubishi PLC over the MC protocol: the same device model as Modbus
(planned reads, decoding, refused spans split, health) against the simulated MC port."""

from __future__ import annotations

import logging
import struct

import pytest

from gateway.planner import RandomRead, Read, area_name, min_reads
from gateway.poller import DevicePoller
from gateway.links import build_links
from gateway.settings import DeviceSettings
from plcprotocol import mc
from simulators.mc_server import McMemory, McServer
from tests.integration.test_gateway_polling import Recorder, poll_until, run
from tests.servers import free_port

pytestmark = pytest.mark.integration

TAGS = [
    {"name": "state", "device": "D100"},
    {"name": "temp", "device": "D101", "type": "int16", "scale": 0.1},
    {"name": "count", "device": "D200", "type": "uint32"},  # low word first
    {"name": "force", "device": "D202", "type": "float32"},
    {"name": "running", "device": "M17"},
    {"name": "door", "device": "X1F"},
    {"name": "alarm_bit", "device": "D300", "type": "bool", "bit": 3},
    {"name": "recipe", "device": "D400", "type": "string", "length": 3},
    {"name": "spare", "device": "W1A"},
]


def _device(port: int, **kw) -> DeviceSettings:
    return DeviceSettings.model_validate({"name": "press-mc", "line": "l1", "protocol": "mc", "host": "127.0.0.1",
                                          "port": port, "tags": TAGS, **kw})


def _memory(**sizes) -> McMemory:
    memory = McMemory(**({"sizes": {**McMemory().sizes, **sizes}} if sizes else {}))
    memory.set_word("D100", 2)
    memory.set_word("D101", (-123) & 0xFFFF)
    memory.set_dword("D200", 70_000)
    low, high = struct.unpack("<HH", struct.pack("<f", 812.5))
    memory.set_word("D202", low)
    memory.set_word("D203", high)
    memory.set_bit("M17", True)
    memory.set_bit("X1F", True)
    memory.set_word("D300", 0b1000)
    if len(memory.words["D"]) > 402:
        for i, pair in enumerate((b"AB", b"C\x00", b"\x00\x00")):  # strings: low byte first
            memory.set_word(f"D{400 + i}", pair[0] | pair[1] << 8)
    memory.set_word("W1A", 9)
    return memory


def _poll(server: McServer, polls: int = 1, **kw):
    async def main():
        port = await server.start()
        device = _device(port, **kw)
        rec = Recorder()
        links = build_links([device])
        poller = DevicePoller(device, links[device.link], rec.sink, rec.health)
        try:
            values = [await poller.poll_once() for _ in range(polls)]
        finally:
            links[device.link].close()
            await server.stop()
        return poller, values

    return run(main())


def test_scattered_mc_tags_are_read_in_one_random_read_and_every_value_decodes():
    server = McServer(_memory())
    poller, (values,) = _poll(server)
    assert values == {"state": 2, "temp": pytest.approx(-12.3), "count": 70_000, "force": 812.5, "running": True,
                      "door": True, "alarm_bit": True, "recipe": "ABC", "spare": 9}
    # four device kinds would take four batch reads; their 9 word/double-word points fit one random read
    assert min_reads(poller.device.tags, 960, 2000, 959) == 4
    (read,) = poller.reads
    assert isinstance(read, RandomRead) and read.points == 9
    assert server.commands == {mc.RANDOM_READ: 1}  # counted at the PLC
    assert poller.link_label == f"mc:127.0.0.1:{server.port}"  # logs name the port, no Modbus unit id


def test_a_dense_area_keeps_its_batch_read_beside_the_random_read():
    # 500 neighbouring words would be 250 double-word points, more than one random read takes (192)
    dense = [{"name": f"d{i}", "device": f"D{1000 + i}"} for i in range(500)]
    memory = _memory()
    for i in range(500):
        memory.set_word(f"D{1000 + i}", i * 3)
    server = McServer(memory)
    poller, (values,) = _poll(server, tags=TAGS + dense)
    assert all(values[f"d{i}"] == i * 3 for i in range(500)) and values["recipe"] == "ABC"
    kinds = sorted(type(r).__name__ for r in poller.reads)
    assert kinds == ["RandomRead", "Read"]
    assert server.commands == {mc.RANDOM_READ: 1, mc.BATCH_READ: 1}


def test_a_plc_that_refuses_random_read_with_c059_is_switched_to_batch_reads_once(caplog):
    caplog.set_level(logging.WARNING, logger="gateway.poller")
    server = McServer(_memory(), random_read=False)  # an older CPU: 0x0403 answers C059
    poller, (first, second, third) = _poll(server, polls=3)
    expected = {"state": 2, "temp": pytest.approx(-12.3), "count": 70_000, "force": 812.5, "running": True,
                "door": True, "alarm_bit": True, "recipe": "ABC", "spare": 9}
    assert first == expected
    assert poller.health.online is True and poller.health.polls_failed == 0
    assert server.commands[mc.RANDOM_READ] == 1  # tried once, never again
    assert server.commands[mc.BATCH_READ] == 3 * 4  # then four batch reads a poll (D, M, X, W)
    assert all(isinstance(r, Read) for r in poller.reads)
    logged = [r.getMessage() for r in caplog.records if "random_read_unsupported" in r.getMessage()]
    assert len(logged) == 1 and "end_code=0xC059" in logged[0] and "press-mc" in logged[0]


def test_a_refused_span_is_split_and_the_missing_device_set_aside_as_unreadable():
    server = McServer(_memory(D=350), port=free_port())  # D0..D349: D400 is out of range (end code C056)
    device = _device(server.port)
    poller, rec = run(poll_until(server, device, lambda p, r: r.count("press-mc") >= 2 and "recipe" in p.plan.unreadable,
                                 "the refused D400 set aside and polls going on"))
    last = rec.samples["press-mc"][-1][1] if rec.samples["press-mc"] else {}
    assert poller.health.unreadable_tags == ["recipe"]
    assert poller.health.online is True
    assert "recipe" not in last


@pytest.mark.parametrize("change,message", [
    ({"port": None}, "needs 'port'"),
    ({"transport": "rtu_over_tcp"}, "runs over TCP"),
    ({"max_registers_per_read": 961}, "less than or equal to 960"),
])
def test_mc_device_settings_say_what_is_wrong(change, message):
    data = {"name": "press-mc", "line": "l1", "protocol": "mc", "host": "127.0.0.1", "port": 5007, "tags": TAGS,
            **change}
    if data["port"] is None:
        del data["port"]
    with pytest.raises(ValueError, match=message):
        DeviceSettings.model_validate(data)


def test_modbus_and_mc_tags_cannot_be_mixed_up():
    with pytest.raises(ValueError, match="set 'protocol: mc'"):
        DeviceSettings.model_validate({"name": "m", "line": "l1", "host": "127.0.0.1", "tags": TAGS})
    with pytest.raises(ValueError, match="name it with 'device', e.g. D100"):
        DeviceSettings.model_validate({"name": "m", "line": "l1", "protocol": "mc", "host": "127.0.0.1", "port": 5007,
                                       "tags": [{"name": "x", "table": "holding_register", "address": 0}]})
    with pytest.raises(ValueError, match="bit device: type must be 'bool'"):
        DeviceSettings.model_validate({"name": "m", "line": "l1", "protocol": "mc", "host": "127.0.0.1", "port": 5007,
                                       "tags": [{"name": "x", "device": "M0", "type": "uint16"}]})


def test_a_smaller_gap_splits_a_device_kind_as_for_modbus_registers():
    device = _device(5007, max_gap=8)  # D100-101, D200-203, D300, D400-402 lie further apart
    from gateway.planner import plan_reads

    reads = plan_reads(device.tags, device.max_registers_per_read, device.max_bits_per_read, device.max_gap)
    assert [area_name(r.table) for r in reads].count("D") == 4 and len(reads) == 7


def test_a_cpu_that_takes_fewer_random_points_gets_smaller_random_reads_and_no_value_is_lost():
    server = McServer(_memory(), random_points=4)  # answers C054 past 4 points
    poller, (first, second) = _poll(server, polls=2)
    assert first == second and first["recipe"] == "ABC" and len(first) == len(TAGS)
    assert poller.health.polls_failed == 0 and not poller.plan.unreadable
    assert poller.plan.random_limit == 4  # 9 points refused: half of them from then on
    random = [r for r in poller.reads if isinstance(r, RandomRead)]
    assert random and all(r.points <= 4 for r in random)

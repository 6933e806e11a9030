"""The gateway polling a Mitsubishi PLC over the MC protocol: the same device model as Modbus
(planned reads, decoding, refused spans split, health) against the simulated MC port."""

from __future__ import annotations

import struct

import pytest

from gateway.planner import area_name, min_reads
from gateway.poller import DevicePoller
from gateway.links import build_links
from gateway.settings import DeviceSettings
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


def test_an_mc_device_is_polled_in_the_fewest_batch_reads_and_every_value_decodes():
    async def main():
        server = McServer(_memory())
        port = await server.start()
        device = _device(port)
        rec = Recorder()
        links = build_links([device])
        poller = DevicePoller(device, links[device.link], rec.sink, rec.health)
        try:
            values = await poller.poll_once()
        finally:
            links[device.link].close()
            await server.stop()
        return poller, values

    poller, values = run(main())
    assert values == {"state": 2, "temp": pytest.approx(-12.3), "count": 70_000, "force": 812.5, "running": True,
                      "door": True, "alarm_bit": True, "recipe": "ABC", "spare": 9}
    # a request reads one device kind; on Ethernet the default gap spans a whole read, so one read a kind
    plan = [(area_name(r.table), r.address, r.count) for r in poller.reads]
    assert len(plan) == min_reads(poller.device.tags, 960, 2000, 959) == 4
    assert {a for a, _, _ in plan} == {"D", "M", "X", "W"}
    assert ("M", 1, 1) in plan and ("X", 1, 1) in plan  # bit devices in word units: M17 is bit 1 of word 1


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

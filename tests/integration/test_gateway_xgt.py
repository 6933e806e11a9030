"""The gateway polling an LS ELECTRIC XGT PLC over FEnet's dedicated protocol, against the
simulated FEnet port: planned block reads, decoding, refused spans split, invoke ids checked."""

from __future__ import annotations


import pytest

from gateway.links import build_links
from gateway.planner import area_name
from gateway.poller import DevicePoller
from gateway.settings import DeviceSettings
from simulators.xgt_server import XgtMemory, XgtServer
from tests.integration.test_gateway_polling import Recorder, poll_until, run
from tests.servers import free_port

pytestmark = pytest.mark.integration

TAGS = [
    {"name": "state", "variable": "%MW100"},
    {"name": "temp", "variable": "%MW101", "type": "int16", "scale": 0.1},
    {"name": "count", "variable": "%DD10"},
    {"name": "force", "variable": "%DD12", "type": "float32"},
    {"name": "running", "variable": "%MX1685"},  # bit 5 of word 105 (bits count from the area start)
    {"name": "alarm", "variable": "%MW102.3"},
    {"name": "lamp", "variable": "%PX17"},
]


def _memory(**sizes) -> XgtMemory:
    memory = XgtMemory(**({"sizes": {**XgtMemory().sizes, **sizes}} if sizes else {}))
    memory.set("%MW100", 2)
    memory.set("%MW101", -123)
    memory.set("%DD10", 70_000)
    memory.set("%DD12", 812.5)
    memory.set("%MX1685", 1)
    memory.set("%MW102.3", 1)
    memory.set("%PX17", 1)
    return memory


def _device(port: int, **kw) -> DeviceSettings:
    return DeviceSettings.model_validate({"name": "press-ls", "line": "l1", "protocol": "xgt", "host": "127.0.0.1",
                                          "port": port, "tags": TAGS, **kw})


def test_an_xgt_device_is_read_in_block_reads_and_every_value_decodes():
    async def main():
        server = XgtServer(_memory())
        port = await server.start()
        device = _device(port)
        links = build_links([device])
        poller = DevicePoller(device, links[device.link], Recorder().sink)
        try:
            values = await poller.poll_once()
        finally:
            links[device.link].close()
            await server.stop()
        return poller, values

    poller, values = run(main())
    assert values == {"state": 2, "temp": pytest.approx(-12.3), "count": 70_000, "force": 812.5, "running": True,
                      "alarm": True, "lamp": True}
    assert sorted(area_name(r.table) for r in poller.reads) == ["D", "M", "P"]  # one block read an area


def test_a_read_past_an_area_is_refused_split_and_the_tag_set_aside():
    server = XgtServer(_memory(D=44), port=free_port())  # %D has 44 bytes: %DD12 (bytes 48-51) is past its end
    device = _device(server.port, poll_interval_s=0.1)
    poller, rec = run(poll_until(server, device, lambda p, r: r.count("press-ls") >= 2 and "force" in p.plan.unreadable,
                                 "the refused %DD12 set aside and polls going on"))
    assert poller.health.unreadable_tags == ["force"] and poller.health.online is True
    assert rec.samples["press-ls"][-1][1]["count"] == 70_000


def test_xgt_devices_default_to_port_2004_and_block_reads_of_700_words():
    device = DeviceSettings.model_validate({"name": "m", "line": "l1", "protocol": "xgt", "host": "127.0.0.1",
                                            "tags": TAGS})
    assert (device.port, device.max_registers_per_read, device.link_name) == (2004, 700, "xgt:127.0.0.1:2004")
    with pytest.raises(ValueError, match="an XGT block read takes at most 700 words"):
        DeviceSettings.model_validate({"name": "m", "line": "l1", "protocol": "xgt", "host": "127.0.0.1",
                                       "max_registers_per_read": 701, "tags": TAGS})

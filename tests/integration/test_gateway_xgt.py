"""The gateway polling an LS ELECTRIC XGT PLC over FEnet's dedicated protocol, against the
simulated FEnet port: planned block and individual reads, decoding, refused reads split,
invoke ids checked."""

from __future__ import annotations

import logging

import pytest

from gateway.links import build_links
from gateway.planner import IndividualRead, Read, area_name, plan_reads
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


def _poll_once(memory: XgtMemory, tags: list[dict] | None = None):
    """One poll against a simulated FEnet port: (poller, values, the server's requests by kind)."""
    async def main():
        server = XgtServer(memory)
        port = await server.start()
        device = _device(port, **({"tags": tags} if tags is not None else {}))
        links = build_links([device])
        poller = DevicePoller(device, links[device.link], Recorder().sink)
        try:
            values = await poller.poll_once()
        finally:
            links[device.link].close()
            await server.stop()
        return poller, values, dict(server.requests)

    return run(main())


def test_an_xgt_device_is_read_in_the_fewest_requests_and_every_value_decodes():
    poller, values, requests = _poll_once(_memory())
    assert values == {"state": 2, "temp": pytest.approx(-12.3), "count": 70_000, "force": 812.5, "running": True,
                      "alarm": True, "lamp": True}
    # three areas would take three block reads; their 9 words fit one individual read
    assert len(plan_reads(poller.device.tags, 700, 2000, 8)) == 3
    assert [(type(r), getattr(r, "size", None)) for r in poller.reads] == [(IndividualRead, "W")]
    assert requests == {"individual": 1}


def test_a_dense_xgt_area_is_read_in_one_block_read():
    tags = [{"name": f"w{i}", "variable": f"%MW{200 + i}"} for i in range(40)]
    memory = XgtMemory()
    for i in range(40):
        memory.set(f"%MW{200 + i}", 1000 + 7 * i)
    poller, values, requests = _poll_once(memory, tags)
    assert values == {f"w{i}": 1000 + 7 * i for i in range(40)}
    assert [(type(r), area_name(r.table), r.address, r.count) for r in poller.reads if isinstance(r, Read)] == \
        [(Read, "M", 200, 40)]
    assert requests == {"block": 1}


def _scattered() -> tuple[list[dict], dict[str, object], XgtMemory]:
    """42 variables of every size over six areas, 900 words apart: what a block read cannot merge."""
    memory = XgtMemory(sizes={a: 65536 for a in "MDPRLK"})
    tags, served = [], {}
    for i in range(42):
        area, word = "MDPRLK"[i % 6], 900 * (i // 6) + 4 * (i % 6)
        kind = i % 7
        name = f"v{i}"
        if kind == 0:
            variable, tag, value = f"%{area}W{word}", {}, (37 * i + 11) & 0xFFFF
        elif kind == 1:
            variable, tag, value = f"%{area}D{word // 2}", {}, 70_000 + 1_000_003 * i
        elif kind == 2:
            variable, tag, value = f"%{area}D{word // 2}", {"type": "float32"}, 0.5 + 11 * i
        elif kind == 3:
            variable, tag, value = f"%{area}D{word // 2}", {"type": "int32"}, -5_000_000 - i
        elif kind == 4:
            variable, tag, value = f"%{area}L{word // 4}", {}, (1 << 40) + i
        elif kind == 5:
            variable, tag, value = f"%{area}X{16 * word + i % 16}", {}, i % 2 == 1
        else:
            variable, tag, value = f"%{area}W{word}.{i % 16:X}", {}, True
        memory.set(variable, value)
        tags.append({"name": name, "variable": variable, **tag})
        served[name] = value
    return tags, served, memory


def test_a_scattered_xgt_map_is_read_in_individual_reads_and_every_value_is_what_was_served():
    tags, served, memory = _scattered()
    poller, values, requests = _poll_once(memory, tags)
    assert values == served
    reads = poller.reads
    assert all(isinstance(r, IndividualRead) and len(r.points) <= 16 for r in reads)
    assert len(plan_reads(poller.device.tags, 700, 2000, poller.device.max_gap)) == 42  # one block read a variable
    assert requests == {"individual": len(reads)} and len(reads) <= 6


def test_a_refused_individual_read_is_split_down_to_the_one_variable_and_logged_once(caplog):
    tags, served, memory = _scattered()
    del memory.areas["K"][2 * 4500:]  # %K ends at word 4500: the two variables past it are refused
    past = [t["name"] for i, t in enumerate(tags) if i % 6 == 5 and 900 * (i // 6) + 20 >= 4500]
    assert past == ["v35", "v41"]
    server = XgtServer(memory, port=free_port())
    device = _device(server.port, poll_interval_s=0.1, tags=tags)
    with caplog.at_level(logging.WARNING, logger="gateway.poller"):
        poller, rec = run(poll_until(server, device, lambda p, r: set(p.plan.unreadable) == set(past)
                                     and r.count("press-ls") >= 3, "the two refused variables set aside"))
    assert poller.health.unreadable_tags == past and poller.health.online is True
    published: dict = {}
    for _, sample in rec.samples["press-ls"]:  # report by exception: unchanged values are not sent again
        published.update(sample)
    assert published == {k: v for k, v in served.items() if k not in past}
    # a uint16 and a bit of a word: both read as W variables; each set aside once, not every poll
    skipped = sorted(r.getMessage() for r in caplog.records if "skip-tags" in r.getMessage())
    assert skipped == [f"read_refused device=press-ls individual_read size=W variables=1 nak=0x0004 action=skip-tags:{n}"
                       for n in past]


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


def test_an_answer_with_another_invoke_id_is_not_taken_and_the_next_read_reconnects(caplog):
    from gateway.links import LinkError
    from gateway.xgtlink import XgtLink
    from simulators.xgt_server import answer

    memory = _memory()
    server = XgtServer(memory)
    stale = {"left": 1}

    def late_answer(frame: bytes) -> bytes:
        good = answer(memory, frame)
        if not stale["left"]:
            return good
        stale["left"] -= 1  # the answer to an earlier, timed-out request: invoke id one less
        wrong = bytearray(good)
        wrong[14:16] = ((int.from_bytes(good[14:16], "little") - 1) & 0xFFFF).to_bytes(2, "little")
        wrong[19] = sum(wrong[:19]) % 256
        return bytes(wrong)

    server.answer = late_answer

    async def main():
        port = await server.start()
        link = XgtLink("127.0.0.1", port)
        try:
            with pytest.raises(LinkError, match="answer to request 0, not 1"):
                await link.read("M", 100, 1, 0, 5.0)
            return await link.read("M", 100, 1, 0, 5.0)
        finally:
            link.close()
            await server.stop()

    with caplog.at_level(logging.INFO, logger="gateway.framedlink"):
        assert run(main()) == [2]
    assert sum("plc_connected" in r.getMessage() for r in caplog.records) == 2  # the stale connection was dropped

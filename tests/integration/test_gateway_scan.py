"""``smartfactory gateway scan`` and ``gateway plan`` from the command line, against a real device."""

from __future__ import annotations

import asyncio
import threading

import pytest
import yaml
from click.testing import CliRunner

from cli.main import cli
from simulators.faults import CountingPlc, start_tcp_server

pytestmark = pytest.mark.integration


def serve_in_thread(plc: CountingPlc):
    loop = asyncio.new_event_loop()
    box: dict = {}
    ready = threading.Event()

    def run():
        asyncio.set_event_loop(loop)
        box["server"], box["port"] = loop.run_until_complete(start_tcp_server(plc.device()))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)

    def stop():
        asyncio.run_coroutine_threadsafe(box["server"].shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return box["port"], stop


def test_scan_prints_the_served_ranges():
    port, stop = serve_in_thread(CountingPlc("m", holes=[(10, 19), (40, 44)], size=60))
    try:
        result = CliRunner().invoke(cli, ["gateway", "scan", "127.0.0.1", "--port", str(port), "--unit", "1",
                                          "--tables", "holding_register", "--range", "0-99"])
    finally:
        stop()
    assert result.exit_code == 0, result.output
    assert "holding_register: 45 of 100 addresses answer" in result.output
    assert "0-9, 20-39, 45-59" in result.output


def test_scan_rejects_a_bad_range():
    result = CliRunner().invoke(cli, ["gateway", "scan", "127.0.0.1", "--range", "10-5"])
    assert result.exit_code == 2 and "--range" in result.output


def test_plan_shows_interval_groups_and_the_lower_bound(tmp_path):
    config = {"gateway": {"id": "g", "tenant": "t", "site": "s", "devices": [{
        "name": "m", "line": "l", "host": "127.0.0.1", "addressing": "modicon", "max_gap": 2,
        "tags": [
            {"name": "speed", "address": 40001, "type": "float32"},
            {"name": "count", "address": 40003},
            {"name": "temp", "address": 30010, "poll_interval_s": 10, "report": "on_change", "deadband": 0.5},
            {"name": "far", "address": 40100},
        ]}]}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(cli, ["gateway", "plan", "--config", str(path)])
    assert result.exit_code == 0, result.output
    # the bound is the protocol's (any gap inside a 125-register read), not the configured gap of 2
    assert "l/m (127.0.0.1:502 unit 1): 4 tags in 3 reads (fewest possible 2 with max_gap: 96, one per tag 4)" in result.output
    assert "every 1 s: 3 tags in 2 reads" in result.output and "every 10 s: 1 tags in 1 reads" in result.output
    assert "input_register    address     9 count    1  [temp]" in result.output


def test_plan_says_which_gap_reaches_the_fewest_reads(tmp_path):
    tags = [{"name": f"t{i}", "table": "holding_register", "address": 10 * i} for i in range(20)]
    config = {"gateway": {"id": "g", "tenant": "t", "site": "s", "devices": [
        {"name": "m", "line": "l", "host": "127.0.0.1", "max_gap": 8, "tags": tags}]}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(cli, ["gateway", "plan", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "20 tags in 20 reads (fewest possible 2 with max_gap: 9, one per tag 20)" in result.output


def test_scan_of_a_closed_port_explains_it_without_library_internals():
    from tests.servers import free_port

    result = CliRunner().invoke(cli, ["gateway", "scan", "127.0.0.1", "--port", str(free_port()),
                                      "--tables", "coil", "--timeout", "0.2"])
    assert result.exit_code == 1
    assert "the host refused the connection: nothing listens on that port" in result.output
    assert "pymodbus" not in result.output.lower() and "Traceback" not in result.output


def test_scan_stops_when_the_table_has_ended_and_says_how_to_look_further():
    port, stop = serve_in_thread(CountingPlc("m", size=20))
    try:
        result = CliRunner().invoke(cli, ["gateway", "scan", "127.0.0.1", "--port", str(port),
                                          "--tables", "holding_register", "--range", "0-2999"])
    finally:
        stop()
    assert result.exit_code == 0, result.output
    assert "holding_register: 20 of" in result.output and ": 0-19" in result.output
    assert "stopped at" in result.output and "looks further" in result.output


def _plan(tmp_path, devices) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"gateway": {"id": "g", "tenant": "t", "site": "s", "devices": devices}}))
    result = CliRunner().invoke(cli, ["gateway", "plan", "--config", str(path)])
    assert result.exit_code == 0, result.output
    return result.output


def test_plan_of_an_mc_device_names_its_route_and_its_random_reads(tmp_path):
    tags = [{"name": "state", "device": "D100"}, {"name": "far", "device": "D5000"}, {"name": "spare", "device": "W1A0"},
            {"name": "run", "device": "M900"}, *({"name": f"d{i}", "device": f"R{i}"} for i in range(500))]
    out = _plan(tmp_path, [{"name": "press-mc", "line": "l", "protocol": "mc", "host": "127.0.0.1", "port": 5007,
                            "tags": tags}])
    assert ("l/press-mc (127.0.0.1:5007 network 0 station 255 (3E binary, Q/L/FX5 addressing)): 504 tags in 2 reads "
            "(1 batch + 1 random; fewest possible 2 with random reads, 5 batch reads only, one per tag 504); "
            "per read at most 960 words a batch read, 192 points a random read, gap 959") in out
    assert "R                 address     0 count  500  [d0," in out
    assert "random read         4 words +   0 double words  [state, far, run, spare]" in out
    assert "unit 1" not in out


def test_plan_of_an_xgt_device_names_fenet_and_its_company_id_not_a_unit(tmp_path):
    out = _plan(tmp_path, [{"name": "press-ls", "line": "l", "protocol": "xgt", "host": "127.0.0.1",
                            "tags": [{"name": "a", "variable": "%DW100"}, {"name": "b", "variable": "%MX3"}]}])
    assert ("l/press-ls (127.0.0.1:2004 FEnet, company id LSIS-XGT): 2 tags in 1 reads (0 block + 1 individual; "
            "fewest possible 1 with individual reads, 2 block reads only, one per tag 2); per read at most 700 words "
            "(1400 bytes) a block read, 16 variables of one size an individual read, gap 699") in out
    assert "unit" not in out


def test_plan_of_an_xgt_device_shows_its_block_and_individual_reads(tmp_path):
    tags = [{"name": "a", "variable": "%DW100"}, {"name": "b", "variable": "%MX3"},
            {"name": "c", "variable": "%RD500", "type": "float32"}, {"name": "d", "variable": "%KW7.A"},
            *({"name": f"w{i}", "variable": f"%MW{1000 + i}"} for i in range(30))]
    out = _plan(tmp_path, [{"name": "press-ls", "line": "l", "protocol": "xgt", "host": "127.0.0.1", "tags": tags}])
    assert "34 tags in 2 reads (1 block + 1 individual; fewest possible 2 with individual reads, 5 block reads only" in out
    assert "M                 address  1000 count   30  [w0, w1," in out
    # the float32 goes as two words: one W request, not a W and a D one
    assert "individual read     5 W variables (%DW100 %KW7 %MW0 %RW1000 %RW1001)  [c, a, d, b]" in out


def serve_framed_in_thread(server):
    """An MC or XGT simulator's port on its own loop in a thread, while the CLI runs its own."""
    loop = asyncio.new_event_loop()
    box: dict = {}
    ready = threading.Event()

    def run():
        asyncio.set_event_loop(loop)
        box["port"] = loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)

    def stop():
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return box["port"], stop


def test_mc_scan_says_which_device_areas_answer_how_far_and_what_they_hold():
    from simulators.mc_server import McMemory, McServer

    memory = McMemory(sizes={"D": 12288, "W": 8192, "M": 8192, "X": 8192})  # no R, Y or B on this CPU
    memory.set_word("D100", 5)
    memory.set_word("D101", 6)
    memory.set_word("D300", 1)
    memory.set_bit("M17", True)
    memory.set_bit("X1F", True)
    server = McServer(memory)
    port, stop = serve_framed_in_thread(server)
    try:
        result = CliRunner().invoke(cli, ["gateway", "scan", "127.0.0.1", "--protocol", "mc", "--port", str(port)])
    finally:
        stop()
    assert result.exit_code == 0, result.output
    out = result.output
    assert "D: D0-D12287 (12288 words) answer (" in out
    assert "  D0-D999 read: non-zero D100-D101, D300" in out
    assert "W: W0-W1FFF (8192 words) answer (" in out
    assert "  W0-W3E7 read: all zeros (a fresh or unused area; check an address whose value you know)" in out
    assert "M: M0-M8191 (8192 points) answer (" in out and "  M0-M8191 read: 1 point(s) on: M17" in out
    assert "X: X0-X1FFF (8192 points) answer (" in out and "read: 1 point(s) on: X1F" in out
    for area in "RYB":
        assert f"{area}: refused (MC end code 0xC056: read past the device's address range)" in out
    # per area at most 1 + 2 log2(2^24) probes plus the range's batch reads; an absent area costs one
    requests = sum(server.commands.values())
    assert server.commands.keys() == {0x0401}
    assert requests <= 4 * (1 + 2 * 24 + 2) + 3


def test_xgt_scan_says_which_areas_answer_and_explains_the_nak_of_the_others():
    from simulators.xgt_server import XgtMemory, XgtServer

    memory = XgtMemory(sizes={"M": 4096, "D": 40960})
    memory.set("%DW100", 7)
    memory.set("%MW3", 0x10)
    counted = {"n": 0}
    server = XgtServer(memory)
    answer = server.answer

    def counting(frame: bytes) -> bytes:
        counted["n"] += 1
        return answer(frame)

    server.answer = counting
    port, stop = serve_framed_in_thread(server)
    try:
        result = CliRunner().invoke(cli, ["gateway", "scan", "127.0.0.1", "--protocol", "xgt", "--port", str(port),
                                          "--areas", "M,D,P", "--range", "0-199"])
    finally:
        stop()
    assert result.exit_code == 0, result.output
    out = result.output
    assert "%M: %MB0-%MB4095 (4096 bytes) answer (" in out and "  %MW0-%MW199 read: non-zero %MW3" in out
    assert "%D: %DB0-%DB40959 (40960 bytes) answer (" in out and "  %DW0-%DW199 read: non-zero %DW100" in out
    assert "%P: refused (XGT NAK (status 0xFFFF, code 0x0003): device memory this PLC does not have)" in out
    assert counted["n"] <= 2 * (1 + 2 * 20 + 1) + 1


@pytest.mark.parametrize("protocol,hint", [
    ("mc", "the MC protocol / SLMP port opened in GX Works"),
    ("xgt", "2004 for the FEnet dedicated protocol over TCP"),
])
def test_mc_and_xgt_scan_of_a_closed_port_is_a_plain_sentence(protocol, hint):
    from tests.servers import free_port

    result = CliRunner().invoke(cli, ["gateway", "scan", "127.0.0.1", "--protocol", protocol,
                                      "--port", str(free_port()), "--timeout", "0.2"])
    assert result.exit_code == 1
    assert "the host refused the connection: nothing listens on that port" in result.output and hint in result.output
    assert "Traceback" not in result.output and "Errno" not in result.output


def test_mc_scan_needs_a_port_and_known_areas():
    result = CliRunner().invoke(cli, ["gateway", "scan", "127.0.0.1", "--protocol", "mc"])
    assert result.exit_code == 2 and "--port" in result.output and "GX Works" in result.output
    result = CliRunner().invoke(cli, ["gateway", "scan", "127.0.0.1", "--protocol", "mc", "--port", "5007",
                                      "--areas", "D,Q"])
    assert result.exit_code == 2 and "Q: not an MC device area" in result.output

"""A scenario machine served over OPC UA (simulators/opcua_plcs.py): its nodes hold what the
served log says, and asyncua's standard address space is cached whole, once, and a damaged
cache does not stop the simulator."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
import yaml
from asyncua import Client, ua

from simulators.opcua_plcs import _publish_cache, address_space_cache, node_id, SimulatedOpcUaPlc
from simulators.opcua_server import NAMESPACE_URI
from simulators.scenario import load_scenario

pytestmark = pytest.mark.integration


def _machine(tmp_path):
    data = {"tenant": "t", "site": "s", "start": "2026-01-05",
            "lines": [{"name": "l1", "machines": [{"name": "press-4", "kind": "press", "protocol": "opcua"}]}]}
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_scenario(path).machines()[0]


def test_the_address_space_cache_is_published_whole_and_the_first_one_stays(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    shelf, building = address_space_cache()
    assert building is not None and shelf == building / "standard" and building.parent == tmp_path / "smartfactory"
    shelf.write_bytes(b"first")
    other_shelf, other = address_space_cache()  # a second server started meanwhile builds its own
    assert other is not None and other != building
    other_shelf.write_bytes(b"second")
    _publish_cache(building)
    _publish_cache(other)
    ready, none = address_space_cache()
    assert none is None and ready.read_bytes() == b"first" and not other.exists()


def test_nodes_hold_what_the_served_log_records_even_with_a_damaged_cache(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    shelf, building = address_space_cache()
    assert building is not None
    shelf.write_bytes(b"not a shelf")  # a cache that does not load
    _publish_cache(building)
    assert address_space_cache()[1] is None
    machine = _machine(tmp_path)
    log = io.StringIO()

    async def main():
        # one sampling at the start, then none while the test reads (the next is an hour away)
        plc = SimulatedOpcUaPlc(machine, served_log=log, sample_s=3600)
        await plc.start()
        try:
            async with Client(plc.endpoint, timeout=4) as client:
                index = await client.get_namespace_index(NAMESPACE_URI)
                nodes = {t.name: client.get_node(ua.NodeId(f"press-4.{t.name}", index)) for t in machine.tags}
                return {name: await n.read_value() for name, n in nodes.items()}, \
                    {name: await n.read_data_value() for name, n in nodes.items()}
        finally:
            await plc.stop()

    values, data = asyncio.run(main())
    assert "opcua_address_space_cache_unusable" in caplog.text  # it did try the damaged cache, and went on
    records = [json.loads(line) for line in log.getvalue().splitlines()]
    held: dict = {}
    since: dict = {}
    for r in records:
        held.update(r["values"])
        since.update(dict.fromkeys(r["values"], r["t_ms"]))
    assert set(values) == {t.name for t in machine.tags} == set(held)
    # each node holds the last value logged for it, stamped with the logged source time
    for name, value in values.items():
        assert value == held[name], name
        ts = data[name].SourceTimestamp
        assert round(ts.timestamp() * 1000) == since[name], name
    assert node_id("press-4", "state") == f"nsu={NAMESPACE_URI};s=press-4.state"

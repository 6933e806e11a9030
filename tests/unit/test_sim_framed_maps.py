"""The MC, XGT and OPC UA maps a simulated machine is served through: the same signals as its
kind's Modbus map, no two values sharing a word, each OPC UA node holding the value the Modbus
registers decode to, and Modbus-only scenario keys refused."""

from __future__ import annotations

import pytest
import yaml

from simulators.framed_plcs import mc_register_map, xgt_register_map
from simulators.kinds import KINDS
from simulators.opcua_plcs import opcua_register_map, stored
from simulators.scenario import ScenarioError, load_scenario, resolve_scenario_path


def _words(tags) -> list[tuple[str, int]]:
    return [(t.table, t.address * 16 + (t.bit_in_word or 0)) if t.is_bit_device else (t.table, w)
            for t in tags for w in ([t.address] if t.is_bit_device else range(t.address, t.address + t.width))]


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("make", [mc_register_map, xgt_register_map])
def test_the_same_signals_with_their_types_and_no_shared_word(kind, make):
    modbus = KINDS[kind].tags
    tags = make(modbus)
    assert [t.name for t in tags] == [t.name for t in modbus]
    for m, t in zip(modbus, tags):
        assert t.type == m.type and t.scale == m.scale and t.width == m.width
    points = _words(tags)
    assert len(points) == len(set(points)), points


def test_where_the_press_signals_live():
    mc = {t.name: t.device for t in mc_register_map(KINDS["press"].tags)}
    xgt = {t.name: t.variable for t in xgt_register_map(KINDS["press"].tags)}
    assert mc["state"] == "D100" and mc["press_force"] == "D103" and mc["material_input"] == "M0"
    assert xgt["state"] == "%DW0" and xgt["press_force"] == "%DD3" and xgt["material_input"] == "%MX0"


def test_a_framed_machine_refuses_a_modbus_register_map(tmp_path):
    data = yaml.safe_load(resolve_scenario_path("autoparts_press_line").read_text())
    machine = data["lines"][0]["machines"][0]
    machine["protocol"] = "mc"
    machine["register_map"] = [{"name": "state", "table": "holding_register", "address": 0}]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError, match=r"lines\[0\]\.machines\[0\].*register_map and float_order are Modbus maps"):
        load_scenario(path)


def test_the_shipped_mixed_line_has_one_press_per_protocol():
    machines = load_scenario(resolve_scenario_path("mixed_press_line")).machines()
    assert [(m.ref.machine, m.protocol) for m in machines] == [
        ("press-1", "modbus"), ("press-2", "mc"), ("press-3", "xgt"), ("press-4", "opcua")]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_opcua_map_names_one_node_per_signal_by_namespace_uri(kind, tmp_path):
    data = {"tenant": "t", "site": "s", "start": "2026-01-05",
            "lines": [{"name": "l1", "machines": [{"name": "m-1", "kind": kind, "protocol": "opcua", "port": 4840}]}]}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    machine = load_scenario(path).machines()[0]
    tags = opcua_register_map(machine.ref.machine, machine.tags)
    assert [t.name for t in tags] == [t.name for t in KINDS[kind].tags]
    assert all(t.node_id == f"nsu=urn:smartfactory:simulator:machine;s=m-1.{t.name}" for t in tags)
    assert [t.unit for t in tags] == [t.unit for t in KINDS[kind].tags]


def test_an_opcua_node_holds_what_the_modbus_registers_decode_to():
    press = {t.name: t for t in KINDS["press"].tags}
    assert stored(press["good_count"], 65535) == 65535 and isinstance(stored(press["state"], 2.0), int)
    assert stored(press["material_input"], 1) is True
    force = stored(press["press_force"], 812.3)
    assert isinstance(force, float) and force != 812.3 and abs(force - 812.3) < 1e-4  # float32-exact

"""The MC and XGT maps a simulated machine is served through: the same signals as its kind's
Modbus map, no two values sharing a word, and Modbus-only scenario keys refused."""

from __future__ import annotations

import pytest
import yaml

from simulators.framed_plcs import mc_register_map, xgt_register_map
from simulators.kinds import KINDS
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
    assert [(m.ref.machine, m.protocol) for m in machines] == [("press-1", "modbus"), ("press-2", "mc"), ("press-3", "xgt")]

"""Scenario files: the shipped ones load, bad ones are refused with file, line and key path;
the rollout's changes and the backfill range; the commands' shapes."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli.main import cli
from simulators.backfill import plan_range
from simulators.kinds import KINDS
from simulators.scenario import ScenarioError, load_scenario, resolve_scenario_path, shipped_scenarios
from simulators.settings import SimulatorSettings

SHIPPED = ["autoparts_press_line", "maskpack_filling_line", "placebo_machining_line"]


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _base() -> dict:
    return yaml.safe_load(resolve_scenario_path("autoparts_press_line").read_text())


def test_the_shipped_scenarios_load_and_cover_every_kind_of_machine():
    assert set(SHIPPED) <= set(shipped_scenarios())
    kinds = set()
    for name in SHIPPED:
        sc = load_scenario(resolve_scenario_path(name))
        machines = sc.machines()
        kinds |= {m.spec.kind.name for m in machines}
        ports = [m.port for m in machines]
        assert None not in ports and len(set(ports)) == len(ports)
    assert {"press", "cnc", "injection", "assembly"} <= kinds


def test_rollout_changes_scale_the_parameters():
    sc = load_scenario(resolve_scenario_path("autoparts_press_line"))
    m = sc.machines()[0]
    assert m.spec.after.load_s == pytest.approx(m.spec.before.load_s * 0.25)
    assert m.spec.after.process_s == m.spec.before.process_s
    data = _base()
    data["rollout"]["changes"] = {"fault_rate": "-30%", "cycle_time": -5, "scrap_rate": "-40 %"}
    from simulators.scenario import Scenario

    sc = Scenario.model_validate(data)
    b, a = sc.machines()[0].spec.before, sc.machines()[0].spec.after
    assert a.mtbf_h == pytest.approx(b.mtbf_h / 0.7)  # 30% fewer faults per processing hour
    assert a.process_s == pytest.approx(b.process_s * 0.95) and a.unload_s == pytest.approx(b.unload_s * 0.95)
    assert a.scrap_rate == pytest.approx(b.scrap_rate * 0.6)


def test_placebo_and_excluded_machines_keep_their_parameters():
    for m in load_scenario(resolve_scenario_path("placebo_machining_line")).machines():
        assert m.spec.after == m.spec.before
    packing = next(m for m in load_scenario(resolve_scenario_path("maskpack_filling_line")).machines()
                   if m.ref.machine == "packing-1")
    assert packing.spec.after == packing.spec.before


@pytest.mark.parametrize(
    ("mutate", "key_path", "words"),
    [
        (lambda d: d["lines"][0]["machines"][1].__setitem__("kind", "lathe"), "lines[0].machines[1].kind", "press"),
        (lambda d: d["lines"][0]["machines"][0]["params"].__setitem__("cycle_s", 3), "lines[0].machines[0].params",
         "unknown parameter"),
        (lambda d: d["rollout"]["changes"].__setitem__("material_input_time", "-175%"),
         "rollout.changes.material_input_time", "above -100%"),
        (lambda d: d["rollout"]["changes"].__setitem__("speed", "-5%"), "rollout.changes.speed", "unknown key"),
        (lambda d: d["lines"][0]["machines"][2].__setitem__("register_map", [
            {"name": "spindle_load", "table": "holding_register", "address": 0, "type": "float32"}]),
         "lines[0].machines[2]", "not a signal of a press"),
        (lambda d: d["lines"][0]["machines"][1].__setitem__("restarts", ["2026-02-04T13:20:00"]),
         "lines[0].machines[1].restarts", "time zone"),
        (lambda d: d["rollout"].__setitem__("date", "2025-12-01"), "(top level)", "must be after start"),
        (lambda d: d["lines"][0]["machines"][3].__setitem__("port", 5020), "(top level)", "share Modbus port"),
    ],
)
def test_bad_scenarios_name_the_file_line_and_key(tmp_path, mutate, key_path, words):
    data = _base()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    message = str(err.value)
    assert str(path) in message and key_path in message and words in message, message
    if key_path != "(top level)":
        assert f"{path}:" in message.split("\n")[1]  # with a line number


def test_missing_scenario_lists_the_shipped_ones(tmp_path):
    with pytest.raises(ScenarioError, match="autoparts_press_line"):
        load_scenario(tmp_path / "nope.yaml")


def test_plan_range_defaults_and_refusals():
    sc = load_scenario(resolve_scenario_path("autoparts_press_line"))
    origin = sc.local_midnight(sc.start)
    assert plan_range(sc, None, None, None) == (origin, origin + sc.days * 86400)
    assert plan_range(sc, None, None, 3) == (origin, origin + 3 * 86400)
    end = sc.local_midnight(date(2026, 3, 1))
    assert plan_range(sc, None, "2026-03-01", 7) == (end - 7 * 86400, end)
    assert plan_range(sc, "2026-02-01", "now", None, now=end) == (sc.local_midnight(date(2026, 2, 1)), end)
    with pytest.raises(ValueError, match="before the scenario's start"):
        plan_range(sc, "2025-12-01", None, 3)
    with pytest.raises(ValueError, match="not a date"):
        plan_range(sc, "yesterday", None, 3)


def test_simulator_section_takes_a_scenario_or_machines_not_both():
    SimulatorSettings.model_validate({"scenario": "autoparts_press_line"})
    SimulatorSettings.model_validate({"machines": [{"name": "p", "port": 5020}]})
    for bad in ({}, {"scenario": "x", "machines": [{"name": "p", "port": 5020}]}):
        with pytest.raises(ValueError, match="either 'scenario'"):
            SimulatorSettings.model_validate(bad)


def test_legacy_machines_serve_the_skeleton_press_map_around_the_clock():
    sc = SimulatorSettings.model_validate({"machines": [{"name": "p", "port": 5020, "initial_good_count": 65500}]}
                                          ).resolve_scenario()
    (m,) = sc.machines()
    from simulators.kinds import PRESS_TAGS

    assert m.tags == PRESS_TAGS and m.spec.initial_good_count == 65500
    assert len(sc.calendar.shifts) == 3 and not sc.calendar.breaks


def test_backfill_command_writes_a_store_and_the_ground_truth(tmp_path, keep_logging):
    db, truth = tmp_path / "t.db", tmp_path / "truth"
    result = CliRunner().invoke(cli, ["backfill", "autoparts_press_line", "--start", "2026-02-20", "--days", "1",
                                      "--sqlite", str(db), "--truth", str(truth)])
    assert result.exit_code == 0, result.output
    doc = json.loads((truth / "ground_truth.json").read_text())
    assert [m["machine"] for m in doc["machines"]] == ["press-1", "press-2", "press-3", "press-4"]
    from tsstore.sqlite import SqliteStore

    store = SqliteStore(db)
    assert [m.machine for m in store.machines()] == ["press-1", "press-2", "press-3", "press-4"]
    assert set(store.latest(store.machines()[0])) == {t.name for t in KINDS["press"].tags}
    store.close()


def test_backfill_command_refuses_without_a_target_and_with_a_bad_scenario(tmp_path, keep_logging):
    result = CliRunner().invoke(cli, ["backfill", "autoparts_press_line", "--days", "1"])
    assert result.exit_code == 2 and "say where to write" in result.output
    bad = _base()
    bad["lines"][0]["machines"][0]["kind"] = "lathe"
    result = CliRunner().invoke(cli, ["backfill", str(_write(tmp_path, bad)), "--dry-run"])
    assert result.exit_code == 2 and "lines[0].machines[0].kind" in result.output
    assert "Traceback" not in result.output


@pytest.fixture
def keep_logging():
    """``cli`` reconfigures the root logger; put pytest's handlers back afterwards."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("args", [["simulate"], ["backfill"]])
def test_commands_have_help(args):
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0 and "Usage: " in result.output

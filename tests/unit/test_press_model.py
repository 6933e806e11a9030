"""Unit tests of the seeded press simulator (pure state machine, no clock of its own)."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.press import MachineState, PressModel, PressParameters, PressSnapshot

START = 1_700_000_000.0
STEP = 0.25


def run(model: PressModel, seconds: float, step: float = STEP) -> list[tuple[float, PressSnapshot]]:
    n = int(seconds / step)
    return [(START + i * step, model.at(START + i * step)) for i in range(n + 1)]


@pytest.fixture(scope="module")
def long_run() -> list[tuple[float, PressSnapshot]]:
    """About 3 hours of one press, sampled every 0.25 s (a cycle lasts ~14 s)."""
    return run(PressModel(seed=7, start_s=START), 3 * 3600)


def test_first_snapshot_is_idle_with_initial_counts() -> None:
    snap = PressModel(seed=1, start_s=START, initial_good_count=12).at(START)
    assert snap.state is MachineState.IDLE
    assert (snap.good_count, snap.scrap_count, snap.press_force, snap.material_input) == (12, 0, 0.0, False)


def test_initial_good_count_is_taken_modulo_65536() -> None:
    assert PressModel(seed=1, start_s=START, initial_good_count=65536 + 5).at(START).good_count == 5


def test_same_seed_and_start_give_identical_snapshots() -> None:
    a = run(PressModel(seed=42, start_s=START), 900)
    b = run(PressModel(seed=42, start_s=START), 900)
    assert a == b
    assert len({s.state for _, s in a}) > 1  # not trivially equal: the machine did run


def test_different_seeds_give_different_histories() -> None:
    a = [s for _, s in run(PressModel(seed=1, start_s=START), 900)]
    b = [s for _, s in run(PressModel(seed=2, start_s=START), 900)]
    assert a != b
    assert [s.press_force for s in a if s.press_force] != [s.press_force for s in b if s.press_force]


def test_state_depends_only_on_the_instant_not_on_how_often_it_was_asked() -> None:
    fine = dict(run(PressModel(seed=9, start_s=START), 1800))
    coarse = PressModel(seed=9, start_s=START)
    checkpoints = [START + 1.0, START + 333.25, START + 1000.0, START + 1799.75]
    for t in checkpoints:
        assert coarse.at(t) == fine[t]
    assert PressModel(seed=9, start_s=START).at(START + 1799.75) == fine[START + 1799.75]


def test_start_time_shifts_the_whole_history() -> None:
    offset = 10_000.0
    a = PressModel(seed=3, start_s=START)
    b = PressModel(seed=3, start_s=START + offset)
    for i in range(0, 2400):
        t = START + i * 0.5
        assert a.at(t) == b.at(t + offset)


def test_states_are_valid_machine_states(long_run) -> None:
    for _, snap in long_run:
        assert isinstance(snap.state, MachineState)
    seen = {snap.state for _, snap in long_run}
    assert {MachineState.IDLE, MachineState.LOADING, MachineState.PROCESSING, MachineState.UNLOADING} <= seen


def test_material_input_is_on_exactly_while_loading(long_run) -> None:
    for _, snap in long_run:
        assert snap.material_input is (snap.state is MachineState.LOADING)
    assert any(snap.material_input for _, snap in long_run)


def test_press_force_is_non_zero_only_while_processing(long_run) -> None:
    processing = [snap.press_force for _, snap in long_run if snap.state is MachineState.PROCESSING]
    others = [snap.press_force for _, snap in long_run if snap.state is not MachineState.PROCESSING]
    assert processing and all(f != 0.0 for f in processing)
    assert others and all(f == 0.0 for f in others)


def test_press_force_is_float32_exact(long_run) -> None:
    forces = {snap.press_force for _, snap in long_run if snap.press_force}
    assert len(forces) > 10  # a fresh force every cycle
    for f in forces:
        assert type(f) is float
        assert float(np.float32(f)) == f


def test_press_force_is_near_the_nominal_force(long_run) -> None:
    params = PressParameters()
    forces = np.array(sorted({snap.press_force for _, snap in long_run if snap.press_force}))
    # 10 standard deviations: a value outside this is a unit or formula error, not chance
    assert np.all(np.abs(forces - params.force_kn) < 10 * params.force_sd_kn)


def test_press_force_is_constant_during_one_processing_phase(long_run) -> None:
    previous = None
    for _, snap in long_run:
        if snap.state is MachineState.PROCESSING and previous is not None and previous.state is MachineState.PROCESSING:
            assert snap.press_force == previous.press_force
        previous = snap


def test_counts_never_decrease_and_step_by_at_most_one(long_run) -> None:
    for (_, before), (_, after) in zip(long_run, long_run[1:]):
        assert after.good_count - before.good_count in (0, 1)
        assert after.scrap_count - before.scrap_count in (0, 1)


def test_each_finished_cycle_counts_exactly_one_part(long_run) -> None:
    unloads_finished = sum(
        1
        for (_, before), (_, after) in zip(long_run, long_run[1:])
        if before.state is MachineState.UNLOADING and after.state is not MachineState.UNLOADING
    )
    first, last = long_run[0][1], long_run[-1][1]
    parts = (last.good_count - first.good_count) + (last.scrap_count - first.scrap_count)
    assert unloads_finished > 100
    assert parts == unloads_finished


def test_counts_change_only_when_unloading_ends(long_run) -> None:
    for (_, before), (_, after) in zip(long_run, long_run[1:]):
        counted = (after.good_count, after.scrap_count) != (before.good_count, before.scrap_count)
        if counted:
            assert before.state is MachineState.UNLOADING and after.state is not MachineState.UNLOADING


def test_good_count_wraps_from_65535_to_0() -> None:
    model = PressModel(seed=5, start_s=START, initial_good_count=65530)
    counts = [snap.good_count for _, snap in run(model, 1800)]
    assert counts[0] == 65530
    distinct = [c for i, c in enumerate(counts) if i == 0 or c != counts[i - 1]]
    assert 65535 in distinct and 0 in distinct
    wrap = distinct.index(65535)
    assert distinct[wrap : wrap + 3] == [65535, 0, 1]
    # the only decrease in the whole run is that wrap
    decreases = [(a, b) for a, b in zip(counts, counts[1:]) if b < a]
    assert decreases == [(65535, 0)]
    assert distinct[: wrap + 1] == list(range(65530, 65536))


def test_snapshot_values_have_register_friendly_types() -> None:
    model = PressModel(seed=11, start_s=START)
    for _, snap in run(model, 120, step=1.0):
        values = snap.values()
        assert set(values) == {"state", "good_count", "scrap_count", "press_force", "material_input"}
        assert type(values["state"]) is int and values["state"] == int(snap.state)
        assert type(values["good_count"]) is int and 0 <= values["good_count"] <= 65535
        assert type(values["scrap_count"]) is int and 0 <= values["scrap_count"] <= 65535
        assert type(values["press_force"]) is float
        assert type(values["material_input"]) is bool


def test_certain_fault_sends_the_press_to_fault_after_each_cycle() -> None:
    params = PressParameters(fault_rate=1.0, planned_stop_rate=0.0)
    history = run(PressModel(seed=4, start_s=START, params=params), 600)
    states = [snap.state for _, snap in history]
    for before, after in zip(states, states[1:]):
        if before is MachineState.UNLOADING and after is not MachineState.UNLOADING:
            assert after is MachineState.FAULT
    assert MachineState.FAULT in states


def test_certain_scrap_counts_only_scrap() -> None:
    params = PressParameters(scrap_rate=1.0, fault_rate=0.0, planned_stop_rate=0.0)
    last = run(PressModel(seed=4, start_s=START, params=params), 600)[-1][1]
    assert last.good_count == 0
    assert last.scrap_count > 10

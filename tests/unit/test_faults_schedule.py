"""The fault schedule is pure: which fault is active at a time, for a unit."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from simulators.faults import Fault, FaultSchedule, Mode, exception_frame, malformed_frame


def test_window_is_half_open():
    f = Fault(mode=Mode.silent, at_s=10, for_s=5)
    assert [f.covers(t) for t in (9.99, 10, 14.99, 15)] == [False, True, True, False]


def test_first_matching_fault_wins_and_units_filter():
    s = FaultSchedule(faults=(
        Fault(mode=Mode.exception, code=6, at_s=0, for_s=10, units=(2,)),
        Fault(mode=Mode.delay, delay_s=1, at_s=5, for_s=10),
    ))
    assert s.active(1, unit=1) is None
    assert s.active(1, unit=2).mode is Mode.exception
    assert s.active(6, unit=2).mode is Mode.exception
    assert s.active(6, unit=1).mode is Mode.delay
    assert s.active(16, unit=1) is None


def test_disappear_marks_the_device_absent_only_inside_its_window():
    s = FaultSchedule(faults=(Fault(mode=Mode.disappear, at_s=2, for_s=3),))
    assert [s.absent(t) for t in (1, 2, 4.9, 5)] == [False, True, True, False]


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "delay"}, "delay_s"),
    ({"mode": "illegal_address"}, "addresses"),
    ({"mode": "disappear", "units": [1]}, "units"),
])
def test_incomplete_faults_are_rejected(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        Fault(**kwargs)


def test_frames():
    assert exception_frame(7, 1, 3, 2) == bytes([0, 7, 0, 0, 0, 3, 1, 0x83, 2])
    bad = malformed_frame(7, 1, 3)
    assert bad[7] == 3 and bad[8] == 20 and len(bad) - 9 < 20  # claims more bytes than it has


def test_schedule_loads_from_yaml_shape():
    import yaml

    data = yaml.safe_load("faults:\n  - {mode: silent, at_s: 10, for_s: 30, units: [2]}\n"
                          "  - {mode: illegal_address, addresses: [[5, 9]]}\n")
    s = FaultSchedule.model_validate(data)
    assert s.active(15, unit=2).mode is Mode.silent
    assert s.active(15, unit=1).mode is Mode.illegal_address and s.faults[1].addresses == ((5, 9),)

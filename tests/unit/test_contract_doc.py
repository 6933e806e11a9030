"""docs/wire-contract.md is the integrators' copy of the contract: it must match the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

from plant import MachineRef
from wire import decode_telemetry, telemetry_topic
from wire.payload import Telemetry

DOC = (Path(__file__).parents[2] / "docs" / "wire-contract.md").read_text()
JSON_BLOCKS = re.findall(r"```json\n(.*?)```", DOC, re.S)


def test_documented_schema_is_the_validated_schema():
    documented = [json.loads(b) for b in JSON_BLOCKS if '"$defs"' in b]
    assert documented == [Telemetry.model_json_schema()]


def test_documented_example_is_accepted():
    example = next(b for b in JSON_BLOCKS if '"samples"' in b and "$defs" not in b)
    machine = MachineRef("hanil-autoparts", "changwon-1", "press-line-1", "press-1")
    _, message = decode_telemetry(telemetry_topic(machine), example.encode())
    assert message.samples[0].values["good_count"] == 65500


def test_documented_topic_is_the_built_topic():
    machine = MachineRef("t", "s", "l", "m")
    pattern = re.search(r"```\n(sf/.*?)\n```", DOC).group(1)
    assert pattern.format(tenant="t", site="s", line="l", machine="m") == telemetry_topic(machine)

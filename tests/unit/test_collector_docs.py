"""docs/collector.md and the storage section of docs/wire-contract.md must match the code."""

from __future__ import annotations

import re
from pathlib import Path

from collector.metrics import CollectorMetrics
from collector.settings import CollectorSettings
from plant import MachineRef
from tsstore import Point
from tsstore.lineprotocol import to_lines
from wire import decode_telemetry, telemetry_topic

DOCS = Path(__file__).parents[2] / "docs"
CONTRACT = (DOCS / "wire-contract.md").read_text()
COLLECTOR = (DOCS / "collector.md").read_text()


def test_documented_line_is_what_the_documented_example_is_stored_as():
    example = next(b for b in re.findall(r"```json\n(.*?)```", CONTRACT, re.S) if '"samples"' in b and "$defs" not in b)
    machine = MachineRef("hanil-autoparts", "changwon-1", "press-line-1", "press-1")
    _, message = decode_telemetry(telemetry_topic(machine), example.encode())
    documented = re.search(r"```\n(telemetry,.*?)\n```", CONTRACT).group(1)
    assert to_lines([Point(machine, s.ts, s.values) for s in message.samples]) == [documented]


def test_every_setting_is_documented():
    documented = set(re.findall(r"^\| `(\w+)`(?:, `(\w+)`)? \|", COLLECTOR, re.M))
    names = {n for pair in documented for n in pair if n}
    assert set(CollectorSettings.model_fields) <= names


def test_every_metric_is_documented():
    exposed = {m.name for m in CollectorMetrics().registry.collect()}
    for name in exposed:
        assert f"`{name}" in COLLECTOR, name

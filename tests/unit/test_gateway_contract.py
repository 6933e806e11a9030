"""The status topics documented in docs/wire-contract.md are the ones the gateway builds, and
they never look like telemetry to a collector."""

from __future__ import annotations

import re
from pathlib import Path

from plant import MachineRef
from wire import device_status_topic, gateway_status_topic, parse_telemetry_topic, status_subscription

DOC = (Path(__file__).parents[2] / "docs" / "wire-contract.md").read_text()


def _matches(topic_filter: str, topic: str) -> bool:
    f, t = topic_filter.split("/"), topic.split("/")
    return len(f) == len(t) and all(a in ("+", b) for a, b in zip(f, t))


def test_documented_status_topics_are_the_built_ones():
    block = re.search(r"```\n(sf/v1/\{tenant\}/\{site\}/_gateway/.*?)\n```", DOC, re.S).group(1).splitlines()
    machine = MachineRef("t", "s", "l", "m")
    assert block[0].format(tenant="t", site="s", gateway="g") == gateway_status_topic("t", "s", "g")
    assert block[1].format(tenant="t", site="s", line="l", machine="m") == device_status_topic(machine)


def test_one_subscription_covers_both_and_neither_parses_as_telemetry():
    machine = MachineRef("t", "s", "l", "m")
    for topic in (gateway_status_topic("t", "s", "g"), device_status_topic(machine)):
        assert _matches(status_subscription("t"), topic)
        try:
            parse_telemetry_topic(topic)
        except ValueError:
            continue
        raise AssertionError(f"{topic} parsed as telemetry")
    assert f"`{status_subscription('<tenant>')}`" in DOC

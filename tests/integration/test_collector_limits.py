"""Per-tenant limits through a real mosquitto and a real ``smartfactory collector`` process: machines
not in the plant model, too many tag names and a tenant over its rate go to the dead letters and to
/metrics by reason and tenant; a machine added to the plant model is accepted within
plant_refresh_s; a plant database that disappears does not stop known machines' data."""

from __future__ import annotations

import re
import subprocess

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml

from collector.ledger import read_dead_letters
from plant import MachineRef
from tests.processes import SMARTFACTORY, CollectorProcess
from tests.waiting import wait_until
from tsstore.sqlite import SqliteStore
from wire import encode_telemetry, telemetry_topic

pytestmark = pytest.mark.integration

KNOWN = MachineRef("acme", "s1", "l1", "press-1")
GHOST = MachineRef("acme", "s1", "l1", "ghost-1")
BRAVO = MachineRef("bravo", "s1", "l1", "cnc-1")
T0 = 1_795_000_020_000


def seed(config, machines) -> None:
    tenants: dict = {}
    for m in machines:
        tenants.setdefault(m.tenant, []).append(m.machine)
    doc = {"tenants": [{"slug": t, "sites": [{"slug": "s1", "lines": [{"slug": "l1", "machines": [
        {"slug": name} for name in names]}]}]} for t, names in tenants.items()]}
    path = config.parent / "seed.yaml"
    path.write_text(yaml.safe_dump(doc))
    subprocess.run([*SMARTFACTORY, "plant", "seed", "-c", str(config), str(path)], check=True, capture_output=True)


def refused(proc: CollectorProcess) -> dict[tuple[str, str], float]:
    out = {}
    for line in httpx.get(proc.metrics_url(), timeout=5).text.splitlines():
        m = re.match(r'collector_refused_messages_total\{reason="(\w+)",tenant="([^"]+)"\} (\S+)', line)
        if m:
            out[(m[1], m[2])] = float(m[3])
    return out


@pytest.fixture
def setup(request, mosquitto, tmp_path):
    config = tmp_path / "smartfactory.yaml"
    config.write_text(yaml.safe_dump({
        "mqtt": {"url": mosquitto.url},
        "store": {"kind": "sqlite", "path": "telemetry.db"},
        "api": {"database_url": "sqlite:///plant.db"},
        "collector": {"client_id": "limits-1", "batch_interval_s": 0.1, "data_dir": "collector-data",
                      "metrics_port": 0, "plant_refresh_s": 1, "max_tags_per_machine": 3, **request.param},
    }))
    seed(config, [KNOWN, BRAVO])
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="limits-publisher")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    proc = CollectorProcess(config, "collector").start()
    yield config, proc, pub
    pub.loop_stop()
    pub.disconnect()
    proc.stop()


def send(pub, machine: MachineRef, i: int, values: dict) -> None:
    pub.publish(telemetry_topic(machine), encode_telemetry(machine, [(T0 + i * 1000, values)]), qos=1) \
        .wait_for_publish(10)


def written(proc: CollectorProcess) -> float:
    return proc.metric("collector_points_written_total")


# one message per tenant per 100 s: every further one is over the rate
@pytest.mark.parametrize("setup", [{"max_messages_per_s_per_tenant": 0.01, "tenant_burst_s": 1}], indirect=True)
def test_unknown_machines_and_a_tenant_over_its_rate_go_to_dead_letters_and_metrics(setup, tmp_path):
    _config, proc, pub = setup
    send(pub, KNOWN, 0, {"a": 1, "b": 2, "c": 3})
    send(pub, GHOST, 0, {"a": 1})  # refused as unknown before it can use acme's budget
    for i in range(20):
        send(pub, BRAVO, i, {"x": i})
    wait_until(lambda: sum(refused(proc).values()) >= 20, 30, "20 refusals counted")
    wait_until(lambda: written(proc) >= 2, 30, "2 points stored")
    assert refused(proc) == {("unknown_machine", "acme"): 1, ("rate_limited", "bravo"): 19}
    letters = read_dead_letters(tmp_path / "collector-data")
    assert sorted(d.reason for d in letters) == ["rate_limited"] * 19 + ["unknown_machine"]
    assert [d.topic for d in letters if d.reason == "unknown_machine"] == [telemetry_topic(GHOST)]
    assert written(proc) == 2
    store = SqliteStore(tmp_path / "telemetry.db")
    try:
        assert set(store.latest(KNOWN)) == {"a", "b", "c"} and set(store.latest(BRAVO)) == {"x"}
        assert store.latest(GHOST) == {}
    finally:
        store.close()


@pytest.mark.parametrize("setup", [{}], indirect=True)
def test_tag_limit_a_machine_added_later_and_a_plant_database_that_goes_away(setup, tmp_path):
    config, proc, pub = setup
    send(pub, KNOWN, 0, {"a": 1, "b": 2, "c": 3})
    send(pub, KNOWN, 1, {"a": 1, "d": 4})  # a 4th tag name: refused
    send(pub, KNOWN, 2, {"a": 2, "c": 5})  # known names still flow
    send(pub, GHOST, 0, {"a": 1})
    wait_until(lambda: sum(refused(proc).values()) >= 2 and written(proc) >= 2, 30, "2 refused, 2 stored")
    assert refused(proc) == {("too_many_tags", "acme"): 1, ("unknown_machine", "acme"): 1}

    seed(config, [KNOWN, BRAVO, GHOST])  # added "in the UI": accepted within plant_refresh_s
    wait_until(lambda: proc.metric("collector_known_machines") == 3, 30, "the new machine list")
    send(pub, GHOST, 1, {"a": 1})
    wait_until(lambda: written(proc) >= 3, 30, "ghost-1 stored once known")

    (tmp_path / "plant.db").rename(tmp_path / "plant.db.away")  # the plant database is gone
    wait_until(lambda: proc.metric("collector_machine_list_failures_total") >= 1, 30, "the outage is noticed")
    send(pub, KNOWN, 3, {"a": 3})
    send(pub, GHOST, 2, {"a": 2})
    wait_until(lambda: written(proc) >= 5, 30, "known machines stored while the plant database is away")
    assert proc.metric("collector_known_machines") == 3
    assert refused(proc) == {("too_many_tags", "acme"): 1, ("unknown_machine", "acme"): 1}
    store = SqliteStore(tmp_path / "telemetry.db")
    try:
        assert set(store.latest(KNOWN)) == {"a", "b", "c"}
        assert store.latest(GHOST)["a"].value == 2
    finally:
        store.close()

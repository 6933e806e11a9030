"""Sharded time-series stores end to end: each tenant's telemetry lands in its own influxd and is read from it.

Two real influxd shards, a real mosquitto, a real ``smartfactory collector`` process and a real
``smartfactory api`` process, all configured by one file whose ``store:`` is ``kind: sharded``
(tenant ``bravo`` on shard ``east``, everyone else on the default ``west``). A publisher sends a
synthetic production day for a machine of each tenant. Every value must be in its tenant's shard
and in no other; the API's ``/latest`` and a KPI report of each tenant must read the right shard
(the report's good count is the synthetic truth, which the other shard could not give).
"""

from __future__ import annotations

from datetime import date

import pytest
import yaml

from analytics.synthetic import LineSpec, generate
from plant import MachineRef
from plantmodel.admin import PlantSeed, apply_seed, create_token
from plantmodel.db import open_plant
from tests.integration.collector_helpers import publish_samples, samples_of
from tests.processes import ApiProcess, CollectorProcess
from tests.waiting import wait_until
from tsstore.influx import InfluxStore

pytestmark = pytest.mark.integration

ACME = MachineRef("acme", "plant-1", "line-a", "press-1")  # on the default shard, west
BRAVO = MachineRef("bravo", "busan-1", "line-b", "cnc-1")  # on shard east
DAY = date(2026, 3, 3)  # a Tuesday (2 March 2026 is a substitute public holiday: no planned time)
SAMPLES_PER_MESSAGE = 200


def _stored_counts(store: InfluxStore, machine: MachineRef, columns: dict, start: int, end: int) -> dict[str, int]:
    return {tag: len(store.history(machine, tag, start, end, 0)) for tag in columns}


def test_each_tenant_is_stored_in_and_read_from_its_own_shard(influxd_shards, mosquitto, tmp_path):
    west, east = influxd_shards["west"], influxd_shards["east"]
    config = tmp_path / "smartfactory.yaml"
    config.write_text(yaml.safe_dump({
        "mqtt": {"url": mosquitto.url},
        "store": {"kind": "sharded", "default": "west", "tenants": {"bravo": "east"}, "shards": {
            "west": {"kind": "influxdb", "url": west.url, "database": "telemetry"},
            "east": {"kind": "influxdb", "url": east.url, "database": "telemetry"}}},
        "collector": {"client_id": "collector-1", "batch_interval_s": 0.2, "data_dir": "collector-data",
                      "metrics_port": 0},
        "api": {"database_url": "sqlite:///plant.db"},
        "analytics": {"maintain_rollups": False},
    }))
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({
        "tenants": [{"slug": m.tenant, "timezone": "Asia/Seoul", "sites": [{"slug": m.site, "lines": [
            {"slug": m.line, "machines": [{"slug": m.machine, "ideal_cycle_s": 70.0}]}]}]} for m in (ACME, BRAVO)],
        "users": [{"username": "engineer", "password": "engineer-password-1", "role": "centre_engineer"}]}))
    token = create_token(plant, "engineer", "test")
    plant.close()

    data = {}
    for machine, seed, process_s in ((ACME, 11, 60.0), (BRAVO, 12, 45.0)):
        columns, truth = generate([machine], DAY, 1, LineSpec(process_s=process_s), seed=seed)
        data[machine] = (columns[machine], truth, samples_of(columns[machine]))
    start = min(s[0][0] for _, _, s in data.values())
    end = max(s[-1][0] for _, _, s in data.values()) + 1

    collector = CollectorProcess(config, "collector").start()
    api = ApiProcess(config).launch()  # its start-up overlaps the publishing
    client = api.client(token)
    direct = {"west": InfluxStore(west.url, "telemetry"), "east": InfluxStore(east.url, "telemetry")}
    try:
        for machine, (_, _, samples) in data.items():
            assert publish_samples(mosquitto.port, machine, samples, SAMPLES_PER_MESSAGE) > 10

        # every value in its tenant's shard ...
        for machine, shard in ((ACME, "west"), (BRAVO, "east")):
            columns = data[machine][0]
            published = {tag: len(ts) for tag, (ts, _) in columns.items()}
            wait_until(lambda: _stored_counts(direct[shard], machine, columns, start, end) == published, 90,
                       f"{machine.tenant}'s values in shard {shard}")
        # ... and in no other: each shard lists only its own tenant, and holds nothing of the other's machine
        assert direct["west"].machines() == [ACME]
        assert direct["east"].machines() == [BRAVO]
        assert set(_stored_counts(direct["west"], BRAVO, data[BRAVO][0], start, end).values()) == {0}
        assert set(_stored_counts(direct["east"], ACME, data[ACME][0], start, end).values()) == {0}

        api.wait_up()
        listed = {(m["tenant"], m["machine"]) for m in client.get("/api/v1/machines").json()}
        assert listed == {(ACME.tenant, ACME.machine), (BRAVO.tenant, BRAVO.machine)}  # merged over the shards
        for machine, (columns, truth, _) in data.items():
            base = f"/api/v1/machines/{machine.tenant}/{machine.site}/{machine.line}/{machine.machine}"
            r = client.get(base + "/latest")
            assert r.status_code == 200, r.text
            values = r.json()["values"]
            for tag, (ts, vals) in columns.items():
                assert values[tag]["ts"] == int(ts[-1]) and values[tag]["value"] == pytest.approx(float(vals[-1]))
            r = client.get(f"/api/v1/reports/{machine.tenant}/{machine.site}/{machine.line}/kpis",
                           params={"first": DAY.isoformat()})
            assert r.status_code == 200, r.text
            report = r.json()
            assert report["time"]["good"] == truth.total("good") > 0, machine
        assert data[ACME][1].total("good") != data[BRAVO][1].total("good")  # the two tenants' truths differ
    finally:
        client.close()
        for store in direct.values():
            store.close()
        api.stop()
        collector.stop()

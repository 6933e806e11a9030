"""InfluxQL injection through every user-supplied filter, against a real influxd.

The API validates identifiers before they reach the store, and the store quotes every
identifier and literal it puts into InfluxQL. Both layers are attacked here: through the
HTTP API as an owner of tenant A, and directly at the store with the one free-text filter
(the tag name). Afterwards tenant B's data must be untouched and never have been returned.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import open_plant
from api.settings import ApiSettings
from plant import MachineRef
from tsstore import Point, StoreError
from tsstore.influx import InfluxStore

pytestmark = pytest.mark.integration

A = MachineRef("acme", "s1", "l1", "m1")
B = MachineRef("bravo", "s1", "l1", "m1")
DB = "inj"
T0 = 1_795_000_000_000
PAYLOADS = [
    "'", '"', "\\", "m1' OR tenant='bravo", 'm1" OR "tenant"=\'bravo',
    "x\" FROM telemetry; DROP DATABASE \"inj", "'; DROP DATABASE inj; --", "state) FROM telemetry --",
    "m1\nDROP DATABASE inj", "/.*/", "state\" FROM /.*/ --", "bravo", "*",
]
PARAMS = ["tag", "every", "agg", "start", "end"]
B_FORCE = 7777.25  # B's values are recognisable wherever they would show up
B_VALUE = re.compile(r"77\d\d\.25")


def _count(influxd, tenant: str) -> int:
    r = httpx.get(f"{influxd.url}/query", params={"db": DB, "q": f"SELECT count(state) FROM telemetry WHERE tenant = '{tenant}'"})
    return r.json()["results"][0]["series"][0]["values"][0][1]


@pytest.fixture
def setup(influxd, tmp_path):
    store = InfluxStore(influxd.url, DB)
    store.write([Point(A, T0 + i * 1000, {"state": 2, "force": 800.0 + i}) for i in range(20)])
    store.write([Point(B, T0 + i * 1000, {"state": 3, "force": B_FORCE + i}) for i in range(20)])
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({
        "tenants": [{"slug": t, "sites": [{"slug": "s1", "lines": [{"slug": "l1", "machines": [{"slug": "m1"}]}]}]}
                    for t in ("acme", "bravo")],
        "users": [{"username": "owner-a", "password": "owner-a-pass-91", "role": "sme_owner", "tenant": "acme"}]}))
    client = TestClient(create_app(store, ApiSettings(), plant, run_alarms=False))
    client.post("/api/v1/auth/login", json={"username": "owner-a", "password": "owner-a-pass-91"})
    yield store, client
    store.close()


def _assert_no_b(response: httpx.Response) -> None:
    """Refused (404/422), or answered without any of B's values; never a server error."""
    assert response.status_code in (200, 404, 422), response.text[:300]
    assert not B_VALUE.search(response.text), response.text[:300]


def test_injection_through_every_query_filter(setup, influxd):
    _, client = setup
    base = f"/api/v1/machines/{A.tenant}/{A.site}/{A.line}/{A.machine}"
    good = {"tag": "force", "start": "2026-11-19T00:00:00Z", "end": "2026-11-20T00:00:00Z", "every": "1m",
            "agg": "mean"}
    for endpoint in ("/history", "/export.csv"):
        for param in PARAMS:
            for payload in PAYLOADS:
                _assert_no_b(client.get(base + endpoint, params={**good, param: payload}))
    assert _count(influxd, "bravo") == 20 and _count(influxd, "acme") == 20


def test_injection_through_every_path_filter(setup, influxd):
    _, client = setup
    levels = {"tenant": A.tenant, "site": A.site, "line": A.line, "machine": A.machine}
    for level in levels:
        for payload in PAYLOADS:
            parts = {**levels, level: quote(payload, safe="")}
            path = "/api/v1/machines/{tenant}/{site}/{line}/{machine}".format(**parts)
            for endpoint in ("/latest", "/history"):
                _assert_no_b(client.get(path + endpoint, params={"tag": "force"}))
            line_path = "/api/v1/lines/{tenant}/{site}/{line}/dashboard".format(**parts)
            _assert_no_b(client.get(line_path))
    for payload in PAYLOADS:
        _assert_no_b(client.get("/api/v1/alarms/acme", params={"status": payload}))
        _assert_no_b(client.get("/api/v1/machines", params={"tenant": payload}))
    assert _count(influxd, "bravo") == 20 and _count(influxd, "acme") == 20


def test_store_quotes_a_hostile_tag_name(setup, influxd):
    """Below the API's validation: the store itself never lets a tag name become InfluxQL syntax."""
    store, _ = setup
    for payload in PAYLOADS:
        for every, agg in ((0, "mean"), (60_000, "max")):
            try:
                rows = store.history(A, payload, T0, T0 + 60_000, every, agg)
            except StoreError:
                continue  # influxd refused to parse it (a newline inside quotes): refused is safe
            assert rows == [], f"{payload!r} returned {rows[:3]}"
    # the real tag still reads only A's own values
    assert [v for _, v in store.history(A, "force", T0, T0 + 60_000, 0)] == [800.0 + i for i in range(20)]
    assert _count(influxd, "bravo") == 20

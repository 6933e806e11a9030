"""The HTTP API over a real SQLite store (no server needed)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import open_plant
from api.settings import ApiSettings
from api.timeparams import iso, parse_every
from plant import MachineRef
from tsstore import Point, StoreUnavailable
from tsstore.sqlite import SqliteStore

M = MachineRef("acme", "plant-1", "line-a", "press-1")
BASE = "/api/v1/machines/acme/plant-1/line-a/press-1"
T0 = 1_795_000_020_000


SEED = PlantSeed.model_validate({
    "tenants": [{"slug": "acme", "sites": [{"slug": "plant-1", "lines": [{"slug": "line-a",
                                                                          "machines": [{"slug": "press-1"}]}]}]}],
    "users": [{"username": "owner", "password": "owner-pass-1", "role": "sme_owner", "tenant": "acme"}],
})


def _plant(tmp_path):
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, SEED)
    return plant


@pytest.fixture
def client(tmp_path):
    store = SqliteStore(tmp_path / "api.db")
    store.write([Point(M, T0 + i * 1000, {"state": i % 3, "force": 800.0 + i, "note": f"n{i}"}) for i in range(120)])
    with TestClient(create_app(store, ApiSettings(max_points=100), _plant(tmp_path), run_alarms=False)) as c:
        assert c.post("/api/v1/auth/login", json={"username": "owner", "password": "owner-pass-1"}).status_code == 200
        yield c


def test_machines(client):
    assert client.get("/api/v1/machines").json() == [
        {"tenant": "acme", "site": "plant-1", "line": "line-a", "machine": "press-1"}
    ]


def test_latest_values_with_times(client):
    body = client.get(f"{BASE}/latest").json()
    assert body["values"]["force"] == {"ts": T0 + 119_000, "time": iso(T0 + 119_000), "value": 919.0}
    assert body["values"]["note"]["value"] == "n119"
    assert body["values"]["state"]["value"] == float(119 % 3)


def test_latest_of_unknown_machine_is_404(client):
    response = client.get("/api/v1/machines/acme/plant-1/line-a/nope/latest")
    assert response.status_code == 404
    assert "acme/plant-1/line-a/nope" in response.json()["detail"]


def test_history_downsampled_by_every(client):
    body = client.get(f"{BASE}/history", params={"tag": "force", "start": iso(T0), "end": iso(T0 + 120_000),
                                                 "every": "1m"}).json()
    assert body["every_ms"] == 60_000
    assert body["points"] == [{"ts": T0, "value": 800.0 + 29.5}, {"ts": T0 + 60_000, "value": 800.0 + 89.5}]


def test_history_raw_and_max(client):
    raw = client.get(f"{BASE}/history", params={"tag": "force", "start": iso(T0), "end": iso(T0 + 3000),
                                                "every": "raw"}).json()
    assert [p["value"] for p in raw["points"]] == [800.0, 801.0, 802.0]
    top = client.get(f"{BASE}/history", params={"tag": "force", "start": iso(T0), "end": iso(T0 + 120_000),
                                                "every": "1m", "agg": "max"}).json()
    assert [p["value"] for p in top["points"]] == [859.0, 919.0]


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"tag": "force", "every": "1 minute"}, "not a duration"),
        ({"tag": "force", "every": "1s", "start": iso(T0), "end": iso(T0 + 3_600_000)}, "exceed the limit of 100"),
        ({"tag": "force", "start": iso(T0 + 1000), "end": iso(T0)}, "must be before end"),
        ({"tag": "note", "every": "1m", "start": iso(T0), "end": iso(T0 + 60_000)}, "holds text"),
        ({"tag": "force", "every": "raw", "start": iso(T0), "end": iso(T0 + 120_000)}, "downsample with every="),
    ],
)
def test_history_bad_requests_say_what_to_change(client, params, fragment):
    response = client.get(f"{BASE}/history", params=params)
    assert response.status_code == 422
    assert fragment in str(response.json()["detail"])


def test_identifiers_that_could_inject_are_refused(client):
    response = client.get(f"{BASE}/history", params={"tag": 'force") OR 1=1 --'})
    assert response.status_code == 422
    response = client.get("/api/v1/machines/acme/plant-1/line-a/x'or'1'='1/latest")
    assert response.status_code == 422


def test_health_ok(client):
    assert client.get("/health").json() == {"status": "ok", "store": "ok", "detail": None}


class _DownStore:
    def ping(self):
        raise StoreUnavailable("connection refused")

    def machines(self):
        raise StoreUnavailable("connection refused")


def test_store_outage_is_503_with_reason(tmp_path):
    app = create_app(_DownStore(), plant=_plant(tmp_path), run_alarms=False)  # type: ignore[arg-type]
    with TestClient(app) as c:
        c.post("/api/v1/auth/login", json={"username": "owner", "password": "owner-pass-1"})
        health = c.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"
        machines = c.get("/api/v1/machines")
        assert machines.status_code == 503
        assert "connection refused" in machines.json()["detail"]


def test_openapi_and_dashboard_are_served(client):
    spec = client.get("/openapi.json").json()
    assert f"{BASE.rsplit('/acme', 1)[0]}/{{tenant}}/{{site}}/{{line}}/{{machine}}/history" in spec["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "/static/dashboard.js" in page.text
    assert client.get("/static/dashboard.js").status_code == 200


@pytest.mark.parametrize("text, ms", [("500ms", 500), ("10s", 10_000), ("1m", 60_000), ("2h", 7_200_000),
                                      ("1d", 86_400_000), ("raw", 0)])
def test_parse_every(text, ms):
    assert parse_every(text) == ms


@pytest.mark.parametrize("text", ["", "1", "m", "-1m", "1.5m", "1w", "1 m"])
def test_parse_every_rejects(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_every(text)

"""The snapshot warm-up (api/warmup.py): a served worker computes its lines' snapshots at start,
before any viewer asks, through the dashboards' single flight; bounded, and a failing line is skipped."""

from __future__ import annotations

import asyncio
import time

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.live import LineNotFound
from api.settings import ApiSettings
from api.warmup import lines_to_warm, warm_snapshots
from plant import MachineRef
from plant.states import MachineState as S
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import open_plant
from tsstore import Point, StoreUnavailable
from tsstore.sqlite import SqliteStore

SEED = {"tenants": [
    {"slug": "acme", "timezone": "UTC", "sites": [{"slug": "s", "lines": [
        {"slug": "l1", "machines": [{"slug": "m1"}]}, {"slug": "l2", "machines": [{"slug": "m2"}]}]}]},
    {"slug": "beta", "timezone": "UTC", "sites": [{"slug": "p", "lines": [{"slug": "x", "machines": [{"slug": "m"}]}]}]},
]}


@pytest.fixture()
def plant_and_store(tmp_path):
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate(SEED))
    store = SqliteStore(tmp_path / "s.db")
    now = int(time.time() * 1000)
    store.write([Point(MachineRef("acme", "s", "l1", "m1"), now - 10_000 + i * 1000, {"state": S.PROCESSING})
                 for i in range(10)])
    yield plant, store
    store.close()
    plant.close()


def test_the_lines_to_warm_are_every_tenants_in_slug_order_up_to_the_limit(plant_and_store):
    plant, _ = plant_and_store
    assert lines_to_warm(plant, 10) == [("acme", "s", "l1"), ("acme", "s", "l2"), ("beta", "p", "x")]
    assert lines_to_warm(plant, 2) == [("acme", "s", "l1"), ("acme", "s", "l2")]


def test_a_line_that_fails_is_skipped_and_the_others_are_still_warmed(plant_and_store):
    plant, _ = plant_and_store
    asked: list[tuple[str, str, str]] = []

    async def snapshot(t: str, s: str, ln: str) -> None:
        asked.append((t, s, ln))
        if ln == "l1":
            raise StoreUnavailable("store down")
        if ln == "l2":
            raise LineNotFound("deleted meanwhile")
        if t == "beta":
            raise RuntimeError("a bug in one line's computation")

    assert asyncio.run(warm_snapshots(plant, 10, snapshot)) == 0
    assert asked == [("acme", "s", "l1"), ("acme", "s", "l2"), ("beta", "p", "x")]
    assert asyncio.run(warm_snapshots(plant, 0, snapshot)) == 0 and len(asked) == 3  # 0: off, nothing asked


def _wait_for(predicate, deadline_s: float = 60.0) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_served_app_has_its_lines_snapshots_before_any_viewer_asks(plant_and_store):
    plant, store = plant_and_store
    app = create_app(store, ApiSettings(warm_lines=2), plant, run_alarms=False, warm=True)
    cache = app.state.services.snapshots
    with TestClient(app):  # start-up runs; no request is made
        warmed = _wait_for(lambda: cache.recent("acme", "s", "l2", 3600) is not None)
        snap = cache.recent("acme", "s", "l1", 3600)
        assert warmed and snap is not None
        assert snap[0]["machines"][0]["state"] == S.PROCESSING  # the line's data, read at start
        assert cache.recent("beta", "p", "x", 3600) is None  # beyond warm_lines


def test_an_app_built_for_tests_warms_nothing(plant_and_store):
    plant, store = plant_and_store
    app = create_app(store, ApiSettings(), plant, run_alarms=False)
    cache = app.state.services.snapshots
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200  # start-up has run and served a request
        assert cache.recent("acme", "s", "l1", 3600) is None

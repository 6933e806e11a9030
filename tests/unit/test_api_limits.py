"""Expensive requests are bounded (issue #11, item 2): the longest range, a time budget, cancellation.

Real SQLite store and plant database; the live disconnect test is in
tests/integration/test_api_limits_process.py.
"""

from __future__ import annotations

import threading
from datetime import date

import pytest
from fastapi.testclient import TestClient

from analytics import deadline
from analytics.policy import Policy
from analytics.settings import AnalyticsSettings
from analytics.synthetic import LineSpec, generate
from api.app import create_app
from api.settings import ApiSettings
from plant import MachineRef
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import open_plant
from tsstore.sqlite import SqliteStore

M = MachineRef("acme", "plant-1", "line-a", "press-1")
BASE = "/api/v1/reports/acme/plant-1/line-a"
MACHINE = "/api/v1/machines/acme/plant-1/line-a/press-1"
SEED = PlantSeed.model_validate({
    "tenants": [{"slug": "acme", "sites": [{"slug": "plant-1", "lines": [{"slug": "line-a", "machines": [
        {"slug": "press-1"}]}]}]}],
    "users": [{"username": "owner", "password": "owner-pass-1", "role": "sme_owner", "tenant": "acme"}],
})


def _app(tmp, **api) -> TestClient:
    store = SqliteStore(tmp / "store.db")
    if not store.machines():
        columns, _ = generate([M], date(2026, 3, 2), 7, LineSpec(process_s=60.0), seed=2)
        for m, cols in columns.items():
            store.write_columns(m, cols)
    plant = open_plant(f"sqlite:///{tmp / 'plant.db'}")
    apply_seed(plant, SEED)
    app = create_app(store, ApiSettings(**api), plant, run_alarms=False,
                     analytics=AnalyticsSettings(default=Policy(default_ideal_cycle_s=60.0), cache_path=tmp / "rollups.db"))
    c = TestClient(app)
    assert c.post("/api/v1/auth/login", json={"username": "owner", "password": "owner-pass-1"}).status_code == 200
    return c


@pytest.fixture(scope="module")
def owner(tmp_path_factory) -> TestClient:
    return _app(tmp_path_factory.mktemp("limits"))


@pytest.mark.timeout(60)  # before the fix this request ran for more than ten minutes
def test_a_century_of_kpis_by_shift_is_a_422_that_names_the_limit(owner):
    r = owner.get(f"{BASE}/kpis", params={"first": "2000-01-01", "last": "2100-12-31", "by": "shift"})
    assert r.status_code == 422, r.text[:300]
    err = r.json()["detail"][0]
    assert err["loc"] == ["query", "last"] and err["ctx"] == {"days": 36890, "max_days": 400}
    assert "at most 400 days (api.max_range_days)" in err["msg"] and "first=2099-11-27&last=2100-12-31" in err["msg"]
    # the range the message proposes is accepted (no data there: the rows are empty)
    ok = owner.get(f"{BASE}/kpis", params={"first": "2099-11-27", "last": "2100-12-31", "by": "shift"})
    assert ok.status_code == 200, ok.text[:300]
    assert owner.get(f"{BASE}/kpis", params={"first": "2026-03-02", "last": "2027-04-05"}).status_code == 200
    assert owner.get(f"{BASE}/kpis", params={"first": "2026-03-02", "last": "2027-04-06"}).status_code == 422


def test_a_before_after_window_longer_than_the_limit_is_a_422(owner):
    r = owner.get(f"{BASE}/before-after", params={"rollout": "2026-03-05", "days": 401})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "days"]


@pytest.mark.parametrize("path", ["/history", "/export.csv"])
def test_history_and_export_ranges_are_bounded(owner, path):
    r = owner.get(MACHINE + path, params={"tag": "state", "start": "2000-01-01T00:00:00Z",
                                          "end": "2100-01-01T00:00:00Z", "every": "1d"})
    assert r.status_code == 422 and r.json()["detail"][0]["ctx"]["max_days"] == 400
    inside = owner.get(MACHINE + path, params={"tag": "state", "start": "2026-03-01T00:00:00Z",
                                               "end": "2026-03-10T00:00:00Z", "every": "1h"})
    assert inside.status_code == 200, inside.text[:300]


def test_the_limit_is_a_setting(tmp_path):
    c = _app(tmp_path, max_range_days=3)
    assert c.get(f"{BASE}/kpis", params={"first": "2026-03-02", "last": "2026-03-04"}).status_code == 200
    r = c.get(f"{BASE}/kpis", params={"first": "2026-03-02", "last": "2026-03-05"})
    assert r.status_code == 422 and "at most 3 days" in r.json()["detail"][0]["msg"]


def test_a_report_over_its_time_budget_is_a_503_that_says_what_to_do(tmp_path):
    c = _app(tmp_path, report_budget_s=1e-9)  # spent before the first check in the analytics loops
    for path, params in (("/kpis", {"first": "2026-03-02", "last": "2026-03-08"}),
                         ("/before-after", {"rollout": "2026-03-05", "days": 7, "commissioning_days": 0,
                                            "replicates": 200})):
        r = c.get(BASE + path, params=params)
        assert r.status_code == 503, r.text[:300]
        assert "api.report_budget_s" in r.json()["detail"] and "shorter period" in r.json()["detail"]


def test_check_is_a_no_op_without_a_deadline_and_raises_once_cancelled():
    deadline.check()
    d = deadline.Deadline(None)
    with deadline.enforced(d):
        deadline.check()
        d.cancel("the client disconnected")
        with pytest.raises(deadline.Cancelled, match="disconnected"):
            deadline.check()
    deadline.check()  # out of the block: no deadline in force any more


def test_a_deadline_holds_only_in_the_computation_it_was_put_on():
    d = deadline.Deadline(None)
    d.cancel("stop")
    seen = []

    def other() -> None:
        try:
            deadline.check()
            seen.append("ran")
        except deadline.Stopped:
            seen.append("stopped")

    with deadline.enforced(d):
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen == ["ran"]

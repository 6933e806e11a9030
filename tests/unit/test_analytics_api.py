"""Report endpoints over a real SQLite store and plant database: formats, languages, tenant isolation."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient

from analytics.policy import Policy
from analytics.settings import AnalyticsSettings, RolloutDef
from analytics.synthetic import LineSpec, generate
from api.app import create_app
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import open_plant
from api.settings import ApiSettings
from plant import MachineRef
from tsstore.sqlite import SqliteStore

M = MachineRef("acme", "plant-1", "line-a", "press-1")
OTHER = MachineRef("beta", "plant-9", "line-z", "cnc-7")
FIRST, ROLLOUT = date(2026, 3, 2), date(2026, 3, 16)
BASE = "/api/v1/reports/acme/plant-1/line-a"

SEED = PlantSeed.model_validate({
    "tenants": [
        {"slug": "acme", "sites": [{"slug": "plant-1", "lines": [{"slug": "line-a", "machines": [{"slug": "press-1"}]}]}]},
        {"slug": "beta", "sites": [{"slug": "plant-9", "lines": [{"slug": "line-z", "machines": [{"slug": "cnc-7"}]}]}]},
    ],
    "users": [
        {"username": "owner", "password": "owner-pass-1", "role": "sme_owner", "tenant": "acme"},
        {"username": "eng", "password": "eng-pass-123", "role": "centre_engineer"},
    ],
})


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    store = SqliteStore(tmp / "store.db")
    columns, _ = generate([M, OTHER], FIRST, 28, LineSpec(process_s=60.0), seed=2, load_scale_after=(ROLLOUT, 0.5))
    for m, cols in columns.items():
        store.write_columns(m, cols)
    plant = open_plant(f"sqlite:///{tmp / 'plant.db'}")
    apply_seed(plant, SEED)
    return create_app(store, ApiSettings(), plant, run_alarms=False, analytics=AnalyticsSettings(
        default=Policy(default_ideal_cycle_s=60.0),
        rollouts=[RolloutDef(tenant="acme", line="line-a", date=ROLLOUT, commissioning_days=0),
                  RolloutDef(tenant="beta", line="line-z", date=ROLLOUT, commissioning_days=0)],
        cache_path=tmp / "rollups.db",
    ))


def login(app, user: str, password: str) -> TestClient:
    c = TestClient(app)
    assert c.post("/api/v1/auth/login", json={"username": user, "password": password}).status_code == 200
    return c


def test_before_after_json_uses_the_configured_rollout(app):
    c = login(app, "owner", "owner-pass-1")
    r = c.get(f"{BASE}/before-after", params={"replicates": 300})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["schema"] == "smartfactory.report/v1" and body["windows"]["rollout"] == "2026-03-16"
    mi = next(k for k in body["kpis"] if k["key"] == "material_input_s")
    assert mi["change_pct"] == pytest.approx(-50, abs=5) and mi["significant"]


def test_formats_and_languages(app):
    c = login(app, "owner", "owner-pass-1")
    html = c.get(f"{BASE}/before-after", params={"format": "html", "lang": "en", "replicates": 300})
    assert html.headers["content-type"].startswith("text/html") and "Material input time" in html.text
    pdf = c.get(f"{BASE}/before-after", params={"format": "pdf", "lang": "en", "replicates": 300})
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    day = c.get(f"{BASE}/kpis", params={"first": "2026-03-03", "format": "csv"})
    assert day.status_code == 200 and day.text.splitlines()[0].startswith("date,shift,oee")
    assert len(day.text.splitlines()) == 2


def test_another_tenants_report_is_not_found_and_bad_input_is_explained(app):
    c = login(app, "owner", "owner-pass-1")
    assert c.get("/api/v1/reports/beta/plant-9/line-z/before-after").status_code == 404
    bad = c.get(f"{BASE}/before-after", params={"rollout": "2026-03-05", "commissioning_days": 0})
    assert bad.status_code == 422 and "at least 7" in bad.json()["detail"]
    assert c.get(f"{BASE}/kpis", params={"first": "2026-03-03", "lang": "fr"}).status_code == 422


def test_portfolio_is_for_centre_engineers(app):
    assert login(app, "owner", "owner-pass-1").get("/api/v1/reports/portfolio").status_code == 403
    c = login(app, "eng", "eng-pass-123")
    body = c.get("/api/v1/reports/portfolio").json()
    assert body["tenants"] == 2 and body["kpis"]["material_input_s"]["improved_significantly"] == 2
    html = c.get("/api/v1/reports/portfolio", params={"format": "html", "lang": "ko"})
    assert "센터 포트폴리오" in html.text


def test_one_machines_day_kpis(app):
    c = login(app, "owner", "owner-pass-1")
    one = c.get(f"{BASE}/kpis", params={"first": "2026-03-03", "machine": "press-1"}).json()
    assert one["scope"]["machines"] == ["press-1"] and one["rows"][0]["kpis"]["output_per_hour"] > 0
    assert c.get(f"{BASE}/kpis", params={"first": "2026-03-03", "machine": "nope"}).status_code == 404


def _orders_csv() -> str:
    """Four orders finished each day of the four weeks: 2 of 4 on time before the rollout, 4 of 4 after;
    lead time 5 days before, 2 after."""
    from datetime import timedelta

    rows = ["주문번호,라인,수량,주문일,납기,완료일"]
    for day in range(28):
        d = FIRST + timedelta(days=day)
        after = d >= ROLLOUT
        for k in range(4):
            lead = 2 if after else 5
            on_time = after or k < 2
            due = d + timedelta(days=k % 2) if on_time else d - timedelta(days=1)
            rows.append(f"SO-{day}-{k},line-a,10,{d - timedelta(days=lead)},{due},{d}")
    return "\n".join(rows) + "\n"


def test_before_after_has_delivery_from_imported_orders_and_the_portfolio_lists_it(app):
    owner = login(app, "owner", "owner-pass-1")
    r = owner.post("/api/v1/orders/acme", content=_orders_csv().encode(), headers={"content-type": "text/csv"})
    assert r.status_code == 200 and r.json()["imported"] == 112, r.text
    body = owner.get(f"{BASE}/before-after", params={"replicates": 300}).json()
    assert body["pqcd"]["D"] == ["on_time_delivery", "lead_time_days"]
    ks = {k["key"]: k for k in body["kpis"]}
    assert ks["on_time_delivery"]["before"] == 0.5 and ks["on_time_delivery"]["after"] == 1.0
    assert ks["on_time_delivery"]["pp_change"] == pytest.approx(50.0)
    assert ks["lead_time_days"]["before"] == 5.0 and ks["lead_time_days"]["improvement_pct"] == pytest.approx(60.0)
    assert ks["on_time_delivery"]["n_before"] == 14 and body["delivery"]["coverage"]["after"] == 1.0
    csv_text = owner.get(f"{BASE}/before-after", params={"replicates": 300, "format": "csv", "lang": "ko"}).text
    assert "on_time_delivery,납기 준수율" in csv_text
    eng = login(app, "eng", "eng-pass-123")
    port = eng.get("/api/v1/reports/portfolio").json()
    assert port["delivery_kpis"] == ["on_time_delivery", "lead_time_days"]
    assert port["kpis"]["on_time_delivery"]["tenants"] == 1  # only acme has order records
    acme = next(x for x in port["reports"] if x["scope"]["tenant"] == "acme")
    assert {"on_time_delivery", "lead_time_days"} <= {k["key"] for k in acme["kpis"]}
    assert "납기 준수율" in eng.get("/api/v1/reports/portfolio", params={"format": "html", "lang": "ko"}).text

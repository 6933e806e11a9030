"""The rollout plan's targets: stored in the plant model (seed, API, CLI), judged on the report (달성률)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from analytics.targets import achievement, check_target
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import open_plant
from plantmodel.targets import annotate, list_targets, set_targets
from tests.unit.test_analytics_api import BASE, app, login  # noqa: F401 (the API over a synthetic line)


def test_achievement_follows_the_programme_signs():
    kpis = [{"key": "output_per_hour", "change_pct": 11.0, "improvement_pct": 11.0, "significant": True},
            {"key": "scrap_rate", "change_pct": -10.0, "improvement_pct": 10.0, "significant": False}]
    rows = achievement(kpis, [{"kpi": "output_per_hour", "change_pct": 10.0, "line": None},
                              {"kpi": "scrap_rate", "change_pct": -20.0, "line": None},
                              {"kpi": "scrap_rate", "change_pct": -20.0, "line": "other-line"}], {"line-a"})
    assert [(r["key"], round(r["achievement_pct"]), r["achieved"]) for r in rows] == [
        ("output_per_hour", 110, True), ("scrap_rate", 50, False)]


def test_a_target_the_wrong_way_or_unknown_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="bad way.*reduction"):
        check_target("scrap_rate", 20)
    with pytest.raises(ValueError, match="not a report KPI"):
        check_target("happiness", 10)


def test_seed_stores_targets_and_refuses_bad_ones(tmp_path):
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    seed = {"tenants": [{"slug": "acme", "name": "에이스", "sites": [{"slug": "p1", "lines": [{"slug": "l1"}]}],
                         "targets": [{"kpi": "output_per_hour", "change_pct": 10},
                                     {"kpi": "scrap_rate", "change_pct": -20, "line": "l1"}]}]}
    apply_seed(plant, PlantSeed.model_validate(seed))
    apply_seed(plant, PlantSeed.model_validate(seed))  # idempotent
    assert [(t["line"], t["kpi"], t["change_pct"]) for t in list_targets(plant, "acme")] == [
        (None, "output_per_hour", 10.0), ("l1", "scrap_rate", -20.0)]
    seed["tenants"][0]["targets"] = [{"kpi": "scrap_rate", "change_pct": 20}]
    with pytest.raises(ValueError, match="scrap_rate"):
        PlantSeed.model_validate(seed)
    with pytest.raises(ValueError, match="not a line of acme"):
        set_targets(plant, "acme", [{"kpi": "scrap_rate", "change_pct": -5, "line": "nope"}])
    plant.close()


def test_api_sets_targets_and_the_report_shows_achievement(app):  # noqa: F811
    owner = login(app, "owner", "owner-pass-1")
    bad = owner.put("/api/v1/targets/acme", json={"targets": [{"kpi": "material_input_s", "change_pct": 30}]})
    assert bad.status_code == 422 and "bad way" in bad.json()["detail"]
    ok = owner.put("/api/v1/targets/acme", json={"targets": [{"kpi": "material_input_s", "change_pct": -40},
                                                             {"kpi": "output_per_hour", "change_pct": 10}],
                                                 "replace": True})
    assert ok.status_code == 200, ok.text
    assert owner.get("/api/v1/targets/beta").status_code == 404  # another SME's plan: not even its existence
    body = owner.get(f"{BASE}/before-after", params={"replicates": 300}).json()
    rows = {t["key"]: t for t in body["targets"]}
    mi = next(k for k in body["kpis"] if k["key"] == "material_input_s")
    assert rows["material_input_s"]["achievement_pct"] == pytest.approx(mi["improvement_pct"] / 40 * 100)
    html_ko = owner.get(f"{BASE}/before-after", params={"replicates": 300, "format": "html", "lang": "ko"}).text
    assert "달성률" in html_ko and "감소 -40.0%" in html_ko
    eng = login(app, "eng", "eng-pass-123")
    portfolio = eng.get("/api/v1/reports/portfolio").json()
    acme = next(r for r in portfolio["reports"] if r["scope"]["tenant"] == "acme")
    assert {t["key"] for t in acme["targets"]} == {"material_input_s", "output_per_hour"}
    assert "달성률" in eng.get("/api/v1/reports/portfolio", params={"format": "html", "lang": "ko"}).text


def test_cli_sets_and_lists_targets(tmp_path):
    from cli.main import cli

    cfg = tmp_path / "config.yaml"
    cfg.write_text("api:\n  database_url: sqlite:///plant.db\n")
    seed = tmp_path / "seed.yaml"
    seed.write_text("tenants:\n  - slug: acme\n    sites: [{slug: p1, lines: [{slug: l1}]}]\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["plant", "seed", "-c", str(cfg), str(seed)]).exit_code == 0
    r = runner.invoke(cli, ["plant", "targets", "-c", str(cfg), "--tenant", "acme", "--set", "output_per_hour=+10",
                            "--set", "scrap_rate=-20"])
    assert r.exit_code == 0, r.output
    assert "output_per_hour\t+10%" in r.output and "scrap_rate\t-20%" in r.output
    r = runner.invoke(cli, ["plant", "targets", "-c", str(cfg), "--tenant", "acme", "--set", "scrap_rate=+20"])
    assert r.exit_code == 2 and "bad way" in r.output


def test_annotate_gives_names_without_touching_an_unknown_tenant(tmp_path):
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({"tenants": [{"slug": "acme", "name": "에이스 정밀", "name_en": "Ace Precision",
        "sites": [{"slug": "p1", "lines": [{"slug": "l1", "name": "1라인", "name_en": "Line 1",
                                            "machines": [{"slug": "m1", "name": "프레스 1호기"}]}]}]}]}))
    r = annotate({"kind": "period", "scope": {"tenant": "acme", "site": "p1", "line": "l1", "machines": ["m1"]}}, plant)
    assert r["names"]["tenant"] == "에이스 정밀" and r["names"]["machines"] == {"m1": "프레스 1호기"}
    from analytics.render import names

    assert names(r, "ko")["tenant"] == "에이스 정밀" and names(r, "ko")["line"] == "1라인"
    assert names(r, "en")["tenant"] == "Ace Precision" and names(r, "en")["line"] == "Line 1"
    assert "names" not in annotate({"kind": "period", "scope": {"tenant": "zzz", "line": "l1", "machines": []}}, plant)
    plant.close()


def test_api_serves_the_report_as_xlsx(app):  # noqa: F811
    import io

    from openpyxl import load_workbook

    owner = login(app, "owner", "owner-pass-1")
    r = owner.get(f"{BASE}/before-after", params={"replicates": 300, "format": "xlsx", "lang": "en"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert r.headers["content-disposition"].endswith('.xlsx"')
    assert "KPI" in load_workbook(io.BytesIO(r.content)).sheetnames


def test_centre_adds_report_schedules_and_reads_the_sends(app):  # noqa: F811
    eng = login(app, "eng", "eng-pass-123")
    r = eng.post("/api/v1/report-schedules", json={"tenant": "acme", "kind": "weekly", "recipients": ["o@acme.test"]})
    assert r.status_code == 201, r.text
    assert eng.post("/api/v1/report-schedules", json={"kind": "weekly", "recipients": ["not an address"]}).status_code == 422
    assert eng.post("/api/v1/report-schedules", json={"tenant": "nope", "kind": "monthly",
                                                      "recipients": ["a@b.test"]}).status_code == 404
    listed = eng.get("/api/v1/report-schedules").json()["schedules"]
    assert any(s["id"] == r.json()["id"] and s["recipients"] == ["o@acme.test"] for s in listed)
    assert eng.get("/api/v1/report-schedules/sends").json() == {"sends": []}
    owner = login(app, "owner", "owner-pass-1")
    assert owner.get("/api/v1/report-schedules").status_code == 403
    assert owner.patch(f"/api/v1/report-schedules/{r.json()['id']}", json={"active": False}).status_code == 403


def test_centre_changes_pauses_and_deletes_a_report_schedule(app):  # noqa: F811
    eng = login(app, "eng", "eng-pass-123")
    sid = eng.post("/api/v1/report-schedules", json={"tenant": "acme", "kind": "weekly",
                                                     "recipients": ["o@acme.test"]}).json()["id"]
    changed = eng.patch(f"/api/v1/report-schedules/{sid}", json={"recipients": ["o@acme.test", "c@centre.test"],
                                                                 "hour": 9, "lang": "en", "active": False})
    assert changed.status_code == 200, changed.text
    assert {k: changed.json()[k] for k in ("recipients", "hour", "lang", "active", "kind", "tenant")} == {
        "recipients": ["o@acme.test", "c@centre.test"], "hour": 9, "lang": "en", "active": False,
        "kind": "weekly", "tenant": "acme"}
    listed = {s["id"]: s for s in eng.get("/api/v1/report-schedules").json()["schedules"]}
    assert listed[sid]["active"] is False and listed[sid]["hour"] == 9
    bad = eng.patch(f"/api/v1/report-schedules/{sid}", json={"recipients": ["no-at-sign"]})
    assert bad.status_code == 422 and "not addresses: no-at-sign" in bad.text
    assert eng.patch(f"/api/v1/report-schedules/{sid}", json={"kind": "monthly"}).status_code == 422  # what it reports stays
    assert eng.patch(f"/api/v1/report-schedules/{sid + 1000}", json={"active": True}).status_code == 404
    assert eng.delete(f"/api/v1/report-schedules/{sid}").json() == {"deleted": sid, "sends_removed": 0}
    assert sid not in {s["id"] for s in eng.get("/api/v1/report-schedules").json()["schedules"]}
    assert eng.delete(f"/api/v1/report-schedules/{sid}").status_code == 404

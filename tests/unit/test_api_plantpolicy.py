"""The plant model as the one source of rollout dates, ideal cycles, time zones and shifts for reports."""

from __future__ import annotations

import logging
from datetime import date

import pytest
from fastapi.testclient import TestClient

from analytics.policy import Policy
from analytics.settings import AnalyticsSettings, RolloutDef
from analytics.synthetic import LineSpec, generate
from api.app import create_app
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import open_plant
from plantmodel.policy import effective_settings
from api.settings import ApiSettings
from plant import MachineRef
from tsstore.sqlite import SqliteStore

SHIFTS = [{"name": "day", "start": "06:00", "end": "18:00"}, {"name": "night", "start": "18:00", "end": "06:00"}]


def _plant(tmp_path, tenants: list[dict]):
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({"tenants": tenants}))
    return plant


def _line(slug: str, machines: list[dict], shifts=SHIFTS) -> dict:
    return {"slug": slug, "shifts": shifts, "machines": machines}


def test_a_tenant_without_its_own_policy_takes_zone_cycles_and_shifts_from_the_plant(tmp_path):
    plant = _plant(tmp_path, [
        {"slug": "acme", "timezone": "Asia/Ho_Chi_Minh", "sites": [{"slug": "p1", "lines": [
            _line("l1", [{"slug": "press-1", "ideal_cycle_s": 26}, {"slug": "press-2", "ideal_cycle_s": 31}])]}]},
        {"slug": "beta", "sites": [{"slug": "p9", "lines": [_line("z", [{"slug": "cnc-7", "ideal_cycle_s": 90}])]}]},
    ])
    configured = AnalyticsSettings(default=Policy(default_ideal_cycle_s=20),
                                   tenants={"beta": Policy(default_ideal_cycle_s=45, timezone="UTC")})
    got = effective_settings(configured, plant)
    acme = got.policy("acme")
    assert acme.timezone == "Asia/Ho_Chi_Minh"
    assert (acme.ideal_cycle("l1", "press-1"), acme.ideal_cycle("l1", "press-2")) == (26, 31)
    assert [(s.name, s.start, s.end) for s in acme.shifts] == [("day", "06:00", "18:00"), ("night", "18:00", "06:00")]
    beta = got.policy("beta")  # its own policy in the config is an explicit override
    assert beta == configured.tenants["beta"] and beta.ideal_cycle("z", "cnc-7") == 45
    assert configured.tenants == {"beta": configured.tenants["beta"]}  # the config itself is left as it was


def test_lines_with_different_shifts_keep_the_default_shifts(tmp_path):
    plant = _plant(tmp_path, [{"slug": "acme", "sites": [{"slug": "p1", "lines": [
        _line("l1", [{"slug": "m1"}]), _line("l2", [{"slug": "m2"}], shifts=[{"name": "day", "start": "08:00",
                                                                                 "end": "17:00"}])]}]}])
    default = Policy()
    assert effective_settings(AnalyticsSettings(default=default), plant).policy("acme").shifts == default.shifts


def test_plant_shifts_off_the_bucket_grid_are_refused_with_the_fix(tmp_path, caplog):
    plant = _plant(tmp_path, [{"slug": "acme", "sites": [{"slug": "p1", "lines": [
        _line("l1", [{"slug": "m1"}], shifts=[{"name": "day", "start": "07:30", "end": "16:30"}])]}]}])
    with caplog.at_level(logging.WARNING, logger="plantmodel.policy"):
        policy = effective_settings(AnalyticsSettings(), plant).policy("acme")
    assert policy.shifts == Policy().shifts
    assert "plant_shifts_not_used tenant=acme" in caplog.text and "bucket_min" in caplog.text


def test_rollouts_come_from_the_plant_unless_the_config_covers_the_line(tmp_path, caplog):
    plant = _plant(tmp_path, [
        {"slug": "acme", "rollout_date": "2026-02-23", "sites": [{"slug": "p1", "lines": [
            _line("inherits", [{"slug": "m1"}, {"slug": "m2"}]),
            _line("own-date", [{"slug": "m3", "rollout_date": "2026-03-02"}, {"slug": "m4", "rollout_date": "2026-03-02"}]),
            _line("configured", [{"slug": "m5"}]),
            _line("ambiguous", [{"slug": "m6", "rollout_date": "2026-03-02"}, {"slug": "m7", "rollout_date": "2026-04-06"}]),
        ]}]},
        {"slug": "no-rollout", "sites": [{"slug": "p1", "lines": [_line("l", [{"slug": "m"}])]}]},
        {"slug": "whole-tenant", "rollout_date": "2026-05-04", "sites": [{"slug": "p1", "lines": [_line("l", [{"slug": "m"}])]}]},
    ])
    configured = AnalyticsSettings(rollouts=[
        RolloutDef(tenant="acme", line="configured", date=date(2026, 1, 5), commissioning_days=3),
        RolloutDef(tenant="whole-tenant", date=date(2026, 5, 11))])
    with caplog.at_level(logging.WARNING, logger="plantmodel.policy"):
        got = effective_settings(configured, plant)
    by_line = {(r.tenant, r.line): (r.date, r.commissioning_days) for r in got.rollouts}
    assert by_line == {
        ("acme", "configured"): (date(2026, 1, 5), 3),  # the config's entry wins, with its commissioning days
        ("whole-tenant", None): (date(2026, 5, 11), 14),  # a tenant-wide entry covers every line
        ("acme", "inherits"): (date(2026, 2, 23), 14),  # the tenant's date
        ("acme", "own-date"): (date(2026, 3, 2), 14),  # the machines' common date
    }
    assert "plant_rollout_ambiguous tenant=acme line=ambiguous" in caplog.text and "2026-04-06" in caplog.text


M = MachineRef("acme", "plant-1", "line-a", "press-1")
FIRST, ROLLOUT = date(2026, 3, 2), date(2026, 3, 16)


def test_reports_use_the_rollout_recorded_in_the_plant_model(tmp_path):
    """No analytics.rollouts at all: the before/after report and the centre portfolio find the plant's date."""
    store = SqliteStore(tmp_path / "store.db")
    # 14 days before, and after the 14 commissioning days the plant model cannot change, 21 more
    columns, _ = generate([M], FIRST, 49, LineSpec(process_s=60.0), seed=2, load_scale_after=(ROLLOUT, 0.5))
    store.write_columns(M, columns[M])
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({
        "tenants": [{"slug": "acme", "rollout_date": ROLLOUT.isoformat(), "sites": [{"slug": "plant-1", "lines": [
            {"slug": "line-a", "machines": [{"slug": "press-1", "ideal_cycle_s": 60}]}]}]}],
        "users": [{"username": "eng", "password": "eng-pass-123", "role": "centre_engineer"}]}))
    app = create_app(store, ApiSettings(), plant, run_alarms=False)
    with TestClient(app) as c:
        assert c.post("/api/v1/auth/login", json={"username": "eng", "password": "eng-pass-123"}).status_code == 200
        r = c.get("/api/v1/reports/acme/plant-1/line-a/before-after", params={"replicates": 300})
        assert r.status_code == 200, r.text
        assert r.json()["windows"]["rollout"] == ROLLOUT.isoformat()
        assert r.json()["policy"]["ideal_cycle_s"] == {"line-a/press-1": 60.0}
        p = c.get("/api/v1/reports/portfolio").json()
        assert [(x["scope"]["tenant"], x["windows"]["rollout"]) for x in p["reports"]] == [("acme", "2026-03-16")]
        mi = next(k for k in p["reports"][0]["kpis"] if k["key"] == "material_input_s")
        assert mi["change_pct"] == pytest.approx(-50, abs=5)
    store.close()


def test_the_plant_models_weekdays_reach_the_report_policy(tmp_path):
    """A line closed on weekends in the plant model must not get Saturdays and Sundays as planned time."""
    weekdays = [{"name": "day", "start": "08:00", "end": "17:00", "weekdays": "01234"}]
    plant = _plant(tmp_path, [{"slug": "acme", "sites": [{"slug": "p1", "lines": [
        _line("l1", [{"slug": "m1"}], shifts=weekdays)]}]}])
    acme = effective_settings(AnalyticsSettings(default=Policy()), plant).policy("acme")
    assert [(s.name, s.days) for s in acme.shifts] == [("day", ["mon", "tue", "wed", "thu", "fri"])]

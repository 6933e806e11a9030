"""The centre portfolio's computation: gains in words with the right sign, and the reasons an SME is flagged."""

from __future__ import annotations

from api.centre import attention, gain, gains_by_tenant, kpi_legend, portfolio_rows
from api.settings import ApiSettings

NOW = 1_780_000_000_000
SCOPE = {"tenant": "acme", "site": "s1", "line": "l1"}


def _kpi(key: str, before: float, after: float, higher_is_better: bool, significant: bool = True) -> dict:
    change = (after - before) / before * 100
    return {"key": key, "before": before, "after": after, "change_pct": change,
            "improvement_pct": change if higher_is_better else -change, "higher_is_better": higher_is_better,
            "significant": significant, "unit": "s", "pp_change": None}


def _row(tenant="acme", machines=3, coverage=1.0, gateways=None) -> dict:
    if gateways is None:
        gateways = [{"gateway": "gw-1", "machines": machines, "last_data_ms": NOW - 5_000, "online": True}]
    return {"tenant": tenant, "name": "에이크미", "rollout_date": "2026-03-02", "machines": machines,
            "gateways": gateways, "coverage_24h": coverage, "active_alarms": 0}


def _report(tenant: str, *kpis: dict) -> dict:
    return {"scope": {**SCOPE, "tenant": tenant}, "kpis": list(kpis)}


def test_a_shorter_material_input_time_is_a_negative_change_that_is_better_in_the_reports_words():
    g = gain(_kpi("material_input_s", 40.0, 10.16, higher_is_better=False), SCOPE)
    assert round(g["change_pct"], 1) == -74.6 and g["direction"] == "reduced"
    assert round(g["improvement_pct"], 1) == 74.6 and g["better"] is True
    assert g["label"] == {"ko": "자재 투입시간 (개당)", "en": "Material input time per part"}  # analytics/labels.py
    up = gain(_kpi("output_per_hour", 100.0, 111.0, higher_is_better=True), SCOPE)
    assert round(up["change_pct"], 1) == 11.0 and up["direction"] == "increased" and up["better"] is True
    longer = gain(_kpi("lead_time_days", 3.0, 4.0, higher_is_better=False), SCOPE)
    assert longer["direction"] == "increased" and longer["better"] is False


def test_gains_are_grouped_per_tenant_and_only_for_the_headline_and_delivery_kpis():
    reports = [_report("acme", _kpi("oee", 50, 60, True), _kpi("scrap_rate", 0.02, 0.01, False)),
               _report("bravo", _kpi("output_per_hour", 100, 90, True))]
    out = gains_by_tenant(reports)
    assert [g["key"] for g in out["acme"]] == ["scrap_rate"] and [g["key"] for g in out["bravo"]] == ["output_per_hour"]


def test_no_gateway_and_no_data_is_flagged_with_both_reasons():
    reasons = attention(_row(coverage=0.0, gateways=[]), [], [], 0.8, NOW)
    assert [r["code"] for r in reasons] == ["no_data", "no_gateway"]
    assert reasons[0]["text"] == "no data in the last 24 h"


def test_a_healthy_sme_that_improved_needs_no_attention():
    row = _row()
    assert attention(row, [gain(_kpi("output_per_hour", 100, 110, True), SCOPE)], [], 0.8, NOW) == []


def test_coverage_under_the_threshold_is_flagged_and_at_the_threshold_is_not():
    low = attention(_row(coverage=0.79), [], [], 0.8, NOW)
    assert [r["code"] for r in low] == ["low_coverage"]
    assert low[0]["text"] == "data coverage 79% in 24 h, under the 80% threshold"
    assert low[0]["params"] == {"coverage": 0.79, "threshold": 0.8}
    assert attention(_row(coverage=0.8), [], [], 0.8, NOW) == []
    assert attention(_row(coverage=0.5), [], [], 0.4, NOW) == []  # the floor is the setting's, not a constant
    assert ApiSettings().centre_coverage_floor == 0.8


def test_a_gateway_offline_or_never_seen_is_flagged_with_its_name():
    gws = [{"gateway": "gw-1", "machines": 2, "last_data_ms": NOW - 3 * 3_600_000, "online": False},
           {"gateway": "gw-2", "machines": 1, "last_data_ms": None, "online": False}]
    rows = portfolio_rows([_row(coverage=0.9, gateways=gws)], {"acme": "Acme"}, [], [], 0.8, NOW)
    reasons = rows[0]["attention"]
    assert [(r["code"], r["text"]) for r in reasons] == [
        ("gateway_offline", "gateway gw-1 offline, last seen 3 h ago"), ("gateway_never", "gateway gw-2 has never reported")]
    assert rows[0]["gateway_status"] == "offline" and [g["status"] for g in rows[0]["gateways"]] == ["offline", "never"]
    assert rows[0]["name_en"] == "Acme" and rows[0]["last_seen_ms"] == NOW - 3 * 3_600_000


def test_a_headline_kpi_significantly_worse_is_flagged_with_its_label_and_sign_but_noise_is_not():
    worse = gain(_kpi("material_input_s", 10.0, 12.0, higher_is_better=False), SCOPE)
    reasons = attention(_row(), [worse], [], 0.8, NOW)
    assert [r["text"] for r in reasons] == ["Material input time per part got worse: +20.0% (increased) on l1"]
    noise = gain(_kpi("material_input_s", 10.0, 12.0, higher_is_better=False, significant=False), SCOPE)
    assert attention(_row(), [noise], [], 0.8, NOW) == []
    # delivery is shown but never flags (a handful of orders moves it)
    late = gain(_kpi("lead_time_days", 3.0, 5.0, higher_is_better=False), SCOPE)
    assert attention(_row(), [late], [], 0.8, NOW) == []


def test_a_failed_report_is_a_reason_for_its_own_tenant_only():
    rows = portfolio_rows([_row("acme"), _row("bravo")], {}, [], ["bravo/l1: no machines with data"], 0.8, NOW)
    assert rows[0]["attention"] == []
    assert [r["text"] for r in rows[1]["attention"]] == ["before/after report failed: bravo/l1: no machines with data"]


def test_the_legend_carries_the_report_labels_units_and_direction():
    legend = {k["key"]: k for k in kpi_legend()}
    assert legend["material_input_s"]["higher_is_better"] is False and legend["material_input_s"]["unit"] == "s"
    assert legend["scrap_rate"]["label"]["ko"] == "공정불량률"
    assert legend["lead_time_days"]["flags_attention"] is False


def test_english_names_migrate_up_from_0003_come_from_the_seed_and_migrate_back(tmp_path):
    from alembic import command
    from sqlalchemy import create_engine, inspect, text

    from plantmodel.admin import PlantSeed, apply_seed
    from plantmodel.db import Tenant, alembic_config, open_plant

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0003")
    with create_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO centres (id, name) VALUES (1, 'c')"))
        conn.execute(text("INSERT INTO tenants (id, centre_id, slug, name, timezone) VALUES (1, 1, 'acme', '에이', 'UTC')"))
    plant = open_plant(url)  # to head
    with plant.session() as s:
        assert s.query(Tenant).one().name_en is None  # an existing tenant keeps its name and has no English one yet
    apply_seed(plant, PlantSeed.model_validate({"centre": "c", "tenants": [
        {"slug": "acme", "name": "에이크미", "name_en": "Acme", "sites": [
            {"slug": "s1", "name": "1공장", "name_en": "Plant 1", "lines": [{"slug": "l1", "name": "1라인", "name_en": "Line 1"}]}]}]}))
    with plant.session() as s:
        t = s.query(Tenant).one()
        assert (t.name, t.name_en, t.sites[0].name_en, t.sites[0].lines[0].name_en) == ("에이크미", "Acme", "Plant 1", "Line 1")
    command.downgrade(alembic_config(url, plant.engine), "0003")
    assert "name_en" not in {c["name"] for c in inspect(plant.engine).get_columns("tenants")}
    with plant.engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM tenants")).scalars().all() == ["에이크미"]
    plant.close()

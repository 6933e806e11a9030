"""``smartfactory report`` end to end on a config file and a real SQLite store."""

from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import CliRunner

from analytics.synthetic import LineSpec, generate
from cli.main import cli
from plant import MachineRef
from tsstore.sqlite import SqliteStore

M = MachineRef("acme", "plant-1", "line-a", "press-1")


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    store = SqliteStore(tmp / "store.db")
    columns, _ = generate([M], date(2026, 3, 2), 21, LineSpec(process_s=60.0), seed=4,
                          load_scale_after=(date(2026, 3, 9), 0.5))
    store.write_columns(M, columns[M])
    store.close()
    path = tmp / "sf.yaml"
    path.write_text(
        "store: {kind: sqlite, path: store.db}\n"
        "analytics:\n"
        "  default: {default_ideal_cycle_s: 70, holidays: null}\n"  # the synthetic line works on 2 March too
        "  rollouts:\n"
        "    - {tenant: acme, line: line-a, date: 2026-03-09, commissioning_days: 0, days: 7}\n"
    )
    return path


def test_before_after_from_the_configured_rollout_to_a_file(config):
    out = config.parent / "r.html"
    result = CliRunner().invoke(cli, ["report", "-c", str(config), "--tenant", "acme", "--lang", "en", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Material input time" in out.read_text() and (config.parent / "store.rollups.db").exists()


def test_json_to_stdout_and_plain_kpis_by_day(config):
    runner = CliRunner()
    r = runner.invoke(cli, ["report", "-c", str(config), "--tenant", "acme", "--format", "json", "--replicates", "300"])
    assert r.exit_code == 0
    body = json.loads(r.stdout)
    assert body["windows"]["rollout"] == "2026-03-09" and body["windows"]["days_each"] == 7
    r = runner.invoke(cli, ["report", "-c", str(config), "--tenant", "acme", "--from", "2026-03-02", "--to", "2026-03-04",
                            "--format", "csv"])
    assert r.exit_code == 0 and len(r.stdout.strip().splitlines()) == 4


def test_errors_are_one_line_with_a_non_zero_exit(config):
    runner = CliRunner()
    r = runner.invoke(cli, ["report", "-c", str(config), "--tenant", "nobody"])
    assert r.exit_code == 2 and "lines with data: acme/plant-1/line-a" in r.stderr
    r = runner.invoke(cli, ["report", "-c", str(config), "--tenant", "acme", "--format", "pdf"])
    assert r.exit_code == 2 and "--output" in r.stderr
    r = runner.invoke(cli, ["report", "-c", str(config), "--tenant", "acme", "--rollout", "2026-03-02"])
    assert r.exit_code == 2 and "baseline window 2026-02-23 – 2026-03-02 has no data" in r.stderr


def test_machine_filter(config):
    r = CliRunner().invoke(cli, ["report", "-c", str(config), "--tenant", "acme", "--machine", "press-1",
                                 "--from", "2026-03-03", "--to", "2026-03-03", "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["scope"]["machines"] == ["press-1"]
    r = CliRunner().invoke(cli, ["report", "-c", str(config), "--tenant", "acme", "--machine", "nope"])
    assert r.exit_code == 2 and "machine=nope" in r.stderr


def test_report_reads_orders_from_the_plant_model(config, tmp_path):
    """`plant orders` imports an ERP export; `report` then has the delivery KPIs (D) next to P, Q and C."""
    from datetime import timedelta

    cfg = config.parent / "with-plant.yaml"
    cfg.write_text(config.read_text() + "api: {database_url: 'sqlite:///plant.db'}\n")
    from plantmodel.admin import PlantSeed, apply_seed
    from plantmodel.db import open_plant

    db = open_plant(f"sqlite:///{config.parent / 'plant.db'}")
    apply_seed(db, PlantSeed.model_validate({"tenants": [{"slug": "acme", "sites": [{"slug": "plant-1", "lines": [
        {"slug": "line-a", "machines": [{"slug": "press-1"}]}]}]}]}))
    db.close()
    rows = ["order_id,quantity,ordered,due,completed"]
    for day in range(21):
        d = date(2026, 3, 2) + timedelta(days=day)
        rows += [f"A{day}-{k},5,{d - timedelta(days=3)},{d if k else d - timedelta(days=1)},{d}" for k in range(3)]
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text("\n".join(rows) + "\n")
    runner = CliRunner()
    r = runner.invoke(cli, ["plant", "orders", "-c", str(cfg), "--tenant", "acme", str(csv_file)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["report", "-c", str(cfg), "--tenant", "acme", "--format", "json", "--replicates", "300"])
    assert r.exit_code == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["pqcd"]["D"] == ["on_time_delivery", "lead_time_days"]
    otd = next(k for k in body["kpis"] if k["key"] == "on_time_delivery")
    assert otd["before"] == pytest.approx(2 / 3) and otd["n_before"] == 7

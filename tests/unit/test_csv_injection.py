"""CSV the API and the CLI write opens as values in a spreadsheet, never as formulas (issue #11, item 10).

OWASP CSV Injection: a text cell starting with = + - @ (or tab, CR, NUL) gets a leading
single quote; numbers, and text that is exactly a number, are kept as numbers.
"""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from analytics.render import daily_csv, to_csv
from api.app import create_app
from api.settings import ApiSettings
from csvcells import safe_cell
from plant import MachineRef
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import open_plant
from tsstore import Point
from tsstore.sqlite import SqliteStore

FORMULAS = ['=HYPERLINK("http://127.0.0.1:9/?"&A1,"details")', "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1+1",
            "\r=1+1", "=cmd|' /C calc'!A0", "-", "+", "\0=1"]
M = MachineRef("acme", "s1", "l1", "press-1")
T0 = 1_795_000_000_000


@pytest.mark.parametrize("text", FORMULAS)
def test_formula_like_text_is_quoted(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", [-12.5, -3, 0, 7.25, "-12.5", "+3", "-1e-3", ".5", "plain text", "a=b", "", None,
                                   "'=already quoted"])
def test_numbers_and_harmless_text_are_unchanged(value):
    assert safe_cell(value) == value


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_machine_export_quotes_formulas_from_tag_values_and_keeps_negative_numbers(tmp_path):
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({
        "tenants": [{"slug": "acme", "sites": [{"slug": "s1", "lines": [{"slug": "l1", "machines": [
            {"slug": "press-1"}]}]}]}],
        "users": [{"username": "owner-a", "password": "correct-horse-1", "role": "sme_owner", "tenant": "acme"}],
    }))
    store = SqliteStore(tmp_path / "store.db")
    store.write([Point(M, T0 + i * 1000, {"note": v}) for i, v in enumerate(FORMULAS)])
    store.write([Point(M, T0 + i * 1000, {"temp": v}) for i, v in enumerate([-12.5, -0.25, 3.0])])
    c = TestClient(create_app(store, ApiSettings(), plant, run_alarms=False))
    assert c.post("/api/v1/auth/login", json={"username": "owner-a", "password": "correct-horse-1"}).status_code == 200
    window = {"start": "2026-11-18T00:00:00Z", "end": "2026-11-20T00:00:00Z", "every": "raw"}

    notes = c.get("/api/v1/machines/acme/s1/l1/press-1/export.csv", params={**window, "tag": "note"})
    assert notes.status_code == 200, notes.text
    cells = [r[-1] for r in _rows(notes.text)[1:]]
    assert sorted(cells) == sorted("'" + f for f in FORMULAS)

    temps = c.get("/api/v1/machines/acme/s1/l1/press-1/export.csv", params={**window, "tag": "temp"})
    assert [r[-1] for r in _rows(temps.text)[1:]] == ["-12.5", "-0.25", "3.0"]


def test_report_csvs_quote_formula_text_and_keep_negative_figures():
    period = {"kind": "period", "kpis": {"oee": 0.5, "change": -0.25},
              "rows": [{"date": "2026-03-02", "shift": "=HYPERLINK(\"x\")", "kpis": {"oee": 0.5, "change": -0.25}}]}
    rows = _rows(to_csv(period))
    assert rows[1] == ["2026-03-02", "'=HYPERLINK(\"x\")", "0.5", "-0.25"]
    daily = {"daily": [{"date": "2026-03-02", "phase": "@before", "kpis": {"oee": -1.5}}]}
    assert _rows(daily_csv(daily))[1] == ["2026-03-02", "'@before", "-1.5"]


def test_xlsx_sheets_keep_formula_like_text_as_text_and_numbers_as_numbers():
    from openpyxl import Workbook, load_workbook

    from analytics.xlsx import _sheet

    texts = [f for f in FORMULAS if "\0" not in f]  # openpyxl refuses control characters itself
    wb = Workbook()
    _sheet(wb, "days", ["shift", "change"], [[f, -1.5] for f in texts], first=True)
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    rows = list(load_workbook(buf).active.iter_rows(min_row=2))
    assert [(a.data_type, b.data_type) for a, b in rows] == [("s", "n")] * len(texts)
    assert rows[0][0].value == texts[0] and rows[0][1].value == -1.5

"""The report as an Excel workbook (openpyxl): centre paperwork lives in spreadsheets.

Sheets: a summary (scope, windows, findings, targets, PQCD), every KPI with numbers as numbers
(so a centre can sort and sum them), the days, the machines, the Pareto and the classification.
The texts come from the same helpers as the PDF and HTML, so every format says the same thing.
"""

from __future__ import annotations
from typing import Any

import io
import re

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from analytics import render as r
from analytics.labels import change_words, label

HEAD_FILL = PatternFill("solid", fgColor="F3F4F6")


def _sheet(wb: Workbook, title: str, head: list[str], rows: list[list[Any]], first: bool = False) -> Worksheet:
    ws = wb.active if first else wb.create_sheet()
    ws.title = re.sub(r"[\[\]:*?/\\]", " ", title)[:31].strip()
    ws.append(head)
    for cell in ws[1]:
        cell.font, cell.fill = Font(bold=True), HEAD_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for row in rows:
        ws.append(row)
        for cell in ws[ws.max_row]:
            if cell.data_type == "f":  # openpyxl makes any text starting with '=' a formula: keep it text
                cell.data_type = "s"
    for i, _ in enumerate(head, start=1):
        width = max([len(str(c.value)) if c.value is not None else 0 for c in ws[get_column_letter(i)]] + [6])
        ws.column_dimensions[get_column_letter(i)].width = min(60, width * (1.8 if _wide(ws, i) else 1.1) + 2)
    ws.freeze_panes = "A2"
    return ws


def _wide(ws: Worksheet, col: int) -> bool:
    """Hangul takes about two character widths in Excel's column units."""
    return any(isinstance(c.value, str) and any("가" <= ch <= "힣" for ch in c.value) for c in ws[get_column_letter(col)])


def _pct(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def to_xlsx(report: dict[str, Any], lang: str = "ko") -> bytes:
    def L(k: str) -> str:
        return label(k, lang)

    wb = Workbook()
    n = r.names(report, lang)
    if report.get("kind") == "period":
        keys = list(report["kpis"])
        _sheet(wb, L("title_period"), [L("date"), L("shift")] + [f"{r.kpi_name(k, lang)} ({r.unit_text(k, lang)})" for k in keys],
               [[x["date"], x.get("shift", "")] + [r._display(k, x["kpis"][k]) for k in keys] for x in report["rows"]],
               first=True)
        return _save(wb)
    w = report["windows"]
    summary = [
        [L("tenant"), n["tenant"]], [L("line"), n["line"]], [L("machines"), ", ".join(n["machines"])],
        [L("rollout"), w["rollout"]], [L("baseline"), r.day_span(w["baseline"])], [L("post"), r.day_span(w["post"])],
        [L("commissioning"), f"{w['commissioning_days_excluded']} {L('days')}"],
        [L("coverage_line"), f"{L('before')} {r.pct((report['coverage']['before'] or 0) * 100, False)}, "
                             f"{L('after')} {r.pct((report['coverage']['after'] or 0) * 100, False)}"],
        [L("data_as_of"), r.when(report.get("data_as_of"), report)], [L("generated"), r.when(report["generated_at"], report)],
        [], [L("findings")], *[[s] for s in (r.sentence(c, lang) for c in report["kpis"] if c["headline"])],
        [L("ci_note")], [],
        *[[f"! {x}"] for x in report["warnings"]],
    ]
    ws = _sheet(wb, L("pqcd_summary"), [L("title_before_after"), ""], summary, first=True)
    ws.column_dimensions["A"].width = 30
    ws.column_dimensions["B"].width = 70
    if report.get("targets") is not None:
        head, rows = r.target_rows(report, lang)
        _sheet(wb, L("targets"), head, rows)
    head, rows = r.pqcd_rows(report, lang)
    _sheet(wb, "PQCD", head, rows)
    same = r.same_ratio(report)
    kpi_rows = []
    for c in report["kpis"]:
        lo, hi = c["ci95_improvement_pct"] or (None, None)
        kpi_rows.append([L(c["key"]), r.unit_text(c["key"], lang), r._display(c["key"], c["before"]),
                         r._display(c["key"], c["after"]), change_words(c["change_pct"], lang), _pct(c["change_pct"]),
                         _pct(c["improvement_pct"]), _pct(c["pp_change"]), _pct(lo), _pct(hi), c["p_value"],
                         L("yes") if c["significant"] else L("no"), c["n_before"], c["n_after"], c["pqcd"],
                         r.same_ratio_note(c["key"], same[c["key"]], lang) if c["key"] in same else ""])
    _sheet(wb, L("kpi"), [L("kpi"), L("unit"), L("before"), L("after"), L("change"), f"{L('change')} %",
                          f"{L('improvement')} %", L("pp"), f"{L('ci95')} low %", f"{L('ci95')} high %", L("p_value"),
                          L("significant"), f"n {L('before')}", f"n {L('after')}", "PQCD", ""], kpi_rows)
    keys = list(report["daily"][0]["kpis"]) if report.get("daily") else []
    _sheet(wb, L("daily_trend"), [L("date"), L("phase")] + [f"{r.kpi_name(k, lang)} ({r.unit_text(k, lang)})" for k in keys],
           [[d["date"], L(d["phase"])] + [r._display(k, d["kpis"][k]) for k in keys] for d in report.get("daily", [])])
    head, rows = r.machine_rows(report, lang)
    _sheet(wb, L("machine_table"), head, rows)
    _sheet(wb, L("pareto")[:31], [L("phase"), L("reason"), L("kind"), L("hours"), L("share"), L("cumulative")],
           [[L(p), L(x["reason"]), L(x["kind"]), round(x["hours"], 2), round(x["share"], 4), round(x["cumulative_share"], 4)]
            for p in ("before", "after") for x in report["pareto"][p]]
           + [[]] + [[L(p), r.no_data_note(report["time"][p], lang)] for p in ("before", "after")])
    head, rows = r.policy_rows(report, lang)
    _sheet(wb, L("classification")[:31], head, rows + [[]] + [[x] for x in r.policy_lines(report, lang)]
           + [[f"{L('method')}: {L('method_text')}"]])
    return _save(wb)


def _save(wb: Workbook) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()

"""The report as a centre files it: the PDF's pages rendered to images and read back, the HTML and the XLSX.

The PDF is rendered with poppler's pdftoppm/pdftotext (Debian poppler-utils; ./sf installs it),
so what is checked is what a reader sees: page count, every chart on its page, no text wider
than its cell, dates with their inclusive last day, changes said in words.
"""

from __future__ import annotations

import copy
from datetime import timedelta
import io
import os
import shutil
import subprocess

import numpy as np
import pytest

from analytics import charts
from analytics.labels import change_words
from analytics.render import build_pdf, day_span, pdf_table, render, sentence
from tests.unit.test_analytics_report import cache, line, report  # noqa: F401 (fixtures: the synthetic line's report)

NAMES = {"tenant": "한일오토파츠", "sites": {"plant-1": "창원 1공장"}, "lines": {"line-a": "프레스 1라인"},
         "machines": {"press-1": "프레스 1호기", "press-2": "프레스 2호기"}}


def _poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {tool} is missing: apt-get install poppler-utils (./sf installs it)")
        pytest.skip(f"{tool} missing: apt-get install poppler-utils")
    return path


@pytest.fixture(scope="module")
def named(report):  # noqa: F811
    r = copy.deepcopy(report)
    r["names"] = NAMES
    return r


def _text(pdf: bytes, tmp_path) -> str:
    src = tmp_path / "r.pdf"
    src.write_bytes(pdf)
    return subprocess.run([_poppler("pdftotext"), "-layout", str(src), "-"], check=True, capture_output=True,
                          text=True).stdout


def _pages(pdf: bytes, tmp_path) -> list[np.ndarray]:
    from PIL import Image

    src = tmp_path / "p.pdf"
    src.write_bytes(pdf)
    subprocess.run([_poppler("pdftoppm"), "-r", "75", "-png", str(src), str(tmp_path / "page")], check=True)
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(tmp_path.glob("page-*.png"))]


def _has_colour(img: np.ndarray, hex_colour: str, tol: int = 60) -> bool:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(img.astype(int) - rgb).sum(axis=2) < tol).sum()) > 8


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_no_text_is_wider_than_its_cell(named, lang):
    """The English PDF had "Production efficiency (good parts per planne103.0" and "Change (p"."""
    doc = build_pdf(named, lang)
    assert doc.overflows == []


def test_the_overflow_check_catches_a_word_wider_than_its_column():
    from analytics.render import _new_pdf

    doc = _new_pdf("en")
    doc.add_page()
    pdf_table(doc, ["a", "b"], [["x" * 300, "y"]], wrap_cols={0}, usable=40.0)
    assert doc.overflows and "cell" in doc.overflows[0]


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_pdf_pages_have_their_charts(named, lang, tmp_path):
    doc = build_pdf(named, lang)
    pdf = bytes(doc.output())
    pages = _pages(pdf, tmp_path)
    assert len(pages) == doc.page_no() == 8
    kinds = {k for _, k in doc.charts}
    assert kinds == {f"{c}:{k}" for c in ("control", "distribution")
                     for k in ("output_per_hour", "material_input_s", "scrap_rate", "oee")} | {"pareto"}
    for page, kind in doc.charts:
        img = pages[page - 1]
        assert _has_colour(img, charts.AFTER) and _has_colour(img, charts.BEFORE), (page, kind)
        if kind.startswith("control:"):
            assert _has_colour(img, charts.ROLLOUT) and _has_colour(img, charts.COMMISSION), (page, kind)


def test_korean_pdf_reads_as_korean(named, tmp_path):
    text = _text(render(named, "pdf", "ko"), tmp_path)
    w = named["windows"]
    assert "한일오토파츠" in text and "프레스 1라인" in text and "프레스 1호기" in text
    assert day_span(w["baseline"]) in text.replace("–", "–")
    assert f"– {w['baseline'][1]}" not in text  # the exclusive end is never printed as the last day
    mi = next(c for c in named["kpis"] if c["key"] == "material_input_s")
    assert change_words(mi["change_pct"], "ko") in text and "감소" in text
    assert sentence(mi, "ko").split(" (")[0] in text.replace("\n", " ")
    assert "자재 투입시간이" in text and "줄었습니다" in text
    for raw in ("planned_stop", "changeover", "no_data", "not_scheduled", " code "):
        assert raw not in text, raw
    assert "부록" in text and "순환 블록" not in text.split("부록")[0]  # the method is in the appendix
    assert "데이터 기준" in text and "(Asia/Seoul)" in text


def test_english_pdf_says_changes_in_words_with_a_legend(named, tmp_path):
    text = _text(render(named, "pdf", "en"), tmp_path)
    assert "reduced -" in text and "increased +" in text and "Change: whether" in text
    assert "Material input time per part reduced by" in text.replace("\n", " ")
    assert "Appendix" in text and "Data as of" in text


def test_unmeasured_kpis_say_so_in_every_format(named, tmp_path):
    r = copy.deepcopy(named)
    mttr = next(c for c in r["kpis"] if c["key"] == "mttr_min")
    mttr.update(before=None, after=None, change_pct=None, improvement_pct=None, ci95_change_pct=None,
                ci95_improvement_pct=None, p_value=None, significant=False, n_before=0, n_after=0)
    assert "미측정" in _text(render(r, "pdf", "ko"), tmp_path)
    html_en = render(r, "html", "en").decode()
    assert "not measured" in html_en and "– 0/0" not in html_en


def test_the_same_ratio_under_three_names_is_explained(named):
    html_en = render(named, "html", "en").decode()
    k = {c["key"]: c for c in named["kpis"]}
    # one product, one ideal cycle: OEE and standard-time output are the same ratio (good x ideal / planned time)
    assert k["oee"]["change_pct"] == pytest.approx(k["standard_output"]["change_pct"])
    assert "Standard-time output (product-mix controlled)<br><small>same ratio as OEE" in html_en


def test_html_has_every_chart_with_units_and_legends(named):
    html_ko = render(named, "html", "ko").decode()
    assert html_ko.count("<svg") == 9  # 4 control charts, 4 distributions, the Pareto
    assert "자재 투입시간 (초)" in html_ko and "관리한계" in html_ko and "시운전 기간" in html_ko
    assert "0.781" not in html_ko


def test_xlsx_carries_the_numbers_and_the_words(named):
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(render(named, "xlsx", "ko")))
    assert {"PQCD", "지표", "일별 추이", "설비별 결과"} <= set(wb.sheetnames)
    ws = wb["지표"]
    rows = {r[0]: r for r in ws.iter_rows(min_row=2, values_only=True)}
    mi = next(c for c in named["kpis"] if c["key"] == "material_input_s")
    row = rows["자재 투입시간 (개당)"]
    assert row[2] == pytest.approx(mi["before"]) and row[3] == pytest.approx(mi["after"])
    assert row[4] == change_words(mi["change_pct"], "ko")
    summary = [c for r in wb["PQCD 요약"].iter_rows(values_only=True) for c in r if c]
    assert "한일오토파츠" in summary and day_span(named["windows"]["post"]) in summary
    assert render(named, "xlsx", "en")[:2] == b"PK"


def test_round_ticks():
    assert charts.nice_ticks(0.781, 4.6) == [0, 1, 2, 3, 4, 5]
    ticks = charts.nice_ticks(0.6, 0.72)
    assert [charts.tick_text(t, ticks) for t in ticks] == ["0.55", "0.60", "0.65", "0.70", "0.75"]


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_period_pdf_fits_its_cells(line, lang):  # noqa: F811
    from analytics.report import period_report
    from tests.unit.test_analytics_report import FIRST, MACHINES, POLICY

    store, _, _ = line
    r = period_report(store, MACHINES, POLICY, FIRST, FIRST + timedelta(days=6))
    r["names"] = NAMES
    doc = build_pdf(r, lang)
    assert doc.overflows == [] and doc.page_no() >= 2


def test_an_english_pdf_naming_a_korean_company_embeds_hangul(named, tmp_path):
    assert "한일오토파츠" in _text(render(named, "pdf", "en"), tmp_path)


def test_no_data_is_beside_the_pareto_not_a_bar_of_it(named, tmp_path):
    """No data is no reason for a stop: a note under each phase's Pareto, in the HTML, the PDF and the XLSX."""
    assert all(r["reason"] != "no_data" for p in ("before", "after") for r in named["pareto"][p])
    hours = named["time"]["after"]["no_data_h"]
    html_ko = render(named, "html", "ko").decode()
    assert f"데이터 없음 {hours:.1f}시간 (정지 사유가 아니어서 파레토에서 제외)" in html_ko
    assert "사유별 정지 시간" in html_ko and "데이터 없음 (시간)" not in html_ko
    assert f"No data {hours:.1f} h (not a stop reason: left out of the Pareto)" in render(named, "html", "en").decode()
    assert "정지 사유가 아니어서 파레토에서 제외" in _text(render(named, "pdf", "ko"), tmp_path)


@pytest.mark.parametrize("lang, text", [("ko", "성능가동률이 100%를 넘습니다: 기준 사이클 타임을 확인하세요"),
                                        ("en", "Performance over 100%: check the ideal cycle time")])
def test_a_period_with_performance_over_100_shows_it_flagged(line, lang, text, tmp_path):  # noqa: F811
    """The real figure is kept (not capped at 100%), marked, and the reader told what to check."""
    from analytics.report import period_report
    from tests.unit.test_analytics_report import FIRST, MACHINES, POLICY

    store, _, _ = line
    r = period_report(store, MACHINES, POLICY, FIRST, FIRST + timedelta(days=1))
    r["names"] = NAMES
    assert text not in render(r, "html", lang).decode()  # a plausible ideal cycle: no flag
    r["kpis"]["performance"] = 2.2
    page = render(r, "html", lang).decode()
    assert text in page and "220.00% ⚠" in page
    assert text in _text(render(r, "pdf", lang), tmp_path)


def test_an_english_report_names_machines_by_their_english_names(named):
    from analytics.render import names

    r = copy.deepcopy(named)
    r["names"]["en"] = {"tenant": "Hanil Autoparts", "lines": {"line-a": "Press Line 1"},
                        "machines": {"press-1": "Press 1"}}
    en, ko = names(r, "en"), names(r, "ko")
    assert en["machine"]("press-1") == "Press 1" and en["machine"]("press-2") == "프레스 2호기"  # no English: the name
    assert ko["machine"]("press-1") == "프레스 1호기" and en["line"] == "Press Line 1"
    assert "Press 1" in render(r, "html", "en").decode() and "Press 1" not in render(r, "html", "ko").decode()

"""Report renderers: HTML with inline SVG charts (no CDN, no JavaScript), CSV and PDF.

They only reformat the JSON report (analytics.report), so every output carries the same
numbers, including the stop classification and the method.
"""

from __future__ import annotations

import csv
import html
import io

from pathlib import Path

import numpy as np

from analytics.delivery import DELIVERY_BY_KEY
from analytics.kpi import KPI_BY_KEY
from analytics.labels import label

SPECS = {**KPI_BY_KEY, **DELIVERY_BY_KEY}

HEADLINE_CHARTS = ("output_per_hour", "material_input_s", "scrap_rate", "oee")
BEFORE_COLOUR, AFTER_COLOUR, COMMISSION_COLOUR = "#6b7280", "#2563eb", "#f59e0b"


def fmt(key: str, v: float | None) -> str:
    """A KPI value in its display unit: ratios as percent."""
    if v is None:
        return "–"
    spec = SPECS.get(key)
    if spec is not None and spec.unit == "%":
        return f"{v * 100:.2f}%"
    return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.1f}"


def unit(key: str) -> str:
    spec = SPECS.get(key)
    return "" if spec is None or spec.unit == "%" else spec.unit


def pct(v: float | None, signed: bool = True) -> str:
    return "–" if v is None else (f"{v:+.1f}%" if signed else f"{v:.1f}%")


def ci(pair) -> str:
    return "–" if not pair else f"[{pair[0]:+.1f}%, {pair[1]:+.1f}%]"


def pp(v: float | None) -> str:
    return "–" if v is None else f"{v:+.2f}"


def pval(p: float | None) -> str:
    return "–" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _display(key: str, v: float | None) -> float | None:
    if v is None:
        return None
    return v * 100 if SPECS[key].unit == "%" else v


# -- SVG -------------------------------------------------------------------------------------
class _Frame:
    """Maps data to an SVG plot area with axes and a title."""

    def __init__(self, w: int, h: int, ylo: float, yhi: float, n: int, title: str) -> None:
        self.w, self.h, self.n = w, h, max(n, 1)
        pad = (yhi - ylo) * 0.08 or abs(yhi) * 0.1 or 1.0
        self.ylo, self.yhi = ylo - pad, yhi + pad
        self.left, self.right, self.top, self.bottom = 52, 10, 24, 26
        self.parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
                      f'role="img" font-family="sans-serif" font-size="11">',
                      f'<title>{html.escape(title)}</title>',
                      f'<text x="{self.left}" y="14" font-weight="bold">{html.escape(title)}</text>']
        for k in range(5):
            yv = self.ylo + (self.yhi - self.ylo) * k / 4
            y = self.y(yv)
            self.parts.append(f'<line x1="{self.left}" x2="{w - self.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
            self.parts.append(f'<text x="{self.left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#374151">{yv:.3g}</text>')

    def x(self, i: float) -> float:
        return self.left + (self.w - self.left - self.right) * (i + 0.5) / self.n

    def y(self, v: float) -> float:
        return self.top + (self.h - self.top - self.bottom) * (1 - (v - self.ylo) / (self.yhi - self.ylo))

    def add(self, s: str) -> None:
        self.parts.append(s)

    def svg(self) -> str:
        return "".join(self.parts) + "</svg>"


def svg_trend(report: dict, key: str, lang: str) -> str:
    """Daily values with the rollout marked, commissioning shaded and XmR limits per phase."""
    rows = report["daily"]
    vals = [_display(key, r["kpis"].get(key)) for r in rows]
    known = [v for v in vals if v is not None]
    if not known:
        return ""
    limits = report["control_charts"].get(key, {})
    bounds = known + [(_display(key, lim[k])) for lim in limits.values() if lim for k in ("ucl", "lcl")]
    f = _Frame(720, 240, min(bounds), max(bounds), len(rows), f"{label(key, lang)} — {label('control_chart', lang)}")
    rollout = report["windows"]["rollout"]
    for i, r in enumerate(rows):
        if r["phase"] == "commissioning":
            x0 = f.x(i - 0.5)
            f.add(f'<rect x="{x0:.1f}" y="{f.top}" width="{f.x(1) - f.x(0):.1f}" height="{f.h - f.top - f.bottom}" '
                  f'fill="{COMMISSION_COLOUR}" opacity="0.15"/>')
    ri = next((i for i, r in enumerate(rows) if r["date"] >= rollout), None)
    if ri is not None:
        xr = f.x(ri - 0.5)
        f.add(f'<line x1="{xr:.1f}" x2="{xr:.1f}" y1="{f.top}" y2="{f.h - f.bottom}" stroke="#dc2626" stroke-width="2"/>')
        f.add(f'<text x="{xr + 3:.1f}" y="{f.top + 10}" fill="#dc2626">{label("rollout", lang)} {rollout}</text>')
    for phase, colour in (("before", BEFORE_COLOUR), ("after", AFTER_COLOUR)):
        idx = [i for i, r in enumerate(rows) if r["phase"] == phase]
        lim = limits.get(phase)
        if idx and lim:
            xa, xb = f.x(idx[0] - 0.5), f.x(idx[-1] + 0.5)
            for k, dash in (("mean", ""), ("ucl", ' stroke-dasharray="4 3"'), ("lcl", ' stroke-dasharray="4 3"')):
                y = f.y(_display(key, lim[k]))
                f.add(f'<line x1="{xa:.1f}" x2="{xb:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}"{dash}/>')
    pts = [(f.x(i), f.y(v), rows[i]["phase"]) for i, v in enumerate(vals) if v is not None]
    f.add('<polyline fill="none" stroke="#9ca3af" points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in pts) + '"/>')
    colour = {"before": BEFORE_COLOUR, "after": AFTER_COLOUR, "commissioning": COMMISSION_COLOUR}
    for x, y, ph in pts:
        f.add(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour[ph]}"/>')
    for i, anchor in ((0, "start"), (len(rows) // 2, "middle"), (len(rows) - 1, "end")):
        f.add(f'<text x="{f.x(i):.1f}" y="{f.h - 8}" text-anchor="{anchor}" fill="#374151">{rows[i]["date"]}</text>')
    return f.svg()


def svg_distribution(report: dict, key: str, lang: str) -> str:
    """Box plots of the daily values before and after, with every day as a dot."""
    groups = {}
    for phase in ("before", "after"):
        v = [_display(key, r["kpis"].get(key)) for r in report["daily"] if r["phase"] == phase]
        groups[phase] = np.array([x for x in v if x is not None])
    allv = np.concatenate(list(groups.values()))
    if not len(allv):
        return ""
    f = _Frame(440, 240, float(allv.min()), float(allv.max()), 2, f"{label(key, lang)} — {label('distribution', lang)}")
    for i, (phase, colour) in enumerate((("before", BEFORE_COLOUR), ("after", AFTER_COLOUR))):
        v = groups[phase]
        cx = f.x(i)
        if len(v):
            q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])
            f.add(f'<rect x="{cx - 30:.1f}" y="{f.y(q3):.1f}" width="60" height="{max(f.y(q1) - f.y(q3), 1):.1f}" '
                  f'fill="{colour}" fill-opacity="0.2" stroke="{colour}"/>')
            f.add(f'<line x1="{cx - 30:.1f}" x2="{cx + 30:.1f}" y1="{f.y(med):.1f}" y2="{f.y(med):.1f}" stroke="{colour}" stroke-width="2"/>')
            f.add(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{f.y(v.max()):.1f}" y2="{f.y(v.min()):.1f}" stroke="{colour}"/>')
            for j, x in enumerate(v):
                jitter = ((j * 37) % 41 - 20) * 0.9
                f.add(f'<circle cx="{cx + jitter:.1f}" cy="{f.y(x):.1f}" r="2" fill="{colour}" fill-opacity="0.6"/>')
        f.add(f'<text x="{cx:.1f}" y="{f.h - 8}" text-anchor="middle">{label(phase, lang)} (n={len(v)})</text>')
    return f.svg()


# -- HTML ------------------------------------------------------------------------------------
_CSS = """body{font-family:system-ui,"Noto Sans KR","Malgun Gothic",sans-serif;margin:24px;color:#111827;max-width:1100px}
table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}th,td{border:1px solid #d1d5db;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f4f6}.sig{font-weight:bold;color:#15803d}
.worse{font-weight:bold;color:#b91c1c}.warn{background:#fef3c7;padding:8px;border-left:4px solid #f59e0b}
.charts{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}h2{margin-top:28px}small{color:#4b5563}"""


def to_html(report: dict, lang: str = "ko") -> str:
    if report.get("kind") == "period":
        return _period_html(report, lang)
    L = lambda k: html.escape(label(k, lang))  # noqa: E731
    s, w = report["scope"], report["windows"]
    out = [f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{L("title_before_after")}</title>',
           f"<style>{_CSS}</style></head><body>",
           f"<h1>{L('title_before_after')}</h1>",
           f"<p>{L('tenant')}: <b>{html.escape(s['tenant'])}</b> · {L('line')}: <b>{html.escape(s['line'])}</b> · "
           f"{L('machines')}: {html.escape(', '.join(s['machines']))}<br>"
           f"{L('rollout')}: <b>{w['rollout']}</b> · {L('baseline')}: {w['baseline'][0]} – {w['baseline'][1]} · "
           f"{L('post')}: {w['post'][0]} – {w['post'][1]} ({w['days_each']} {L('days')}) · "
           f"{L('commissioning')}: {w['commissioning_days_excluded']} {L('days')}<br>"
           f"{L('coverage_line')}: {L('before')} {pct((report['coverage']['before'] or 0) * 100, False)}, "
           f"{L('after')} {pct((report['coverage']['after'] or 0) * 100, False)} · "
           f"<small>{L('generated')} {report['generated_at']}</small></p>"]
    if report["warnings"]:
        out.append(f'<div class="warn"><b>{L("warnings")}</b><ul>' +
                   "".join(f"<li>{html.escape(x)}</li>" for x in report["warnings"]) + "</ul></div>")
    out.append(f"<h2>{L('pqcd_summary')}</h2>")
    out.append(_kpi_table(report, lang, [k for k in report["kpis"] if k["headline"]]))
    out.append("<table><tr>" + "".join(f"<th>{L(g)}</th>" for g in ("P", "Q", "C", "D")) + "</tr><tr>")
    cs = {k["key"]: k for k in report["kpis"]}
    for g in ("P", "Q", "C", "D"):
        cell = "<br>".join(f"{L(k)}: {pct(cs[k]['improvement_pct'])}" for k in report["pqcd"][g]) or L("D_note")
        out.append(f'<td style="text-align:left">{cell}</td>')
    out.append("</tr></table>")
    if report.get("delivery"):
        out.append(f"<p>{html.escape(_delivery_line(report['delivery'], lang))}</p>")
    out.append(f"<h2>{L('kpi')}</h2>")
    out.append(_kpi_table(report, lang, report["kpis"]))
    for key in HEADLINE_CHARTS:
        out.append(f"<h2>{L(key)}</h2><div class='charts'>{svg_distribution(report, key, lang)}"
                   f"{svg_trend(report, key, lang)}</div>")
    out.append(f"<h2>{L('pareto')}</h2><div class='charts'>")
    for phase in ("before", "after"):
        out.append(f"<div><b>{L(phase)}</b>" + _pareto_table(report["pareto"][phase], lang) + "</div>")
    out.append("</div>")
    out.append(f"<h2>{L('machine_table')}</h2><table><tr><th>{L('machines')}</th>")
    heads = ("output_per_hour", "material_input_s", "scrap_rate", "oee")
    out.append("".join(f"<th>{L(k)}<br>{L('before')} → {L('after')} ({L('improvement')})</th>" for k in heads)
               + f"<th>{L('coverage')}<br>{L('before')} → {L('after')}</th></tr>")
    for m in report["machines"]:
        out.append(f"<tr><td>{html.escape(m['machine'])}</td>")
        for k in heads:
            c = m["kpis"][k]
            cls = ' class="sig"' if c["significant"] and (c["improvement_pct"] or 0) > 0 else ""
            out.append(f"<td{cls}>{fmt(k, c['before'])} → {fmt(k, c['after'])} ({pct(c['improvement_pct'])})</td>")
        cov = m.get("coverage") or {}
        out.append(f"<td>{fmt('coverage', cov.get('before'))} → {fmt('coverage', cov.get('after'))}</td>")
        out.append("</tr>")
    out.append("</table>")
    out.append(_policy_html(report, lang))
    out.append(f"<h2>{L('method')}</h2><p>{L('method_text')}</p>")
    out.append(f"<p>{L('corrections')}: {len(report['corrections'])}</p></body></html>")
    return "".join(out)


def _kpi_table(report: dict, lang: str, rows: list[dict]) -> str:
    L = lambda k: html.escape(label(k, lang))  # noqa: E731
    head = ("kpi", "before", "after", "change", "improvement", "pp", "ci95", "p_value", "significant", "n_days")
    out = ["<table><tr>" + "".join(f"<th>{L(h)}</th>" for h in head) + "</tr>"]
    for c in rows:
        good = c["significant"] and (c["improvement_pct"] or 0) > 0
        bad = c["significant"] and (c["improvement_pct"] or 0) < 0
        cls = ' class="sig"' if good else (' class="worse"' if bad else "")
        u = unit(c["key"])
        out.append(
            f"<tr><td>{L(c['key'])}{' (' + html.escape(u) + ')' if u else ''}</td><td>{fmt(c['key'], c['before'])}</td>"
            f"<td>{fmt(c['key'], c['after'])}</td><td>{pct(c['change_pct'])}</td><td{cls}>{pct(c['improvement_pct'])}</td>"
            f"<td>{pp(c['pp_change'])}</td><td>{ci(c['ci95_improvement_pct'])}</td>"
            f"<td>{pval(c['p_value'])}</td><td>{L('yes') if c['significant'] else L('no')}</td>"
            f"<td>{c['n_before']}/{c['n_after']}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def _pareto_table(rows: list[dict], lang: str) -> str:
    L = lambda k: html.escape(label(k, lang))  # noqa: E731
    out = [f"<table><tr><th>{L('reason')}</th><th>{L('kind')}</th><th>{L('hours')}</th><th>{L('share')}</th>"
           f"<th>{L('cumulative')}</th></tr>"]
    for r in rows:
        out.append(f"<tr><td>{html.escape(r['reason'])}</td><td>{L(r['kind'])}</td><td>{r['hours']:.1f}</td>"
                   f"<td>{r['share']:.0%}</td><td>{r['cumulative_share']:.0%}</td></tr>")
    return "".join(out) + "</table>"


def _policy_html(report: dict, lang: str) -> str:
    L = lambda k: html.escape(label(k, lang))  # noqa: E731
    p = report["policy"]
    out = [f"<h2>{L('classification')}</h2><table><tr><th>{L('state')}</th><th>code</th><th>{L('kind')}</th></tr>"]
    for st in p["states"]:
        fail = f" ({L('failure')})" if st["failure"] else ""
        out.append(f"<tr><td>{html.escape(st['name'])}</td><td>{st['code']}</td><td>{L(st['kind'])}{fail}</td></tr>")
    shifts = ", ".join(f"{sh['name']} {sh['start']}-{sh['end']}" for sh in p["shifts"])
    out.append("</table><p><small>" + html.escape(
        f"shifts: {shifts}; timezone {p['timezone']}; stale after {p['stale_s']} s; "
        f"ideal cycle default {p['default_ideal_cycle_s']} s {p['ideal_cycle_s'] or ''}"
        f"{'; per product ' + str(p.get('ideal_cycle_by_product')) if p.get('ideal_cycle_by_product') else ''}")
        + "</small></p>")
    return "".join(out)


def _period_html(report: dict, lang: str) -> str:
    L = lambda k: html.escape(label(k, lang))  # noqa: E731
    s, per = report["scope"], report["period"]
    keys = [k for k in report["kpis"]]
    out = [f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{L("title_period")}</title>',
           f"<style>{_CSS}</style></head><body><h1>{L('title_period')}</h1>",
           f"<p>{L('tenant')}: <b>{html.escape(s['tenant'])}</b> · {L('line')}: <b>{html.escape(s['line'])}</b> · "
           f"{L('period')}: {per['first']} – {per['last']}</p>"
           + ("<div class='warn'><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in report.get("warnings", []))
              + "</ul></div>" if report.get("warnings") else "")
           + f"<table><tr><th>{L('date')}</th>"
           + ("<th>" + L("shift") + "</th>" if per["by"] == "shift" else "")
           + "".join(f"<th>{L(k)}</th>" for k in keys) + "</tr>"]
    for r in report["rows"]:
        out.append(f"<tr><td>{r['date']}</td>" + (f"<td>{html.escape(r['shift'])}</td>" if "shift" in r else "")
                   + "".join(f"<td>{fmt(k, r['kpis'][k])}</td>" for k in keys) + "</tr>")
    out.append("<tr><th>Σ</th>" + ("<th></th>" if per["by"] == "shift" else "")
               + "".join(f"<th>{fmt(k, report['kpis'][k])}</th>" for k in keys) + "</tr></table>")
    out.append(f"<h2>{L('pareto')}</h2>" + _pareto_table(report["pareto"], lang))
    out.append(_policy_html(report, lang) + "</body></html>")
    return "".join(out)


# -- CSV -------------------------------------------------------------------------------------
def to_csv(report: dict, lang: str = "en") -> str:
    """One row per KPI (before/after report) or per day/shift (period report)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if report.get("kind") == "period":
        keys = list(report["kpis"])
        w.writerow(["date", "shift", *keys])
        for r in report["rows"]:
            w.writerow([r["date"], r.get("shift", ""), *(_num(r["kpis"][k]) for k in keys)])
        return buf.getvalue()
    w.writerow(["kpi", "label", "unit", "before", "after", "abs_change", "change_pct", "improvement_pct", "pp_change",
                "ci95_low_pct", "ci95_high_pct", "p_value", "significant", "n_before", "n_after", "pqcd"])
    for c in report["kpis"]:
        lo, hi = c["ci95_improvement_pct"] or (None, None)
        w.writerow([c["key"], label(c["key"], lang), c["unit"], _num(c["before"]), _num(c["after"]), _num(c["abs_change"]),
                    _num(c["change_pct"]), _num(c["improvement_pct"]), _num(c["pp_change"]), _num(lo), _num(hi),
                    _num(c["p_value"]), c["significant"], c["n_before"], c["n_after"], c["pqcd"]])
    return buf.getvalue()


def daily_csv(report: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    keys = list(report["daily"][0]["kpis"]) if report.get("daily") else []
    w.writerow(["date", "phase", *keys])
    for r in report.get("daily", []):
        w.writerow([r["date"], r["phase"], *(_num(r["kpis"][k]) for k in keys)])
    return buf.getvalue()


def _delivery_line(d: dict, lang: str) -> str:
    """What D rests on: orders judged per phase and the share of window days that had any."""
    def part(p: str) -> str:
        t = d[p]
        return (f"{label(p, lang)} {t['completed']}/{t['late_open']}, "
                f"{label('orders_coverage', lang)} {d['coverage'][p]:.0%}")
    return (f"{label('delivery_line', lang)}: {label('orders_judged', lang)}: {part('before')}; {part('after')} "
            f"({label('as_of', lang)} {d['as_of']})")


def _num(v) -> str:
    return "" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))


# -- PDF -------------------------------------------------------------------------------------
#: Fonts with Hangul, in order of preference (Debian: fonts-nanum, fonts-noto-cjk).
HANGUL_FONTS = (
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/truetype/nanum/NanumBarunGothic.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
LATIN_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",)


class PdfFontMissing(RuntimeError):
    pass


def _font(lang: str) -> str:
    for p in (HANGUL_FONTS if lang == "ko" else LATIN_FONTS + HANGUL_FONTS):
        if Path(p).exists():
            return p
    if lang == "ko":
        raise PdfFontMissing("no font with Hangul found for a Korean PDF: install Debian's fonts-nanum "
                             "(apt-get install fonts-nanum) or use --lang en")
    return ""


def to_pdf(report: dict, lang: str = "ko") -> bytes:
    """A printable summary: headline table, PQCD, all KPIs, trend charts, Pareto, classification."""
    import logging

    from fpdf import FPDF

    logging.getLogger("fontTools").setLevel(logging.ERROR)  # subsetting chatter about hinting tables
    font = _font(lang)
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(True, margin=12)
    if font:
        pdf.add_font("body", "", font)
        family = "body"
    else:
        family = "helvetica"
    L = lambda k: label(k, lang)  # noqa: E731
    pdf.add_page()
    pdf.set_font(family, size=15)
    title = L("title_period") if report.get("kind") == "period" else L("title_before_after")
    pdf.cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, size=9)
    s = report["scope"]
    pdf.multi_cell(0, 5, f"{L('tenant')}: {s['tenant']}   {L('line')}: {s['line']}   {L('machines')}: {', '.join(s['machines'])}",
                   new_x="LMARGIN", new_y="NEXT")
    if report.get("kind") == "period":
        per = report["period"]
        pdf.multi_cell(0, 5, f"{L('period')}: {per['first']} – {per['last']}", new_x="LMARGIN", new_y="NEXT")
        keys = ["oee", "availability", "performance", "quality", "output_per_hour", "material_input_s", "scrap_rate", "coverage"]
        _pdf_table(pdf, [L("date")] + [L(k) for k in keys],
                   [[r["date"] + (" " + r["shift"] if "shift" in r else "")] + [fmt(k, r["kpis"][k]) for k in keys]
                    for r in report["rows"]] + [["Σ"] + [fmt(k, report["kpis"][k]) for k in keys]])
    else:
        w = report["windows"]
        pdf.multi_cell(0, 5, f"{L('rollout')}: {w['rollout']}   {L('baseline')}: {w['baseline'][0]} – {w['baseline'][1]}   "
                       f"{L('post')}: {w['post'][0]} – {w['post'][1]} ({w['days_each']} {L('days')})   "
                       f"{L('commissioning')}: {w['commissioning_days_excluded']} {L('days')}   "
                       f"{L('coverage_line')}: {pct((report['coverage']['before'] or 0) * 100, False)} / "
                       f"{pct((report['coverage']['after'] or 0) * 100, False)}", new_x="LMARGIN", new_y="NEXT")
        for warning in report["warnings"]:
            pdf.multi_cell(0, 5, f"! {warning}", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        head = [L(h) for h in ("kpi", "before", "after", "improvement", "pp", "ci95", "p_value", "significant", "n_days")]
        rows = [[L(c["key"]) + (f" ({unit(c['key'])})" if unit(c["key"]) else ""), fmt(c["key"], c["before"]),
                 fmt(c["key"], c["after"]), pct(c["improvement_pct"]),
                 pp(c["pp_change"]), ci(c["ci95_improvement_pct"]),
                 pval(c["p_value"]), L("yes") if c["significant"] else L("no"), f"{c['n_before']}/{c['n_after']}"]
                for c in report["kpis"]]
        _pdf_table(pdf, head, rows, widths=[70, 25, 25, 22, 18, 38, 18, 18, 20])
        cs = {k["key"]: k for k in report["kpis"]}
        pdf.set_font(family, size=11)
        pdf.cell(0, 7, L("pqcd_summary"), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, size=9)
        for g in ("P", "Q", "C", "D"):
            items = "; ".join(f"{L(k)} {pct(cs[k]['improvement_pct'])}" for k in report["pqcd"][g]) or L("D_note")
            pdf.multi_cell(0, 5, f"{L(g)}: {items}", new_x="LMARGIN", new_y="NEXT")
        if report.get("delivery"):
            pdf.multi_cell(0, 5, _delivery_line(report["delivery"], lang), new_x="LMARGIN", new_y="NEXT")
        for key in ("output_per_hour", "material_input_s"):
            pdf.add_page()
            _pdf_trend(pdf, report, key, lang, family)
        pdf.add_page()
        pdf.set_font(family, size=11)
        pdf.cell(0, 7, L("pareto"), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, size=9)
        for phase in ("before", "after"):
            pdf.cell(0, 6, L(phase), new_x="LMARGIN", new_y="NEXT")
            _pdf_table(pdf, [L("reason"), L("kind"), L("hours"), L("share"), L("cumulative")],
                       [[r["reason"], L(r["kind"]), f"{r['hours']:.1f}", f"{r['share']:.0%}", f"{r['cumulative_share']:.0%}"]
                        for r in report["pareto"][phase]])
    pdf.set_font(family, size=11)
    pdf.cell(0, 7, L("classification"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, size=9)
    _pdf_table(pdf, [L("state"), "code", L("kind")],
               [[st["name"], str(st["code"]), L(st["kind"]) + (f" ({L('failure')})" if st["failure"] else "")]
                for st in report["policy"]["states"]])
    if report.get("kind") != "period":
        pdf.multi_cell(0, 5, f"{L('method')}: {L('method_text')}", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _pdf_table(pdf, head: list[str], rows: list[list[str]], widths: list[float] | None = None) -> None:
    usable = pdf.w - pdf.l_margin - pdf.r_margin
    widths = widths or [usable / len(head)] * len(head)
    pdf.set_fill_color(243, 244, 246)
    for h, wd in zip(head, widths):
        pdf.cell(wd, 6, h[:40], border=1, fill=True)
    pdf.ln()
    for r in rows:
        for v, wd in zip(r, widths):
            pdf.cell(wd, 5.5, str(v)[:48], border=1)
        pdf.ln()
    pdf.ln(2)


def _pdf_trend(pdf, report: dict, key: str, lang: str, family: str) -> None:
    """Daily values, rollout line, per-phase mean and XmR limits, drawn with PDF lines."""
    rows = report["daily"]
    vals = [_display(key, r["kpis"].get(key)) for r in rows]
    known = [v for v in vals if v is not None]
    pdf.set_font(family, size=11)
    pdf.cell(0, 7, f"{label(key, lang)} — {label('daily_trend', lang)} / {label('control_chart', lang)}",
             new_x="LMARGIN", new_y="NEXT")
    if not known:
        return
    limits = report["control_charts"].get(key, {})
    bounds = known + [_display(key, lim[k]) for lim in limits.values() if lim for k in ("ucl", "lcl")]
    lo, hi = min(bounds), max(bounds)
    pad = (hi - lo) * 0.08 or 1.0
    lo, hi = lo - pad, hi + pad
    x0, y0, w, h = 25.0, pdf.get_y() + 4, pdf.w - 40, 120.0
    X = lambda i: x0 + w * (i + 0.5) / len(rows)  # noqa: E731
    Y = lambda v: y0 + h * (1 - (v - lo) / (hi - lo))  # noqa: E731
    pdf.set_draw_color(209, 213, 219)
    pdf.rect(x0, y0, w, h)
    pdf.set_font(family, size=7)
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        pdf.line(x0, Y(v), x0 + w, Y(v))
        pdf.text(x0 - 14, Y(v) + 1, f"{v:.3g}")
    ri = next((i for i, r in enumerate(rows) if r["date"] >= report["windows"]["rollout"]), None)
    if ri is not None:
        pdf.set_draw_color(220, 38, 38)
        pdf.line(X(ri - 0.5), y0, X(ri - 0.5), y0 + h)
        pdf.text(X(ri - 0.5) + 1, y0 + 4, f"{label('rollout', lang)} {report['windows']['rollout']}")
    colours = {"before": (107, 114, 128), "after": (37, 99, 235), "commissioning": (245, 158, 11)}
    for phase in ("before", "after"):
        idx = [i for i, r in enumerate(rows) if r["phase"] == phase]
        lim = limits.get(phase)
        if idx and lim:
            pdf.set_draw_color(*colours[phase])
            for k in ("mean", "ucl", "lcl"):
                if k != "mean":
                    pdf.set_dash_pattern(dash=1.5, gap=1)
                pdf.line(X(idx[0] - 0.5), Y(_display(key, lim[k])), X(idx[-1] + 0.5), Y(_display(key, lim[k])))
                pdf.set_dash_pattern()
    for i, v in enumerate(vals):
        if v is not None:
            pdf.set_fill_color(*colours[rows[i]["phase"]])
            pdf.circle(x=X(i), y=Y(v), radius=0.8, style="F")
    for i in (0, len(rows) // 2, len(rows) - 1):
        pdf.text(X(i) - 8, y0 + h + 5, rows[i]["date"])
    pdf.set_y(y0 + h + 8)


def render(report: dict, fmt_name: str, lang: str) -> bytes:
    """The report in one format: json, html, csv or pdf."""
    import json

    if fmt_name == "json":
        return json.dumps(report, ensure_ascii=False, indent=1).encode()
    if fmt_name == "html":
        return to_html(report, lang).encode()
    if fmt_name == "csv":
        return to_csv(report, lang).encode()
    if fmt_name == "pdf":
        return to_pdf(report, lang)
    raise ValueError(f"format {fmt_name!r}: use json, html, csv or pdf")


FORMATS = ("json", "html", "csv", "pdf")
MEDIA_TYPES = {"json": "application/json", "html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8",
               "pdf": "application/pdf"}

__all__ = ["FORMATS", "MEDIA_TYPES", "PdfFontMissing", "daily_csv", "portfolio_html", "render", "to_csv", "to_html", "to_pdf"]


def portfolio_html(data: dict, lang: str = "ko") -> str:
    """The centre roll-up: per headline KPI how many improved and the spread, then who needs attention."""
    L = lambda k: html.escape(label(k, lang))  # noqa: E731
    out = [f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{L("portfolio_title")}</title>',
           f"<style>{_CSS}</style></head><body><h1>{L('portfolio_title')}</h1>",
           f"<p>{data['tenants']} SME · {data['lines']} {L('line')} · {L('improved')}: <b>{data['improved']}</b></p>",
           f"<table><tr><th>{L('kpi')}</th><th>n</th><th>{L('improved')}</th><th>{L('median_gain')}</th>"
           "<th>Q1 / Q3</th><th>min / max</th></tr>"]
    for key, k in data["kpis"].items():
        q = k["quartiles_pct"] or [None, None, None]
        out.append(f"<tr><td>{L(key)}</td><td>{k['tenants']}</td><td>{k['improved_significantly']}</td>"
                   f"<td>{pct(k['median_improvement_pct'])}</td><td>{pct(q[0])} / {pct(q[2])}</td>"
                   f"<td>{pct(k['min_pct'])} / {pct(k['max_pct'])}</td></tr>")
    out.append(f"</table><h2>{L('attention')}</h2><table><tr><th>{L('tenant')}</th><th>{L('line')}</th><th></th></tr>")
    for a in data["attention"]:
        out.append(f"<tr><td>{html.escape(a['tenant'])}</td><td>{html.escape(a['line'])}</td>"
                   f"<td style='text-align:left'>{html.escape('; '.join(a['reasons']))}</td></tr>")
    out.append("</table>")
    if data.get("problems"):
        out.append("<div class='warn'><ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in data["problems"]) + "</ul></div>")
    return "".join(out) + "</body></html>"

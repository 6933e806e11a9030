"""Report renderers: HTML with inline SVG charts (no CDN, no JavaScript), CSV, PDF (and XLSX: analytics.xlsx).

They only reformat the JSON report (analytics.report), so every output carries the same
numbers, including the stop classification and the method.
"""

from __future__ import annotations
from typing import Any

import html
import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

import csvcells
from analytics import charts
from analytics.delivery import DELIVERY_BY_KEY
from analytics.kpi import KPI_BY_KEY
from analytics.labels import change_words, label, unit_label

SPECS = {**KPI_BY_KEY, **DELIVERY_BY_KEY}

HEADLINE_CHARTS = ("output_per_hour", "material_input_s", "scrap_rate", "oee")
BEFORE_COLOUR, AFTER_COLOUR, COMMISSION_COLOUR = charts.BEFORE, charts.AFTER, charts.COMMISSION


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
    if v is None:
        return "–"
    if round(v, 1) == 0:
        return "0.0%"  # neither "+0.0%" nor "-0.0%"
    return f"{v:+.1f}%" if signed else f"{v:.1f}%"


def _signed(v: float, digits: int) -> str:
    """+1.2 / -1.2, and 0.0 for what rounds to zero (never "-0.0")."""
    return f"{0.0:.{digits}f}" if round(v, digits) == 0 else f"{v:+.{digits}f}"


def ci(pair) -> str:
    return "–" if not pair else f"[{_signed(pair[0], 1)}%, {_signed(pair[1], 1)}%]"


def pp(v: float | None) -> str:
    return "–" if v is None else _signed(v, 2)


def pval(p: float | None) -> str:
    return "–" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _display(key: str, v: float | None) -> float | None:
    if v is None:
        return None
    return v * 100 if SPECS[key].unit == "%" else v


# -- what every format says the same way ------------------------------------------------------
def day_span(pair) -> str:
    """A [start, end) window as a person reads it: first day – last day, both inclusive."""
    first, end = date.fromisoformat(pair[0]), date.fromisoformat(pair[1])
    return f"{first.isoformat()} – {(end - timedelta(days=1)).isoformat()}"


def when(iso: str | None, report: dict[str, Any]) -> str:
    """A timestamp in the tenant's zone, as 2026-12-02 09:14 (Asia/Seoul)."""
    if not iso:
        return "–"
    zone = report.get("policy", {}).get("timezone") or "UTC"
    try:
        t = datetime.fromisoformat(iso).astimezone(ZoneInfo(zone))
    except (ValueError, KeyError):
        return iso
    return f"{t:%Y-%m-%d %H:%M} ({zone})"


def names(report: dict[str, Any], lang: str = "ko") -> dict[str, Any]:
    """Display names from the plant model (``report['names']``, added by the API/CLI); slugs otherwise.

    An English report takes the English names (``names.en``) where the plant model has them."""
    s, n = report["scope"], report.get("names") or {}
    en = (n.get("en") or {}) if lang == "en" else {}
    lines = {**n.get("lines", {}), **{k: v for k, v in en.get("lines", {}).items() if v}}
    sites = {**n.get("sites", {}), **{k: v for k, v in en.get("sites", {}).items() if v}}
    machines = {**n.get("machines", {}), **{k: v for k, v in en.get("machines", {}).items() if v}}
    return {
        "tenant": en.get("tenant") or n.get("tenant") or s["tenant"],
        "site": sites.get(s.get("site"), s.get("site") or ""),
        "line": ", ".join(lines.get(x, x) for x in s["line"].split(",")),
        "machines": [machines.get(m, m) for m in s["machines"]],
        "machine": lambda m: machines.get(m, m),
    }


def kpi_name(key: str, lang: str) -> str:
    """The label without its parenthetical, for sentences: 자재 투입시간 (개당) -> 자재 투입시간."""
    text = label(key, lang)
    return text.split(" (")[0] if " (" in text else text


def _subject(word: str, lang: str) -> str:
    """Korean subject particle: 이 after a final consonant, 가 after a vowel (English: as is)."""
    if lang != "ko" or not word:
        return word
    last = word[-1]
    if "가" <= last <= "힣":
        return word + ("이" if (ord(last) - 0xAC00) % 28 else "가")
    return word + "이(가)"


def same_ratio_note(key: str, other: str, lang: str) -> str:
    """'same ratio as OEE' / '설비종합효율과 같은 비율' (와 after a vowel, 과 after a consonant)."""
    name = kpi_name(other, lang)
    if lang == "ko" and name and "가" <= name[-1] <= "힣":
        name += "과" if (ord(name[-1]) - 0xAC00) % 28 else "와"
    return label("same_ratio", lang).format(other=name)


def measured(c: dict[str, Any]) -> bool:
    return c.get("before") is not None and c.get("after") is not None and c.get("change_pct") is not None


def sentence(c: dict[str, Any], lang: str) -> str:
    """One plain sentence per headline KPI: 자재 투입시간이 74.6% 줄었습니다 (95% 신뢰구간 73.8–75.5%)."""
    name = kpi_name(c["key"], lang)
    if not measured(c):
        return label("sentence_not_measured", lang).format(kpi=name)
    ch = c["change_pct"]
    if round(ch, 1) == 0:
        text = label("sentence_flat", lang).format(kpi=_subject(name, lang))
    else:
        text = label("sentence_down" if ch < 0 else "sentence_up", lang).format(kpi=_subject(name, lang),
                                                                             pct=f"{abs(ch):.1f}")
    extra = []
    if c.get("ci95_change_pct"):
        lo, hi = c["ci95_change_pct"]
        if lo * hi > 0:  # both on one side: magnitudes, smaller first
            a, b = sorted((abs(lo), abs(hi)))
            extra.append(label("sentence_ci", lang).format(lo=f"{a:.1f}", hi=f"{b:.1f}"))
        else:
            extra.append(label("sentence_ci", lang).format(lo=f"{lo:+.1f}", hi=f"{hi:+.1f}"))
    if c.get("pp_change") is not None:
        extra.append(f"{fmt(c['key'], c['before'])} → {fmt(c['key'], c['after'])}, {c['pp_change']:+.2f}%p")
    if not c.get("significant"):
        extra.append(label("sentence_not_significant", lang))
    return text + (f" ({'; '.join(extra)})" if extra else "") + ("." if lang == "en" else ".")


def same_ratio(report: dict[str, Any]) -> dict[str, str]:
    """KPIs whose change and interval equal an earlier row's (OEE, production efficiency and standard-time
    output with one product and one ideal cycle): key -> the earlier key, so the tables say so."""
    seen: list[dict[str, Any]] = []
    out = {}
    for c in report["kpis"]:
        if not measured(c) or not c.get("ci95_change_pct"):
            continue
        for o in seen:
            if (abs(o["change_pct"] - c["change_pct"]) < 1e-6
                    and all(abs(x - y) < 1e-6 for x, y in zip(o["ci95_change_pct"], c["ci95_change_pct"]))):
                out[c["key"]] = o["key"]
                break
        else:
            seen.append(c)
    return out


def value(key: str, v: float | None, lang: str) -> str:
    return label("not_measured", lang) if v is None else fmt(key, v)


def unit_text(key: str, lang: str) -> str:
    spec = SPECS.get(key)
    return "" if spec is None else unit_label(spec.unit, lang)


def kpi_row(c: dict[str, Any], lang: str) -> list[str]:
    """The cells of one KPI row, the same in PDF, HTML and XLSX."""
    if not measured(c):
        nm = label("not_measured", lang)
        return [label(c["key"], lang), unit_text(c["key"], lang), nm, nm, nm, "–", "–", "–", "–", "–",
                f"{c['n_before']}/{c['n_after']}"]
    return [label(c["key"], lang), unit_text(c["key"], lang), fmt(c["key"], c["before"]), fmt(c["key"], c["after"]),
            change_words(c["change_pct"], lang), pct(c["improvement_pct"]), pp(c["pp_change"]),
            ci(c["ci95_improvement_pct"]), pval(c["p_value"]), label("yes", lang) if c["significant"] else label("no", lang),
            f"{c['n_before']}/{c['n_after']}"]


KPI_HEAD = ("kpi", "unit", "before", "after", "change", "improvement", "pp", "ci95", "p_value", "significant", "n_days")


def chart_labels(lang: str) -> dict[str, str]:
    return {k: label(k, lang) for k in ("legend_before", "legend_after", "legend_commissioning", "legend_mean",
                                        "legend_limits", "legend_box", "rollout", "before", "after")}


def axis_title(key: str, lang: str) -> str:
    u = unit_text(key, lang)
    return f"{kpi_name(key, lang)} ({u})" if u else kpi_name(key, lang)


def report_charts(report: dict[str, Any], lang: str) -> list[tuple[str, object]]:
    """Every chart of a before/after report, in order: per headline KPI its distribution and control chart,
    then the downtime Pareto. (kind, Chart) pairs; a KPI without values has none."""
    out = []
    lab = chart_labels(lang)
    rows = report.get("daily", [])
    for key in HEADLINE_CHARTS:
        vals = [_display(key, r["kpis"].get(key)) for r in rows]
        groups = {p: np.array([v for v, r in zip(vals, rows) if r["phase"] == p and v is not None])
                  for p in ("before", "after")}
        d = charts.distribution(groups, f"{kpi_name(key, lang)} — {label('distribution', lang)}", axis_title(key, lang), lab)
        limits = {p: ({k: _display(key, v) for k, v in lim.items() if k in ("mean", "ucl", "lcl")} if lim else None)
                  for p, lim in report.get("control_charts", {}).get(key, {}).items()}
        t = charts.control_chart(rows, vals, limits, report["windows"]["rollout"],
                                 f"{kpi_name(key, lang)} — {label('control_chart', lang)}", axis_title(key, lang), lab)
        out += [(f"distribution:{key}", d), (f"control:{key}", t)]
    reason = lambda r: label(r, lang)  # noqa: E731
    par = charts.pareto(report["pareto"]["before"], report["pareto"]["after"], reason,
                        f"{label('pareto', lang)}: {label('pareto_losses', lang)}", label("hours", lang), lab)
    out.append(("pareto", par))
    return [(k, c) for k, c in out if c is not None]


# -- HTML ------------------------------------------------------------------------------------
_CSS = """body{font-family:system-ui,"Noto Sans KR","Malgun Gothic",sans-serif;margin:24px;color:#111827;max-width:1180px}
table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}th,td{border:1px solid #d1d5db;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f4f6}td{white-space:nowrap}td:first-child{white-space:normal}.sig{font-weight:bold;color:#15803d}
.worse{font-weight:bold;color:#b91c1c}.warn{background:#fef3c7;padding:8px;border-left:4px solid #f59e0b}
.charts{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}h2{margin-top:28px}small{color:#4b5563}
.note{color:#374151;font-size:13px;max-width:900px}"""


def _head_html(report: dict[str, Any], lang: str) -> list[str]:
    L = lambda k: html.escape(label(k, lang))  # noqa: E731
    n, w = names(report, lang), report["windows"]
    return [f"<p>{L('tenant')}: <b>{html.escape(n['tenant'])}</b> · {L('line')}: <b>{html.escape(n['line'])}</b> · "
            f"{L('machines')}: {html.escape(', '.join(n['machines']))}<br>"
            f"{L('rollout')}: <b>{w['rollout']}</b> · {L('baseline')}: {day_span(w['baseline'])} · "
            f"{L('post')}: {day_span(w['post'])} ({w['days_each']} {L('days')}) · "
            f"{L('commissioning')}: {w['commissioning_days_excluded']} {L('days')}<br>"
            f"{L('coverage_line')}: {L('before')} {pct((report['coverage']['before'] or 0) * 100, False)}, "
            f"{L('after')} {pct((report['coverage']['after'] or 0) * 100, False)} · "
            f"{L('data_as_of')}: <b>{html.escape(when(report.get('data_as_of'), report))}</b> · "
            f"<small>{L('generated')} {html.escape(when(report['generated_at'], report))}</small></p>"]


def to_html(report: dict[str, Any], lang: str = "ko") -> str:
    if report.get("kind") == "period":
        return _period_html(report, lang)
    L = lambda k: html.escape(label(k, lang))  # noqa: E731
    out = [f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{L("title_before_after")}</title>',
           f"<style>{_CSS}</style></head><body>", f"<h1>{L('title_before_after')}</h1>", *_head_html(report, lang)]
    if report["warnings"]:
        out.append(f'<div class="warn"><b>{L("warnings")}</b><ul>' +
                   "".join(f"<li>{html.escape(x)}</li>" for x in report["warnings"]) + "</ul></div>")
    out.append(f"<h2>{L('findings')}</h2><ul>" + "".join(
        f"<li>{html.escape(sentence(c, lang))}</li>" for c in report["kpis"] if c["headline"]) + "</ul>")
    out.append(f"<p class='note'>{L('ci_note')}</p>")
    if report.get("targets") is not None:
        out.append(f"<h2>{L('targets')}</h2>" + _simple_table(*target_rows(report, lang)))
    out.append(f"<h2>{L('pqcd_summary')}</h2>")
    out.append(_simple_table(*pqcd_rows(report, lang)))
    if report.get("delivery"):
        out.append(f"<p>{html.escape(_delivery_line(report['delivery'], lang))}</p>")
    out.append(f"<h2>{L('kpi')}</h2>")
    out.append(_kpi_table(report, lang, report["kpis"]))
    out.append(f"<p class='note'>{L('sign_legend')}</p>")
    figs = report_charts(report, lang)
    for key in HEADLINE_CHARTS:
        pair = [charts.to_svg(c) for k, c in figs if k.endswith(":" + key)]
        if pair:
            out.append(f"<h2>{L(key)}</h2><div class='charts'>{''.join(pair)}</div>")
    out.append(f"<h2>{L('pareto')}</h2>")
    out += [charts.to_svg(c) for k, c in figs if k == "pareto"]
    out.append("<div class='charts'>")
    for phase in ("before", "after"):
        out.append(f"<div><b>{L(phase)}</b>" + _pareto_table(report["pareto"][phase], lang, report["time"][phase]) + "</div>")
    out.append("</div>")
    out.append(f"<h2>{L('machine_table')}</h2>" + _simple_table(*machine_rows(report, lang)))
    out.append(f"<h2>{L('appendix')}</h2>")
    out.append(_policy_html(report, lang))
    out.append(f"<p class='note'>{L('method')}: {L('method_text')}</p>")
    out.append(f"<p>{L('corrections')}: {len(report['corrections'])}</p></body></html>")
    return "".join(out)


def _simple_table(head: list[str], rows: list[list[str]]) -> str:
    return ("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>" + "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in rows) + "</table>")


def _kpi_table(report: dict[str, Any], lang: str, rows: list[dict[str, Any]]) -> str:
    L = lambda k: html.escape(label(k, lang))  # noqa: E731
    same = same_ratio(report)
    out = ["<table><tr>" + "".join(f"<th>{L(h)}</th>" for h in KPI_HEAD) + "</tr>"]
    for c in rows:
        good = c["significant"] and (c["improvement_pct"] or 0) > 0
        bad = c["significant"] and (c["improvement_pct"] or 0) < 0
        cls = ' class="sig"' if good else (' class="worse"' if bad else "")
        cells = [html.escape(x) for x in kpi_row(c, lang)]
        if c["key"] in same:
            cells[0] += "<br><small>" + html.escape(same_ratio_note(c["key"], same[c["key"]], lang)) + "</small>"
        out.append("<tr>" + "".join(f"<td{cls if i == 5 else ''}>{v}</td>" for i, v in enumerate(cells)) + "</tr>")
    out.append("</table>")
    return "".join(out)


def pqcd_rows(report: dict[str, Any], lang: str) -> tuple[list[str], list[list[str]]]:
    """P, Q, C, D: each KPI of the group with its change in words and its improvement."""
    cs = {k["key"]: k for k in report["kpis"]}
    rows = []
    for g in ("P", "Q", "C", "D"):
        keys = report["pqcd"][g]
        if not keys:
            rows.append([label(g, lang), label("D_note", lang) if g == "D" else label("not_measured", lang), "", ""])
        for i, k in enumerate(keys):
            c = cs[k]
            rows.append([label(g, lang) if i == 0 else "", label(k, lang), change_words(c["change_pct"], lang),
                         pct(c["improvement_pct"]) if measured(c) else "–"])
    return [label("pqcd_summary", lang), label("kpi", lang), label("change", lang), label("improvement", lang)], rows


def machine_rows(report: dict[str, Any], lang: str) -> tuple[list[str], list[list[str]]]:
    n = names(report, lang)
    heads = ("output_per_hour", "material_input_s", "scrap_rate", "oee")
    head = [label("machines", lang)] + [f"{kpi_name(k, lang)} ({unit_text(k, lang)})" for k in heads]
    head.append(label("coverage", lang))
    rows = []
    for m in report["machines"]:
        cells = [n["machine"](m["machine"])]
        for k in heads:
            c = m["kpis"][k]
            if c["before"] is None or c["after"] is None:
                cells.append(label("not_measured", lang))
            else:
                cells.append(f"{fmt(k, c['before'])} → {fmt(k, c['after'])} ({pct(c['improvement_pct'])})")
        cov = m.get("coverage") or {}  # each machine's own: one machine's outage hides in the line's figure
        cells.append(f"{fmt('coverage', cov.get('before'))} → {fmt('coverage', cov.get('after'))}")
        rows.append(cells)
    return head, rows


def target_rows(report: dict[str, Any], lang: str) -> tuple[list[str], list[list[str]]]:
    head = [label(k, lang) for k in ("kpi", "target", "actual", "achievement", "significant")]
    rows = []
    for t in report.get("targets") or []:
        ach = t.get("achievement_pct")
        state = "–" if ach is None else label("achieved" if ach >= 100 else "not_achieved", lang)
        rows.append([label(t["key"], lang), change_words(t["target_change_pct"], lang),
                     change_words(t.get("actual_change_pct"), lang),
                     "–" if ach is None else f"{ach:.0f}% ({state})",
                     label("yes", lang) if t.get("significant") else label("no", lang)])
    if not rows:
        rows.append([label("no_targets", lang), "", "", "", ""])
    return head, rows


def no_data_note(time: dict[str, Any] | None, lang: str) -> str:
    """The time without data, apart from the Pareto (it is no reason for a stop): "데이터 없음 2.4시간 (…)"."""
    hours = (time or {}).get("no_data_h") or 0.0
    unit = label("u_h", lang) if lang == "ko" else f" {label('u_h', lang)}"  # 2.4시간, 2.4 h
    return f"{label('no_data', lang).capitalize()} {hours:.1f}{unit} ({label('no_data_apart', lang)})"


def perf_over_100(report: dict[str, Any]) -> bool:
    """Whether any performance in the report is over 100% (the ideal cycle time is off, or the counts are)."""
    def over(k: dict[str, Any] | None) -> bool:
        v = (k or {}).get("performance")
        return v is not None and v > 1.0
    return over(report.get("kpis") if isinstance(report.get("kpis"), dict) else None) or any(
        over(r.get("kpis")) for r in report.get("rows", []) + report.get("daily", []))


def perf_value(key: str, v: float | None, lang: str, mark: str = "⚠") -> str:
    """A KPI value; a performance over 100% keeps its real figure, marked (⚠) and explained beside the table."""
    return value(key, v, lang) + (f" {mark}" if key == "performance" and v is not None and v > 1.0 else "")


def _pareto_table(rows: list[dict[str, Any]], lang: str, time: dict[str, Any] | None = None) -> str:
    L = lambda k: html.escape(label(k, lang))  # noqa: E731
    out = [f"<table><tr><th>{L('reason')}</th><th>{L('kind')}</th><th>{L('hours')}</th><th>{L('share')}</th>"
           f"<th>{L('cumulative')}</th></tr>"]
    for r in rows:
        out.append(f"<tr><td>{L(r['reason'])}</td><td>{L(r['kind'])}</td><td>{r['hours']:.1f}</td>"
                   f"<td>{r['share']:.0%}</td><td>{r['cumulative_share']:.0%}</td></tr>")
    return "".join(out) + f"</table><p class='note' data-no-data>{html.escape(no_data_note(time, lang))}</p>"


def policy_rows(report: dict[str, Any], lang: str) -> tuple[list[str], list[list[str]]]:
    rows = [[label(st["name"], lang), str(st["code"]), label(st["kind"], lang)
             + (f" ({label('failure', lang)})" if st["failure"] else "")] for st in report["policy"]["states"]]
    return [label("state", lang), label("state_code", lang), label("kind", lang)], rows


def policy_lines(report: dict[str, Any], lang: str) -> list[str]:
    p = report["policy"]
    shifts = ", ".join(f"{sh['name']} {sh['start']}–{sh['end']}" for sh in p["shifts"])
    per = ", ".join(f"{k} {v:g}" for k, v in (p.get("ideal_cycle_s") or {}).items())
    unit_s = label("u_s", lang)
    return [f"{label('shifts', lang)}: {shifts}", f"{label('timezone', lang)}: {p['timezone']}",
            f"{label('stale', lang)}: {p['stale_s']:g} {unit_s}",
            f"{label('ideal_cycle', lang)}: {p['default_ideal_cycle_s']:g} {unit_s}" + (f" ({per})" if per else "")
            + (f"; {p.get('ideal_cycle_by_product')}" if p.get("ideal_cycle_by_product") else "")]


def _policy_html(report: dict[str, Any], lang: str) -> str:
    return (f"<h3>{html.escape(label('classification', lang))}</h3>" + _simple_table(*policy_rows(report, lang))
            + "<p><small>" + "<br>".join(html.escape(x) for x in policy_lines(report, lang)) + "</small></p>")


def _period_html(report: dict[str, Any], lang: str) -> str:
    L = lambda k: html.escape(label(k, lang))  # noqa: E731
    s, per, n = report["scope"], report["period"], names(report, lang)
    keys = [k for k in report["kpis"]]
    out = [f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{L("title_period")}</title>',
           f"<style>{_CSS}</style></head><body><h1>{L('title_period')}</h1>",
           f"<p>{L('tenant')}: <b>{html.escape(n['tenant'])}</b> · {L('line')}: <b>{html.escape(n['line'])}</b> · "
           f"{L('period')}: {per['first']} – {per['last']} · "
           f"{L('data_as_of')}: {html.escape(when(report.get('data_as_of'), report))} · "
           f"<small>{L('generated')} {html.escape(when(report['generated_at'], report))}</small></p>"
           + ("<div class='warn'><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in report.get("warnings", []))
              + "</ul></div>" if report.get("warnings") else "")
           + (f"<p class='warn' data-perf-over-100>⚠ {L('perf_over_100')}</p>" if perf_over_100(report) else "")
           + f"<table><tr><th>{L('date')}</th>"
           + ("<th>" + L("shift") + "</th>" if per["by"] == "shift" else "")
           + "".join(f"<th>{L(k)}</th>" for k in keys) + "</tr>"]
    del s
    for r in report["rows"]:
        out.append(f"<tr><td>{r['date']}</td>" + (f"<td>{html.escape(r['shift'])}</td>" if "shift" in r else "")
                   + "".join(f"<td>{perf_value(k, r['kpis'][k], lang)}</td>" for k in keys) + "</tr>")
    out.append("<tr><th>Σ</th>" + ("<th></th>" if per["by"] == "shift" else "")
               + "".join(f"<th>{perf_value(k, report['kpis'][k], lang)}</th>" for k in keys) + "</tr></table>")
    out.append(f"<h2>{L('pareto')}</h2>" + _pareto_table(report["pareto"], lang, report.get("time")))
    out.append(_policy_html(report, lang) + "</body></html>")
    return "".join(out)


# -- CSV -------------------------------------------------------------------------------------
def to_csv(report: dict[str, Any], lang: str = "en") -> str:
    """One row per KPI (before/after report) or per day/shift (period report)."""
    buf = io.StringIO()
    w = csvcells.writer(buf, lineterminator="\n")
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


def daily_csv(report: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csvcells.writer(buf, lineterminator="\n")
    keys = list(report["daily"][0]["kpis"]) if report.get("daily") else []
    w.writerow(["date", "phase", *keys])
    for r in report.get("daily", []):
        w.writerow([r["date"], r["phase"], *(_num(r["kpis"][k]) for k in keys)])
    return buf.getvalue()


def _delivery_line(d: dict[str, Any], lang: str) -> str:
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
BODY_PT, SMALLEST_PT = 8.5, 6.5


class PdfFontMissing(RuntimeError):
    pass


def _font(lang: str, hangul_text: bool = False) -> str:
    """A font for the language; an English report naming a Korean company needs Hangul too."""
    for p in (HANGUL_FONTS if lang == "ko" or hangul_text else LATIN_FONTS + HANGUL_FONTS):
        if Path(p).exists():
            return p
    if lang == "ko":
        raise PdfFontMissing("no font with Hangul found for a Korean PDF: install Debian's fonts-nanum "
                             "(apt-get install fonts-nanum) or use --lang en")
    return ""


def _wrap(pdf, text: str, width: float) -> list[str]:
    """Words of ``text`` in lines no wider than ``width`` (a single word wider stays whole: an overflow)."""
    lines: list[str] = []
    for para in str(text).split("\n"):
        cur = ""
        for word in para.split(" "):
            trial = f"{cur} {word}" if cur else word
            if cur and pdf.get_string_width(trial) > width + 1e-6:
                lines.append(cur)
                cur = word
            else:
                cur = trial
        lines.append(cur)
    return lines


def _longest_word(pdf, text: str) -> float:
    return max((pdf.get_string_width(w) for w in str(text).replace("\n", " ").split(" ")), default=0.0)


def fit_widths(pdf, head: list[str], rows: list[list[str]], usable: float, wrap_cols: set[int]) -> list[float] | None:
    """Column widths where every cell fits at the current font size, or None.

    Body cells of other columns keep one line; headers and ``wrap_cols`` wrap at spaces.
    Spare room goes to the wrapping columns first, so long labels take fewer lines.
    """
    pad = 2 * pdf.c_margin + 0.4
    cols = len(head)
    natural = [max([pdf.get_string_width(str(r[i])) for r in rows] + [0.0]) + pad for i in range(cols)]
    need = []
    for i in range(cols):
        body = (max([_longest_word(pdf, r[i]) for r in rows] + [0.0]) + pad) if i in wrap_cols else natural[i]
        need.append(max(body, _longest_word(pdf, head[i]) + pad))
    if sum(need) > usable:
        return None
    widths = list(need)
    spare = usable - sum(widths)
    grow = [i for i in range(cols) if i in wrap_cols and natural[i] > widths[i]]
    for i in grow:  # wrapping columns first, up to their one-line width
        add = min(spare / max(len(grow), 1), natural[i] - widths[i])
        widths[i] += add
    spare = usable - sum(widths)
    head_natural = [pdf.get_string_width(h) + pad for h in head]
    wants = [max(0.0, head_natural[i] - widths[i]) for i in range(cols)]
    if sum(wants) > 0 and spare > 0:  # then headers, so fewer of them wrap
        k = min(1.0, spare / sum(wants))
        widths = [w + wants[i] * k for i, w in enumerate(widths)]
    return widths


def pdf_table(pdf, head: list[str], rows: list[list[str]], wrap_cols: set[int] = frozenset({0}),
              usable: float | None = None, align_left: set[int] = frozenset({0})) -> None:
    """A table whose text fits its cells: widths from the text, wrapping at spaces, a smaller font if need be.

    Every cell's lines are measured again as they are drawn; any wider than its cell is recorded in
    ``pdf.overflows`` (what the tests check), so an overflow is a failing test, not a silent clip.
    """
    usable = usable or pdf.w - pdf.l_margin - pdf.r_margin
    rows = [[str(v) for v in r] for r in rows]
    size = pdf.font_size_pt
    widths = None
    while widths is None:
        pdf.set_font(size=size)
        widths = fit_widths(pdf, head, rows, usable, set(wrap_cols))
        if widths is None:
            if size <= SMALLEST_PT:
                n = len(head)
                widths = [usable / n] * n  # cannot fit: draw, and the checks below record each overflow
            size -= 0.5
    line_h = pdf.font_size * 1.35
    pad = pdf.c_margin

    def draw(cells: list[str], fill: bool) -> None:
        wrapped = [_wrap(pdf, v, w - 2 * pad - 0.4) for v, w in zip(cells, widths)]
        h = max(len(x) for x in wrapped) * line_h + 1.2
        if pdf.get_y() + h > pdf.page_break_trigger:
            pdf.add_page()
            if not fill:
                draw(head, True)
        x, y = pdf.l_margin, pdf.get_y()
        for i, (lines, w) in enumerate(zip(wrapped, widths)):
            if fill:
                pdf.set_fill_color(243, 244, 246)
            pdf.rect(x, y, w, h, style="DF" if fill else "D")
            for j, text in enumerate(lines):
                tw = pdf.get_string_width(text)
                if tw > w - 2 * pad + 0.01:
                    pdf.overflows.append(f"page {pdf.page_no()}: {text!r} is {tw:.1f} mm in a {w:.1f} mm cell")
                tx = x + pad if (i in align_left or fill) else x + w - pad - tw
                pdf.text(tx, y + 0.6 + line_h * (j + 0.78), text)
            x += w
        pdf.set_y(y + h)

    draw(head, True)
    for r in rows:
        draw(r, False)
    pdf.ln(2)
    pdf.set_font(size=BODY_PT)


def _para(pdf, text: str, size: float = BODY_PT) -> None:
    """A paragraph that wraps at the margin (fpdf2's multi_cell breaks lines, so nothing runs off)."""
    pdf.set_font(size=size)
    pdf.multi_cell(0, size * 0.3528 * 1.45, text, new_x="LMARGIN", new_y="NEXT")


def _heading(pdf, text: str, size: float = 11.5) -> None:
    if pdf.get_y() > pdf.page_break_trigger - 25:
        pdf.add_page()
    pdf.set_font(size=size)
    pdf.cell(0, size * 0.3528 * 1.7, text, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(size=BODY_PT)


def _new_pdf(lang: str, hangul_text: bool = False):
    import logging

    from fpdf import FPDF

    logging.getLogger("fontTools").setLevel(logging.ERROR)  # subsetting chatter about hinting tables
    font = _font(lang, hangul_text)
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.overflows = []
    pdf.set_auto_page_break(True, margin=12)
    pdf.set_margins(12, 12, 12)
    if font:
        pdf.add_font("body", "", font)
        pdf.set_font("body", size=BODY_PT)
    else:
        pdf.set_font("helvetica", size=BODY_PT)
    return pdf


def build_pdf(report: dict[str, Any], lang: str = "ko"):
    """The PDF as an fpdf2 document (``.overflows`` lists any text wider than its cell; ``.charts`` the charts)."""
    pdf = _new_pdf(lang, any(ch >= "\u2e80" for ch in json.dumps(report.get("names") or {}, ensure_ascii=False)))
    pdf.charts = []
    L = lambda k: label(k, lang)  # noqa: E731
    n = names(report, lang)
    pdf.add_page()
    title = L("title_period") if report.get("kind") == "period" else L("title_before_after")
    _heading(pdf, title, 16)
    _para(pdf, f"{L('tenant')}: {n['tenant']}    {L('line')}: {n['line']}    {L('machines')}: {', '.join(n['machines'])}")
    if report.get("kind") == "period":
        per = report["period"]
        _para(pdf, f"{L('period')}: {per['first']} – {per['last']}    {L('data_as_of')}: {when(report.get('data_as_of'), report)}"
                   f"    {L('generated')}: {when(report['generated_at'], report)}")
        for warning in report.get("warnings", []):
            _para(pdf, f"! {warning}")
        if perf_over_100(report):
            _para(pdf, f"(!) {L('perf_over_100')}")
        keys = ["oee", "availability", "performance", "quality", "output_per_hour", "material_input_s", "scrap_rate", "coverage"]
        pdf_table(pdf, [L("date")] + [f"{kpi_name(k, lang)} ({unit_text(k, lang)})" for k in keys],
                  [[r["date"] + (" " + r["shift"] if "shift" in r else "")] + [perf_value(k, r["kpis"][k], lang, "(!)") for k in keys]
                   for r in report["rows"]] + [["Σ"] + [perf_value(k, report["kpis"][k], lang, "(!)") for k in keys]],
                  wrap_cols=set())
        _heading(pdf, L("pareto"))
        _pareto_pdf(pdf, report["pareto"], lang, report.get("time"))
        _appendix_pdf(pdf, report, lang)
        return pdf
    w = report["windows"]
    _para(pdf, f"{L('rollout')}: {w['rollout']}    {L('baseline')}: {day_span(w['baseline'])}    "
               f"{L('post')}: {day_span(w['post'])} ({w['days_each']} {L('days')})    "
               f"{L('commissioning')}: {w['commissioning_days_excluded']} {L('days')}")
    _para(pdf, f"{L('coverage_line')}: {L('before')} {pct((report['coverage']['before'] or 0) * 100, False)}, "
               f"{L('after')} {pct((report['coverage']['after'] or 0) * 100, False)}    "
               f"{L('data_as_of')}: {when(report.get('data_as_of'), report)}    "
               f"{L('generated')}: {when(report['generated_at'], report)}")
    if report["warnings"]:
        pdf.set_text_color(146, 64, 14)
        for warning in report["warnings"]:
            _para(pdf, f"! {warning}")
        pdf.set_text_color(0, 0, 0)
    pdf.ln(1)
    _heading(pdf, L("findings"))
    for c in report["kpis"]:
        if c["headline"]:
            _para(pdf, f"•  {sentence(c, lang)}", 10)
    pdf.ln(1)
    _para(pdf, L("ci_note"), 8)
    if report.get("targets") is not None:
        _heading(pdf, L("targets"))
        pdf_table(pdf, *target_rows(report, lang))
    _heading(pdf, L("pqcd_summary"))
    head, rows = pqcd_rows(report, lang)
    pdf_table(pdf, head, rows, wrap_cols={1}, align_left={0, 1})
    if report.get("delivery"):
        _para(pdf, _delivery_line(report["delivery"], lang))
    pdf.add_page()
    _heading(pdf, L("kpi"))
    same = same_ratio(report)
    rows = []
    for c in report["kpis"]:
        r = kpi_row(c, lang)
        if c["key"] in same:
            r[0] += " *"
        rows.append(r)
    pdf_table(pdf, [L(h) for h in KPI_HEAD], rows, wrap_cols={0})
    for key, other in same.items():
        _para(pdf, f"* {label(key, lang)}: " + same_ratio_note(key, other, lang), 8)
    _para(pdf, L("sign_legend"), 8)
    _heading(pdf, L("machine_table"))
    head, rows = machine_rows(report, lang)
    pdf_table(pdf, head, rows, wrap_cols=set())
    figs = dict(report_charts(report, lang))
    usable = pdf.w - pdf.l_margin - pdf.r_margin
    for key in HEADLINE_CHARTS:
        d, t = figs.get(f"distribution:{key}"), figs.get(f"control:{key}")
        if not (d or t):
            continue
        pdf.add_page()
        _heading(pdf, label(key, lang))
        c = next((x for x in report["kpis"] if x["key"] == key), None)
        if c is not None:
            _para(pdf, sentence(c, lang), 9.5)
        y = pdf.get_y() + 2
        gap = 4.0
        k = (usable - gap) / ((t.w if t else 0) + (d.w if d else 0))  # one scale for both: same type size
        height = 0.0
        if t:
            height = charts.to_pdf(pdf, t, pdf.l_margin, y, t.w * k)
            pdf.charts.append((pdf.page_no(), f"control:{key}"))
        if d:
            x = pdf.l_margin + (t.w * k + gap if t else 0)
            height = max(height, charts.to_pdf(pdf, d, x, y, d.w * k))
            pdf.charts.append((pdf.page_no(), f"distribution:{key}"))
        pdf.set_font(size=BODY_PT)
        pdf.set_y(y + height + 2)
    pdf.add_page()
    _heading(pdf, L("pareto"))
    par = figs.get("pareto")
    if par:
        y = pdf.get_y()
        h = charts.to_pdf(pdf, par, pdf.l_margin, y, min(usable, par.w * 0.3))
        pdf.charts.append((pdf.page_no(), "pareto"))
        pdf.set_font(size=BODY_PT)
        pdf.set_y(y + h + 2)
    for phase in ("before", "after"):
        _heading(pdf, L(phase), 9.5)
        _pareto_pdf(pdf, report["pareto"][phase], lang, report["time"][phase])
    _appendix_pdf(pdf, report, lang)
    return pdf


def _pareto_pdf(pdf, rows: list[dict[str, Any]], lang: str, time: dict[str, Any] | None = None) -> None:
    L = lambda k: label(k, lang)  # noqa: E731
    pdf_table(pdf, [L("reason"), L("kind"), L("hours"), L("share"), L("cumulative")],
              [[L(r["reason"]), L(r["kind"]), f"{r['hours']:.1f}", f"{r['share']:.0%}", f"{r['cumulative_share']:.0%}"]
               for r in rows], wrap_cols=set(), align_left={0, 1}, usable=160.0)
    _para(pdf, no_data_note(time, lang))


def _appendix_pdf(pdf, report: dict[str, Any], lang: str) -> None:
    L = lambda k: label(k, lang)  # noqa: E731
    pdf.add_page()
    _heading(pdf, L("appendix"), 13)
    _heading(pdf, L("classification"), 10)
    head, rows = policy_rows(report, lang)
    pdf_table(pdf, head, rows, wrap_cols=set(), align_left={0, 2}, usable=150.0)
    for line in policy_lines(report, lang):
        _para(pdf, line)
    if report.get("kind") != "period":
        pdf.ln(2)
        _para(pdf, f"{L('method')}: {L('method_text')}")
        _para(pdf, f"{L('corrections')}: {len(report['corrections']) or L('corrections_none')}")


def to_pdf(report: dict[str, Any], lang: str = "ko") -> bytes:
    """The printable report: findings, targets, PQCD, all KPIs, per-machine results, every chart, Pareto, appendix."""
    return bytes(build_pdf(report, lang).output())


def render(report: dict[str, Any], fmt_name: str, lang: str) -> bytes:
    """The report in one format: json, html, csv, pdf or xlsx."""
    if fmt_name == "json":
        return json.dumps(report, ensure_ascii=False, indent=1).encode()
    if fmt_name == "html":
        return to_html(report, lang).encode()
    if fmt_name == "csv":
        return to_csv(report, lang).encode()
    if fmt_name == "pdf":
        return to_pdf(report, lang)
    if fmt_name == "xlsx":
        from analytics.xlsx import to_xlsx

        return to_xlsx(report, lang)
    raise ValueError(f"format {fmt_name!r}: use json, html, csv, pdf or xlsx")


FORMATS = ("json", "html", "csv", "pdf", "xlsx")
#: Formats that are files to save, not pages to show (the API answers them as attachments).
ATTACHMENTS = ("csv", "pdf", "xlsx")
MEDIA_TYPES = {"json": "application/json", "html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8",
               "pdf": "application/pdf", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}

__all__ = ["ATTACHMENTS", "FORMATS", "MEDIA_TYPES", "build_pdf", "PdfFontMissing", "daily_csv", "portfolio_html", "render",
           "to_csv", "to_html", "to_pdf"]


def portfolio_html(data: dict[str, Any], lang: str = "ko") -> str:
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
    rows = [(x, t) for x in data.get("reports", []) for t in (x.get("targets") or [])]
    if rows:
        out.append(f"<h2>{L('targets')}</h2><table><tr><th>{L('tenant')}</th><th>{L('line')}</th><th>{L('kpi')}</th>"
                   f"<th>{L('target')}</th><th>{L('actual')}</th><th>{L('achievement')}</th></tr>")
        for x, t in rows:
            n = names(x, lang)
            ach = t.get("achievement_pct")
            out.append(f"<tr><td>{html.escape(n['tenant'])}</td><td>{html.escape(n['line'])}</td><td>{L(t['key'])}</td>"
                       f"<td>{html.escape(change_words(t['target_change_pct'], lang))}</td>"
                       f"<td>{html.escape(change_words(t.get('actual_change_pct'), lang))}</td>"
                       f"<td>{'–' if ach is None else f'{ach:.0f}%'}</td></tr>")
        out.append("</table>")
    if data.get("problems"):
        out.append("<div class='warn'><ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in data["problems"]) + "</ul></div>")
    return "".join(out) + "</body></html>"

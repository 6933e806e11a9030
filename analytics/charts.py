"""Report charts drawn once as a list of shapes, then written as SVG (HTML) or PDF lines (fpdf2).

So the HTML and the PDF show the same charts: daily control charts with the rollout marked,
before/after distributions and the downtime Pareto, each with axes in units, round ticks and
a legend for every mark.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import numpy as np

BEFORE, AFTER, COMMISSION, ROLLOUT, GRID, INK = "#6b7280", "#2563eb", "#f59e0b", "#dc2626", "#e5e7eb", "#374151"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v < hi + step * 0.999:
        ticks.append(round(v, 10))
        v += step
    return ticks


def tick_text(v: float, ticks: list[float]) -> str:
    """A tick with as many decimals as its step needs (0.25 -> 2, 2.5 -> 1, 50 -> 0)."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = len(f"{step:.4f}".rstrip("0").split(".")[1])
    return f"{v:,.{decimals}f}"


def text_width(s: str, size: float) -> float:
    """Rough width of a text in user units (Hangul is about square, Latin about 0.55 em)."""
    return sum(size * (0.95 if ord(c) > 0x2E80 else 0.56) for c in s)


@dataclass
class Chart:
    """Shapes in a w x h box (SVG pixels; the PDF scales them to millimetres)."""

    w: float
    h: float
    title: str
    shapes: list[tuple] = field(default_factory=list)

    def line(self, x1, y1, x2, y2, colour=INK, width=1.0, dash: str = "") -> None:
        self.shapes.append(("line", x1, y1, x2, y2, colour, width, dash))

    def rect(self, x, y, w, h, fill=None, opacity=1.0, stroke=None) -> None:
        self.shapes.append(("rect", x, y, w, h, fill, opacity, stroke))

    def circle(self, x, y, r, fill) -> None:
        self.shapes.append(("circle", x, y, r, fill))

    def text(self, x, y, s: str, size=11.0, anchor="start", colour=INK, bold=False) -> None:
        self.shapes.append(("text", x, y, s, size, anchor, colour, bold))

    def kinds(self) -> set[str]:
        return {s[0] for s in self.shapes}


class Axes:
    """A plot area with a y axis in round ticks and its unit, and x positions for n slots."""

    def __init__(self, c: Chart, values: list[float], n: int, y_title: str, left=52.0, right=12.0, top=44.0,
                 bottom=62.0) -> None:
        self.c, self.n = c, max(n, 1)
        self.ticks = nice_ticks(min(values), max(values))
        self.lo, self.hi = self.ticks[0], self.ticks[-1]
        self.left, self.right, self.top, self.bottom = left, c.w - right, top, c.h - bottom
        for t in self.ticks:
            y = self.y(t)
            c.line(self.left, y, self.right, y, GRID, 0.6)
            c.text(self.left - 4, y + 3.5, tick_text(t, self.ticks), 10, "end")
        c.line(self.left, self.top, self.left, self.bottom, INK, 0.8)
        c.line(self.left, self.bottom, self.right, self.bottom, INK, 0.8)
        c.text(8, self.top - 10, y_title, 10, "start")

    def x(self, i: float) -> float:
        return self.left + (self.right - self.left) * (i + 0.5) / self.n

    def y(self, v: float) -> float:
        return self.bottom - (self.bottom - self.top) * (v - self.lo) / ((self.hi - self.lo) or 1.0)


def legend(c: Chart, items: list[tuple[str, str, str]], y: float, x0: float = 62.0) -> None:
    """One row (wrapping) of legend marks: (kind, colour, text), kind in point/line/dash/box."""
    x = x0
    for kind, colour, text in items:
        need = 22 + text_width(text, 10) + 14
        if x + need > c.w - 8 and x > x0:
            x, y = x0, y + 15
        if kind == "point":
            c.circle(x + 6, y - 3.5, 3, colour)
        elif kind == "box":
            c.rect(x, y - 8, 14, 9, colour, 0.25, colour)
        else:
            c.line(x, y - 3.5, x + 16, y - 3.5, colour, 2.0 if kind == "rollout" else 1.2, "4 3" if kind == "dash" else "")
        c.text(x + 20, y, text, 10)
        x += need


def control_chart(rows: list[dict], values: list[float | None], limits: dict, rollout: str, title: str, y_title: str,
                  labels: dict[str, str], w: float = 540, h: float = 320) -> Chart | None:
    """Daily values with per-phase XmR mean and limits, commissioning shaded, the rollout marked."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    c = Chart(w, h, title)
    bounds = known + [lim[k] for lim in limits.values() if lim for k in ("ucl", "lcl") if lim[k] is not None]
    ax = Axes(c, bounds, len(rows), y_title)
    c.text(8, 16, title, 12, bold=True)
    for i, r in enumerate(rows):
        if r["phase"] == "commissioning":
            c.rect(ax.x(i - 0.5), ax.top, ax.x(1) - ax.x(0), ax.bottom - ax.top, COMMISSION, 0.15)
    for phase, colour in (("before", BEFORE), ("after", AFTER)):
        idx = [i for i, r in enumerate(rows) if r["phase"] == phase]
        lim = limits.get(phase)
        if idx and lim:
            xa, xb = ax.x(idx[0] - 0.5), ax.x(idx[-1] + 0.5)
            c.line(xa, ax.y(lim["mean"]), xb, ax.y(lim["mean"]), colour, 1.4)
            for k in ("ucl", "lcl"):
                if lim[k] is not None:
                    c.line(xa, ax.y(lim[k]), xb, ax.y(lim[k]), colour, 0.7, "8 5")
    ri = next((i for i, r in enumerate(rows) if r["date"] >= rollout), None)
    if ri is not None:
        xr = ax.x(ri - 0.5)
        c.line(xr, ax.top, xr, ax.bottom, ROLLOUT, 2.0)
    prev = None
    for i, v in enumerate(values):
        if v is None:
            prev = None
            continue
        if prev is not None:
            c.line(ax.x(prev[0]), ax.y(prev[1]), ax.x(i), ax.y(v), "#9ca3af", 0.8)
        prev = (i, v)
    phase_colour = {"before": BEFORE, "after": AFTER, "commissioning": COMMISSION}
    for i, v in enumerate(values):
        if v is not None:
            c.circle(ax.x(i), ax.y(v), 2.3, phase_colour[rows[i]["phase"]])
    step = max(1, math.ceil(len(rows) / 7))
    for i in range(0, len(rows), step):
        c.line(ax.x(i), ax.bottom, ax.x(i), ax.bottom + 4, INK, 0.8)
        c.text(ax.x(i), ax.bottom + 15, rows[i]["date"][5:], 10, "middle")
    items = [("point", BEFORE, labels["legend_before"]), ("point", AFTER, labels["legend_after"])]
    if any(r["phase"] == "commissioning" for r in rows):
        items.append(("point", COMMISSION, labels["legend_commissioning"]))
    items += [("line", INK, labels["legend_mean"]), ("dash", INK, labels["legend_limits"]),
              ("rollout", ROLLOUT, f"{labels['rollout']} {rollout}")]
    legend(c, items, ax.bottom + 34)
    return c


def distribution(groups: dict[str, np.ndarray], title: str, y_title: str, labels: dict[str, str],
                 w: float = 240, h: float = 320) -> Chart | None:
    """Box plots of the daily values before and after, every day a dot."""
    allv = np.concatenate([g for g in groups.values()]) if groups else np.array([])
    if not len(allv):
        return None
    c = Chart(w, h, title)
    ax = Axes(c, [float(allv.min()), float(allv.max())], 2, y_title)
    c.text(8, 16, title, 12, bold=True)
    for i, (phase, colour) in enumerate((("before", BEFORE), ("after", AFTER))):
        v = groups.get(phase, np.array([]))
        cx = ax.x(i)
        if len(v):
            q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])
            c.line(cx, ax.y(v.max()), cx, ax.y(v.min()), colour, 1.0)
            c.rect(cx - 24, ax.y(q3), 48, max(ax.y(q1) - ax.y(q3), 1.0), colour, 0.2, colour)
            c.line(cx - 24, ax.y(med), cx + 24, ax.y(med), colour, 2.5)
            for j, x in enumerate(v):
                c.circle(cx + ((j * 37) % 41 - 20) * 0.7, ax.y(float(x)), 2.0, colour)
        c.text(cx, ax.bottom + 15, f"{labels[phase]} (n={len(v)})", 10, "middle")
    for k, part in enumerate(labels["legend_box"].split(", ")):  # narrow chart: one legend entry a line
        c.text(8, ax.bottom + 34 + 13 * k, part, 10)
    return c


def pareto(before: list[dict], after: list[dict], reason_label, title: str, x_title: str, labels: dict[str, str],
           w: float = 760, h: float | None = None, kinds: tuple[str, ...] = ("unplanned", "unknown")) -> Chart | None:
    """Stop hours by reason, before and after side by side, largest (before or after) first.

    Only the ``kinds`` that cost availability (unplanned stops, no data): hours off shift are
    planned time and would flatten every other bar; the tables keep every reason."""
    reasons: dict[str, list[float]] = {}
    for k, rows in enumerate((before, after)):
        for r in rows:
            if r["kind"] not in kinds:
                continue
            reasons.setdefault(r["reason"], [0.0, 0.0])[k] = r["hours"]
    if not reasons:
        return None
    order = sorted(reasons, key=lambda r: -max(reasons[r]))
    bar, gap = 9.0, 8.0
    h = h or 60 + len(order) * (2 * bar + gap) + 60
    c = Chart(w, h, title)
    c.text(10, 14, title, 12, bold=True)
    names = [reason_label(r) for r in order]
    left = 16 + max(text_width(n, 10) for n in names)
    ticks = nice_ticks(0.0, max(max(v) for v in reasons.values()))
    top, right = 30.0, w - 16
    bottom = top + len(order) * (2 * bar + gap)
    X = lambda v: left + (right - left) * v / (ticks[-1] or 1.0)  # noqa: E731
    for t in ticks:
        c.line(X(t), top, X(t), bottom, GRID, 0.6)
        c.text(X(t), bottom + 14, tick_text(t, ticks), 10, "middle")
    c.text((left + right) / 2, bottom + 30, x_title, 10, "middle")
    for i, reason in enumerate(order):
        y = top + i * (2 * bar + gap) + gap / 2
        c.text(left - 6, y + bar + 3, names[i], 10, "end")
        for k, colour in ((0, BEFORE), (1, AFTER)):
            c.rect(left, y + k * bar, max(X(reasons[reason][k]) - left, 0.5), bar - 1, colour, 0.85)
    c.line(left, top, left, bottom, INK, 0.8)
    legend(c, [("box", BEFORE, labels["before"]), ("box", AFTER, labels["after"])], bottom + 48, left)
    return c


# -- writers -----------------------------------------------------------------------------------
def to_svg(c: Chart) -> str:
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {c.w:.0f} {c.h:.0f}" width="{c.w:.0f}" '
           f'height="{c.h:.0f}" role="img" font-family="sans-serif"><title>{html.escape(c.title)}</title>']
    for s in c.shapes:
        if s[0] == "line":
            _, x1, y1, x2, y2, colour, width, dash = s
            d = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
                       f'stroke-width="{width}"{d}/>')
        elif s[0] == "rect":
            _, x, y, w, h, fill, opacity, stroke = s
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill or "none"}" '
                       f'fill-opacity="{opacity}"' + (f' stroke="{stroke}"' if stroke else "") + "/>")
        elif s[0] == "circle":
            _, x, y, r, fill = s
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}"/>')
        else:
            _, x, y, text, size, anchor, colour, bold = s
            out.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{colour}"'
                       + (' font-weight="bold"' if bold else "") + f">{html.escape(text)}</text>")
    return "".join(out) + "</svg>"


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def to_pdf(pdf, c: Chart, x0: float, y0: float, width_mm: float) -> float:
    """Draws the chart at (x0, y0) mm, ``width_mm`` wide; returns its height in mm."""
    k = width_mm / c.w
    pt = k / 0.3528 * 0.75  # SVG pixel font sizes to points at this scale (a little smaller: fpdf2 fonts run wide)
    for s in c.shapes:
        if s[0] == "line":
            _, x1, y1, x2, y2, colour, width, dash = s
            pdf.set_draw_color(*_rgb(colour))
            pdf.set_line_width(max(width * k, 0.1))
            if dash:
                a, b = (float(v) for v in dash.split())
                pdf.set_dash_pattern(dash=a * k, gap=b * k)
            pdf.line(x0 + x1 * k, y0 + y1 * k, x0 + x2 * k, y0 + y2 * k)
            if dash:
                pdf.set_dash_pattern()
        elif s[0] == "rect":
            _, x, y, w, h, fill, opacity, stroke = s
            style = ("F" if fill else "") + ("D" if stroke else "")
            if fill:
                pdf.set_fill_color(*_rgb(fill))
            if stroke:
                pdf.set_draw_color(*_rgb(stroke))
                pdf.set_line_width(0.2)
            with pdf.local_context(fill_opacity=opacity):
                pdf.rect(x0 + x * k, y0 + y * k, w * k, h * k, style=style or "D")
        elif s[0] == "circle":
            _, x, y, r, fill = s
            pdf.set_fill_color(*_rgb(fill))
            pdf.circle(x=x0 + x * k, y=y0 + y * k, radius=r * k, style="F")
        else:
            _, x, y, text, size, anchor, colour, bold = s
            pdf.set_font(size=size * pt)
            pdf.set_text_color(*_rgb(colour))
            tw = pdf.get_string_width(text)
            dx = {"start": 0.0, "middle": tw / 2, "end": tw}[anchor]
            pdf.text(x0 + x * k - dx, y0 + y * k, text)
    pdf.set_text_color(0, 0, 0)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.2)
    return c.h * k

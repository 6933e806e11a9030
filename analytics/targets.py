"""Achievement (달성률) against the targets an SME declared in its rollout plan.

A target is a signed change (+10% output per hour, -20% defect rate). Its improvement follows
the programme's convention (positive is better), and achievement = actual improvement /
target improvement x 100: 100% means the target was met, 50% half of it.
"""

from __future__ import annotations

from analytics.delivery import DELIVERY_BY_KEY
from analytics.kpi import KPI_BY_KEY

SPECS = {**KPI_BY_KEY, **DELIVERY_BY_KEY}


def check_target(kpi: str, change_pct: float) -> None:
    """Refuse a target the report cannot judge: unknown KPI, zero or wrong-way change."""
    spec = SPECS.get(kpi)
    if spec is None or kpi == "coverage":
        raise ValueError(f"kpi {kpi!r} is not a report KPI: use one of {', '.join(k for k in SPECS if k != 'coverage')}")
    if change_pct == 0 or abs(change_pct) > 1000:
        raise ValueError(f"{kpi}: target change {change_pct:+g}% must be non-zero and within ±1000%")
    if (change_pct > 0) != spec.higher_is_better:
        better = "an increase (+)" if spec.higher_is_better else "a reduction (-)"
        raise ValueError(f"{kpi}: a target of {change_pct:+g}% moves it the bad way; its improvement is {better}")


def achievement(kpis: list[dict], targets: list[dict], lines: set[str]) -> list[dict]:
    """One row per target that applies to the report's lines (a target without a line applies to all)."""
    by_key = {c["key"]: c for c in kpis}
    out = []
    for t in targets:
        if t.get("line") and t["line"] not in lines:
            continue
        spec = SPECS[t["kpi"]]
        target_impr = t["change_pct"] if spec.higher_is_better else -t["change_pct"]
        c = by_key.get(t["kpi"])
        actual_change = c.get("change_pct") if c else None
        actual_impr = c.get("improvement_pct") if c else None
        ach = None if actual_impr is None or not target_impr else actual_impr / target_impr * 100
        out.append({"key": t["kpi"], "line": t.get("line"), "target_change_pct": t["change_pct"],
                    "target_improvement_pct": target_impr, "actual_change_pct": actual_change,
                    "actual_improvement_pct": actual_impr, "achievement_pct": ach,
                    "achieved": ach is not None and ach >= 100, "significant": bool(c and c.get("significant")),
                    "pqcd": spec.pqcd, "note": t.get("note")})
    return out

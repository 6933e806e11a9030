"""The SME's declared target KPIs (rollout plan) and what a report needs from the plant model.

``annotate`` gives a report the display names (company, site, line and machine names instead
of slugs) and the achievement against each target; the API, the CLI and the scheduled
delivery call it after building a report.
"""

from __future__ import annotations

from sqlalchemy import select

from analytics.targets import achievement, check_target
from plantmodel.db import KpiTarget, PlantDb, Tenant


def _tenant(s, slug: str) -> Tenant:
    t = s.scalars(select(Tenant).filter_by(slug=slug)).first()
    if t is None:
        raise LookupError(f"no tenant {slug!r}")
    return t


def list_targets(plant: PlantDb, tenant: str) -> list[dict]:
    with plant.session() as s:
        t = _tenant(s, tenant)
        rows = s.scalars(select(KpiTarget).where(KpiTarget.tenant_id == t.id).order_by(KpiTarget.line, KpiTarget.kpi))
        return [{"kpi": r.kpi, "line": r.line, "change_pct": r.change_pct, "note": r.note} for r in rows]


def set_targets(plant: PlantDb, tenant: str, targets: list[dict], replace: bool = False) -> list[dict]:
    """Create or update targets by (line, kpi); with ``replace`` the tenant's other targets are removed.

    Every target is checked first (analytics.targets.check_target): all are stored or none.
    """
    for t in targets:
        check_target(t["kpi"], float(t["change_pct"]))
    with plant.session() as s, s.begin():
        ten = _tenant(s, tenant)
        lines = {ln.slug for site in ten.sites for ln in site.lines}
        for t in targets:
            if t.get("line") and t["line"] not in lines:
                raise ValueError(f"line {t['line']!r} is not a line of {tenant} ({', '.join(sorted(lines)) or 'none'})")
        existing = {(r.line, r.kpi): r for r in s.scalars(select(KpiTarget).where(KpiTarget.tenant_id == ten.id))}
        keep = set()
        for t in targets:
            key = (t.get("line") or None, t["kpi"])
            keep.add(key)
            row = existing.get(key) or KpiTarget(tenant_id=ten.id, line=key[0], kpi=t["kpi"])
            row.change_pct, row.note = float(t["change_pct"]), t.get("note")
            s.add(row)
        if replace:
            for key, row in existing.items():
                if key not in keep:
                    s.delete(row)
    return list_targets(plant, tenant)


def report_names(plant: PlantDb, tenant: str) -> dict | None:
    """Display names of a tenant's plant model, keyed by slug (``report['names']``)."""
    with plant.session() as s:
        t = s.scalars(select(Tenant).filter_by(slug=tenant)).first()
        if t is None:
            return None
        sites = {x.slug: x.name for x in t.sites}
        lines = {ln.slug: ln.name for x in t.sites for ln in x.lines}
        machines = {m.slug: m.name for x in t.sites for ln in x.lines for m in ln.machines}
        en = {"tenant": t.name_en, "sites": {x.slug: x.name_en for x in t.sites if x.name_en},
              "lines": {ln.slug: ln.name_en for x in t.sites for ln in x.lines if ln.name_en},
              "machines": {m.slug: m.name_en for x in t.sites for ln in x.lines for m in ln.machines if m.name_en}}
        return {"tenant": t.name, "sites": sites, "lines": lines, "machines": machines, "en": en}


def annotate(report: dict, plant: PlantDb | None) -> dict:
    """Names and target achievement from the plant model; a report of a tenant not in it is left as is."""
    if plant is None or report.get("kind") not in ("before_after", "period"):
        return report
    tenant = report["scope"]["tenant"]
    names = report_names(plant, tenant)
    if names is None:
        return report
    report["names"] = names
    if report["kind"] == "before_after":
        report["targets"] = achievement(report["kpis"], list_targets(plant, tenant), set(report["scope"]["line"].split(",")))
    return report


__all__ = ["annotate", "list_targets", "report_names", "set_targets"]

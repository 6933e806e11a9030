"""One source for rollout dates, ideal cycle times, time zones and shifts: the plant model.

A centre records each SME's rollout date, its machines' ideal cycle times, its time zone and
its lines' shifts in the plant model (``plantmodel.db``, seeded or edited there). Reports read
their settings from the config's ``analytics`` section, which could say the same things
differently. The rules, applied wherever a report is made (API and ``smartfactory report``):

- a tenant with its own ``analytics.tenants.<slug>`` policy keeps it as written: an explicit
  override, for what the plant model cannot say (state classification, tags, product cycles);
- any other tenant gets the default policy completed from the plant model: its time zone,
  each machine's ideal cycle time (``line/machine``), and its shifts (with their weekdays)
  when all its lines share them;
- rollouts: every ``analytics.rollouts`` entry, plus one per line whose rollout date the plant
  model knows (the machines' common date, else the tenant's) that no entry covers.

Conflicts are logged and resolved the same way each time, never silently different.
"""

from __future__ import annotations

import logging
from datetime import date

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from analytics.policy import WEEKDAYS, Policy, ShiftDef
from analytics.settings import AnalyticsSettings, RolloutDef
from plantmodel.db import Line, PlantDb, Site, Tenant

log = logging.getLogger(__name__)


def _days(weekdays: str) -> list[str]:
    """The plant model's "01234" (Monday = 0) as the policy's weekday names: a closed Sunday stays closed."""
    return [WEEKDAYS[int(c)] for c in sorted(set(weekdays)) if c.isdigit() and int(c) < 7] or list(WEEKDAYS)


def _hhmm(minute: int) -> str:
    return f"{minute // 60 % 24:02d}:{minute % 60:02d}"


def effective_settings(settings: AnalyticsSettings, plant: PlantDb) -> AnalyticsSettings:
    tenants_policy = dict(settings.tenants)
    rollouts = list(settings.rollouts)
    with plant.session() as s:
        # the whole tree in a few queries, not several per tenant (thousands of tenants on a centre's portfolio)
        tree = selectinload(Tenant.sites).selectinload(Site.lines)
        for t in s.scalars(select(Tenant).order_by(Tenant.slug).options(
                tree.selectinload(Line.machines), tree.selectinload(Line.shifts))):
            if t.slug not in settings.tenants:
                tenants_policy[t.slug] = _policy_from_plant(settings.default, t)
            rollouts += _rollouts_from_plant(t, settings.rollouts)
    return settings.model_copy(update={"tenants": tenants_policy, "rollouts": rollouts})


def _policy_from_plant(default: Policy, t: Tenant) -> Policy:
    lines = [ln for site in t.sites for ln in site.lines]
    ideal = dict(default.ideal_cycle_s)
    ideal.update({f"{ln.slug}/{m.slug}": m.ideal_cycle_s for ln in lines for m in ln.machines})
    base = default.model_dump()
    base.update(timezone=t.timezone, ideal_cycle_s=ideal)
    calendars = {tuple((sh.name, sh.start_minute, sh.end_minute, sh.weekdays or "0123456") for sh in ln.shifts)
                 for ln in lines if ln.shifts}
    if len(calendars) == 1:
        shifts = [ShiftDef(name=n[:20], start=_hhmm(a), end=_hhmm(b), days=_days(w)).model_dump()
                  for n, a, b, w in next(iter(calendars))]
        try:
            return Policy.model_validate({**base, "shifts": shifts})
        except ValidationError as exc:
            log.warning("plant_shifts_not_used tenant=%s reason=%r fix=set analytics.tenants.%s.shifts or bucket_min",
                        t.slug, exc.errors()[0]["msg"], t.slug)
    elif len(calendars) > 1:
        log.info("plant_shifts_differ_per_line tenant=%s lines=%d note=per-shift KPIs use the default shifts",
                 t.slug, len(calendars))
    return Policy.model_validate(base)


def _rollouts_from_plant(t: Tenant, configured: list[RolloutDef]) -> list[RolloutDef]:
    out = []
    for site in t.sites:
        for ln in site.lines:
            if any(r.tenant == t.slug and (r.line is None or r.line == ln.slug) for r in configured):
                continue  # the config's entry says more (commissioning days, window) and wins
            own: set[date] = {m.rollout_date for m in ln.machines if m.rollout_date is not None}
            if len(own) > 1:
                log.warning("plant_rollout_ambiguous tenant=%s line=%s dates=%s fix=give the line's machines one date "
                            "or add an analytics.rollouts entry", t.slug, ln.slug, sorted(d.isoformat() for d in own))
                continue
            when = next(iter(own)) if own else t.rollout_date
            if when is not None:
                out.append(RolloutDef(tenant=t.slug, site=site.slug, line=ln.slug, date=when))
    return out

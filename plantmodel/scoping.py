"""Tenant scoping: the one place the ownership chain alarm → rule → machine → line → site → tenant is joined.

Every query that must stay inside one tenant starts from some row of the chain and joins up
to ``Tenant`` here, so ``Tenant.slug == tenant`` can scope it; a mistake in the joins would
leak across tenants, so they are written once.
"""

from __future__ import annotations

from sqlalchemy import Select, select

from plantmodel.db import Alarm, AlarmRule, Line, Machine, Site, Tenant

# (child, parent, join condition), from the leaf up to the tenant
_CHAIN = (
    (Alarm, AlarmRule, Alarm.rule_id == AlarmRule.id),
    (AlarmRule, Machine, AlarmRule.machine_id == Machine.id),
    (Machine, Line, Machine.line_id == Line.id),
    (Line, Site, Line.site_id == Site.id),
    (Site, Tenant, Site.tenant_id == Tenant.id),
)
_CHILDREN = [child for child, _, _ in _CHAIN]


def up_to_tenant(query: Select, start: type) -> Select:
    """``query`` (selecting from ``start``) joined up the chain to ``Tenant``."""
    if start not in _CHILDREN:
        raise ValueError(f"{start.__name__} is not in the ownership chain ({', '.join(c.__name__ for c in _CHILDREN)})")
    for _, parent, on in _CHAIN[_CHILDREN.index(start):]:
        query = query.join(parent, on)
    return query


def in_tenant(query: Select, start: type, tenant: str) -> Select:
    """``query`` restricted to rows of ``start`` that belong to ``tenant``."""
    return up_to_tenant(query, start).where(Tenant.slug == tenant)


def alarm_in_tenant(tenant: str, alarm_id: int) -> Select:
    """The alarm with that id if it belongs to the tenant; another tenant's id finds nothing."""
    return in_tenant(select(Alarm), Alarm, tenant).where(Alarm.id == alarm_id)

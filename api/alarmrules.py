"""Alarm rules as SME owners manage them: the request body, its checks, and edits that leave no orphan alarms.

The checks go past the body's types (pydantic) to what only the plant knows: the tags a
machine reports (what its gateway reads from the PLC's register map, as seen in the store),
the tenant's state codes (its analytics policy) and the names already taken on the machine.
Each problem is a 422 in FastAPI's own shape, ``{"detail": [{"loc": ["body", field], "msg",
"type", "ctx"}]}``, so API clients and the web form read one format for type errors and these.

Changing what a rule tests (machine, kind, tag, operator, threshold, state, duration) clears
its open alarms with reason ``rule_changed``; renaming keeps them, and so does changing its
delays or deadband (they change when the alarm is raised or cleared, not what it is about). Deleting a rule marks it
deleted and clears its open alarms with ``rule_deleted``; the history of its alarms stays.
The engine reads the rules on every tick, so it follows both without a restart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plantmodel.db import MAX_ALARM_DELAY_S, Alarm, AlarmRule, Line, Machine, Site, Tenant, deadband_problem
from plantmodel.scoping import in_tenant, up_to_tenant
from plant import IDENTIFIER_PATTERN, MachineRef
from tsstore import StoreError, TimeSeriesStore

#: The fields that decide when a rule holds; changing any of them ends its open alarms.
CONDITION_FIELDS = ("machine_id", "kind", "tag", "op", "threshold", "state", "duration_s")


class RuleIn(BaseModel):
    """A rule as the API takes it (POST adds one, PUT replaces one); fields of the other kind are dropped."""

    site: str = Field(pattern=IDENTIFIER_PATTERN)
    line: str = Field(pattern=IDENTIFIER_PATTERN)
    machine: str = Field(pattern=IDENTIFIER_PATTERN)
    name: str = Field(min_length=1, max_length=100, description="shown with the alarm; unique per machine")
    kind: Literal["threshold", "state_duration"]
    tag: str = Field(pattern=IDENTIFIER_PATTERN, description="a tag the machine reports, e.g. press_force or state")
    op: Literal[">", ">=", "<", "<=", "==", "!="] | None = Field(
        default=None, description="threshold rules: the alarm holds while `value op threshold`")
    threshold: float | None = Field(default=None, description="threshold rules: a finite number")
    state: int | None = Field(default=None, description="state_duration rules: a state code of the tenant")
    duration_s: float | None = Field(default=None, description="state_duration rules: seconds in the state, > 0")
    on_delay_s: float = Field(default=0.0, description="threshold rules: seconds the condition must hold before "
                              "the alarm is raised (ISA-18.2 on-delay); 0 to 3600, 0 raises at once")
    off_delay_s: float = Field(default=0.0, description="seconds the alarm's clear condition must hold before it "
                               "clears (ISA-18.2 off-delay); 0 to 3600, 0 clears at once")
    deadband: float = Field(default=0.0, description="threshold rules with > >= < <=: how far back past the "
                            "threshold the value must go for the alarm to clear, in the tag's unit; >= 0")


@dataclass(frozen=True)
class MachineTags:
    """The tags a machine reports (tag → numeric?), or None with the reason they are unknown."""

    tags: dict[str, bool] | None
    unknown_because: str | None = None


def machine_tags(store: TimeSeriesStore, ref: MachineRef) -> MachineTags:
    try:
        latest = store.latest(ref)
    except StoreError as exc:
        return MachineTags(None, f"the time-series store did not answer ({exc})")
    if not latest:
        return MachineTags(None, f"machine {ref.machine} has reported no data yet")
    return MachineTags({tag: not isinstance(v.value, str) for tag, v in latest.items()})


def _error(field: str, kind: str, msg: str, **ctx) -> dict:
    return {"type": f"alarm_rule.{kind}", "loc": ["body", field], "msg": msg, "ctx": ctx}


def _states_text(states: dict[int, str]) -> str:
    return ", ".join(f"{code} {name}" for code, name in sorted(states.items()))


def check_rule(body: RuleIn, tags: MachineTags, states: dict[int, str], taken: set[str]) -> tuple[list[dict], list[str]]:
    """Problems (422 errors, one per field) and warnings (saved anyway) of a rule for one machine."""
    errors: list[dict] = []
    warnings: list[str] = []
    if not body.name.strip():
        errors.append(_error("name", "name_blank", "name is blank: give the rule a name people will recognise on the "
                                                   "dashboard, e.g. 'press force > 830 kN'"))
    elif body.name in taken:
        errors.append(_error("name", "name_taken", f"name {body.name!r} is already used by another rule of machine "
                                                   f"{body.machine}: choose another name", name=body.name))
    if body.kind == "threshold":
        if body.op is None:
            errors.append(_error("op", "op_missing", "op is missing: a threshold rule compares the tag's value with the "
                                                     "threshold; choose one of >, >=, <, <=, ==, !="))
        if body.threshold is None:
            errors.append(_error("threshold", "threshold_missing", "threshold is missing: a threshold rule needs the "
                                 "number to compare the tag's value with, e.g. 830"))
        elif not math.isfinite(body.threshold):
            errors.append(_error("threshold", "threshold_not_finite",
                                 f"threshold must be a finite number (got {body.threshold})"))
        errors += _check_delay("on_delay_s", body.on_delay_s, "the condition must hold before the alarm is raised")
        errors += _check_deadband(body)
    else:
        if body.state is None:
            errors.append(_error("state", "state_missing", "state is missing: a state_duration rule needs the state "
                                 f"code to watch, one of: {_states_text(states)}", states=_states_text(states)))
        elif body.state not in states:
            errors.append(_error("state", "state_unknown", f"state {body.state} is not a state code of this tenant: "
                                 f"use one of: {_states_text(states)}", state=body.state, states=_states_text(states)))
        if body.duration_s is None:
            errors.append(_error("duration_s", "duration_missing", "duration_s is missing: a state_duration rule needs "
                                 "how many seconds the machine must stay in the state before the alarm is raised, "
                                 "e.g. 300"))
        elif not math.isfinite(body.duration_s) or body.duration_s <= 0:
            errors.append(_error("duration_s", "duration_not_positive", f"duration_s must be more than 0 seconds "
                                 f"(got {body.duration_s}): how long the machine must stay in the state before the "
                                 "alarm is raised", value=body.duration_s))
    errors += _check_delay("off_delay_s", body.off_delay_s, "the alarm's clear condition must hold before it "
                           "clears")
    if tags.tags is None:
        warnings.append(f"tag {body.tag!r} was not checked: {tags.unknown_because}")
    elif body.tag not in tags.tags:
        known = ", ".join(sorted(tags.tags))
        errors.append(_error("tag", "tag_unknown", f"machine {body.machine} does not report a tag {body.tag!r}: use "
                             f"one of: {known} (the tags its gateway reads)", tag=body.tag, tags=known))
    elif not tags.tags[body.tag]:
        numeric = ", ".join(sorted(t for t, is_num in tags.tags.items() if is_num))
        errors.append(_error("tag", "tag_text", f"tag {body.tag!r} of machine {body.machine} carries text, and a rule "
                             f"compares numbers: use one of: {numeric}", tag=body.tag, tags=numeric))
    return errors, warnings


def _check_delay(field: str, value: float, what: str) -> list[dict]:
    if not value >= 0:  # NaN too
        return [_error(field, "delay_negative", f"{field} must be 0 or more seconds (got {value}): how long {what}; "
                       "0 means at once", value=value)]
    if value > MAX_ALARM_DELAY_S:
        return [_error(field, "delay_too_long", f"{field} must be at most {MAX_ALARM_DELAY_S:.0f} seconds, one hour (got "
                       f"{value}): a longer delay hides a real alarm for longer than anyone can act on it; for a "
                       "condition that matters only when it lasts, use a state_duration rule", value=value,
                       max=MAX_ALARM_DELAY_S)]
    return []


def _check_deadband(body: RuleIn) -> list[dict]:
    """A deadband must be a distance, only where there is a side to come back to, and not so wide that the
    alarm would clear only beyond zero (practically never)."""
    d = body.deadband
    if not math.isfinite(d) or d < 0:
        return [_error("deadband", "deadband_negative", f"deadband must be 0 or more, in the tag's unit (got {d}): "
                       "how far back past the threshold the value must go before the alarm clears; 0 clears at the "
                       "threshold", value=d)]
    problem = deadband_problem(body.op, body.threshold, d)
    if problem == "with_equality":
        return [_error("deadband", "deadband_with_equality", f"deadband applies to >, >=, <, <= rules, and this rule "
                       f"compares with {body.op}: set deadband to 0 and use off_delay_s to keep it from flapping",
                       op=body.op)]
    t = body.threshold
    if problem == "too_large" and t is not None:
        clear = t - d if body.op in (">", ">=") else t + d
        example = f"{abs(t) * 0.02:.3g}"
        return [_error("deadband", "deadband_too_large", f"deadband {d:g} is as large as the threshold {t:g} or "
                       f"larger: the alarm would clear only at {clear:g}, beyond zero, so practically never; a "
                       f"deadband is usually 1-5 % of the tag's range, e.g. {example} (2 % of {abs(t):g})",
                       deadband=d, threshold=t, clear=clear, example=example)]
    return []


def raise_if(errors: list[dict]) -> None:
    if errors:
        raise RequestValidationError(errors)


def condition(body: RuleIn, machine_id: int) -> dict:
    """The rule's columns from the body, keeping only the fields of its kind."""
    threshold = body.kind == "threshold"
    return {"machine_id": machine_id, "name": body.name, "kind": body.kind, "tag": body.tag,
            "op": body.op if threshold else None, "threshold": body.threshold if threshold else None,
            "state": None if threshold else body.state, "duration_s": None if threshold else body.duration_s,
            "on_delay_s": body.on_delay_s if threshold else 0.0, "off_delay_s": body.off_delay_s,
            "deadband": body.deadband if threshold else 0.0}


def _machine_query():
    return up_to_tenant(select(Machine, Site.slug, Line.slug), Machine)


def find_machine(s: Session, tenant: str, site: str, line: str, machine: str) -> Machine | None:
    row = s.execute(_machine_query().where(Tenant.slug == tenant, Site.slug == site, Line.slug == line,
                                           Machine.slug == machine)).first()
    return row[0] if row else None


def tenant_machines(s: Session, tenant: str, site: str | None = None, line: str | None = None) -> list[tuple]:
    """(machine, site slug, line slug) of the tenant, optionally of one site or line."""
    q = _machine_query().where(Tenant.slug == tenant)
    if site:
        q = q.where(Site.slug == site)
    if line:
        q = q.where(Line.slug == line)
    return [tuple(r) for r in s.execute(q.order_by(Site.slug, Line.slug, Machine.slug)).all()]


def find_rule(s: Session, tenant: str, rule_id: int) -> AlarmRule | None:
    """A live (not deleted) rule of the tenant; another tenant's rule id finds nothing."""
    return s.execute(in_tenant(select(AlarmRule), AlarmRule, tenant)
                     .where(AlarmRule.id == rule_id, AlarmRule.deleted_ms.is_(None))).scalar_one_or_none()


def taken_names(s: Session, machine_id: int, except_rule: int | None = None) -> set[str]:
    q = select(AlarmRule.name).where(AlarmRule.machine_id == machine_id, AlarmRule.deleted_ms.is_(None))
    if except_rule is not None:
        q = q.where(AlarmRule.id != except_rule)
    return set(s.scalars(q))


def list_rules(s: Session, tenant: str, site: str | None = None, line: str | None = None) -> list[dict]:
    """The tenant's live rules, each with how many of its alarms are open (active or acknowledged)."""
    open_counts = dict(s.execute(select(Alarm.rule_id, func.count()).where(Alarm.cleared_ms.is_(None))
                                 .group_by(Alarm.rule_id)).all())
    q = (in_tenant(select(AlarmRule, Machine.slug, Line.slug, Site.slug).select_from(AlarmRule), AlarmRule, tenant)
         .where(AlarmRule.deleted_ms.is_(None)))
    if site:
        q = q.where(Site.slug == site)
    if line:
        q = q.where(Line.slug == line)
    return [rule_out(x, site_slug, ln, m, open_counts.get(x.id, 0))
            for x, m, ln, site_slug in s.execute(q.order_by(AlarmRule.id)).all()]


def rule_out(rule: AlarmRule, site: str, line: str, machine: str, open_alarms: int) -> dict:
    return {"id": rule.id, "site": site, "line": line, "machine": machine, "name": rule.name, "kind": rule.kind,
            "tag": rule.tag, "op": rule.op, "threshold": rule.threshold, "state": rule.state,
            "duration_s": rule.duration_s, "on_delay_s": rule.on_delay_s, "off_delay_s": rule.off_delay_s,
            "deadband": rule.deadband, "open_alarms": open_alarms}

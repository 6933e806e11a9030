"""Alarms: threshold and state-duration rules per tag, with an active → acknowledged → cleared life.

``evaluate``, ``ended``, ``held_since`` and ``step`` are pure. ``AlarmEngine`` runs in the API
process: once a second it reads the newest values of every machine that has rules, raises an
alarm when a rule starts to hold and clears it when the rule stops holding. Stale or missing
data changes nothing: an alarm is neither raised nor cleared on silence (the dashboard shows
the machine as stale).

Against flapping, as ISA-18.2 and Ignition do it: an on-delay (the condition must hold for
``on_delay_s`` before the alarm is raised), an off-delay (the alarm clears only after the
clear condition has held for ``off_delay_s``) and a deadband (a ``> 830`` rule with deadband 20
clears only at or below 810). The delays are measured on the samples' own timestamps, read back
from the store while a transition is pending, so the engine keeps no memory of its own: a
restart, or another worker taking over, neither raises early nor clears early.

Rules are read from the plant database on every tick, so a rule added, edited or deleted
through the API takes effect within a tick, without a restart. The API clears the open
alarms of a rule whose condition it changes or that it deletes (``clear_open_alarms``); the
engine also clears, on every tick, any open alarm whose rule is deleted, so an alarm raised
by a tick that raced the delete does not stay open.
"""

from __future__ import annotations

import logging
import operator
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select

from api.caches import Revision
from plantmodel.db import Alarm, AlarmRule, Line, Machine, PlantDb, Site, Tenant
from plantmodel.scoping import up_to_tenant
from plant import MachineRef
from tsstore import StoreError, TimeSeriesStore

log = logging.getLogger(__name__)

OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne}


@dataclass(frozen=True)
class RuleSpec:
    kind: str  # "threshold" | "state_duration"
    tag: str
    op: str | None = None
    threshold: float | None = None
    state: int | None = None
    duration_s: float | None = None
    on_delay_s: float = 0.0  # threshold rules: seconds the condition must hold before the alarm is raised
    off_delay_s: float = 0.0  # both kinds: seconds the clear condition must hold before the alarm clears
    deadband: float = 0.0  # threshold rules with > >= < <=: the alarm clears only this far back past the threshold


def evaluate(rule: RuleSpec, value: float | str | None, value_ts_ms: int | None, state_since_ms: int | None,
             now_ms: int, stale_ms: int) -> bool | None:
    """True: the rule holds; False: it does not; None: no fresh data to decide on."""
    if value is None or value_ts_ms is None or now_ms - value_ts_ms > stale_ms or isinstance(value, str):
        return None
    if rule.kind == "threshold":
        return OPS[rule.op or ">"](float(value), float(rule.threshold or 0.0))
    if rule.kind == "state_duration":
        if int(value) != rule.state:
            return False
        if state_since_ms is None:
            return None
        return now_ms - state_since_ms >= (rule.duration_s or 0) * 1000
    raise ValueError(f"unknown rule kind {rule.kind!r}")


def clear_point(rule: RuleSpec) -> float:
    """The value a threshold rule's alarm must get back past to clear: the threshold moved by the deadband
    towards the normal side (``> 830``, deadband 20: 810); ``==`` and ``!=`` take no deadband."""
    threshold = float(rule.threshold or 0.0)
    if rule.op in (">", ">="):
        return threshold - rule.deadband
    if rule.op in ("<", "<="):
        return threshold + rule.deadband
    return threshold


def is_back(rule: RuleSpec, value: float) -> bool:
    """The clear condition on one value: past the clear point (threshold), out of the state (state_duration)."""
    if rule.kind == "threshold":
        return not OPS[rule.op or ">"](value, clear_point(rule))
    return int(value) != rule.state


def ended(rule: RuleSpec, value: float | str | None, value_ts_ms: int | None, now_ms: int,
          stale_ms: int) -> bool | None:
    """True: an open alarm of the rule may clear (subject to the off-delay); False: not; None: no fresh data."""
    if value is None or value_ts_ms is None or now_ms - value_ts_ms > stale_ms or isinstance(value, str):
        return None
    return is_back(rule, float(value))


Sample = tuple[int, float | str]


def held_since(samples: Sequence[Sample], holds: Callable[[float], bool], stale_ms: int) -> int | None:
    """When the trailing run of samples for which ``holds`` is true began (a value holds until the next
    sample); None if the newest sample does not hold. A gap longer than ``stale_ms`` ends a run:
    silence is no evidence that a condition went on holding."""
    since: int | None = None
    newer_ts: int | None = None
    for ts, value in reversed(samples):
        if isinstance(value, str) or not holds(float(value)):
            break
        if newer_ts is not None and newer_ts - ts > stale_ms:
            break
        since, newer_ts = ts, ts
    return since


Transition = Literal["raise", "clear"]


def step(rule: RuleSpec, active: bool, value: float | str | None, value_ts_ms: int | None,
         state_since_ms: int | None, now_ms: int, stale_ms: int,
         recent: Callable[[int], Sequence[Sample]]) -> Transition | None:
    """What one tick does to a rule's alarm: raise it, clear it, or nothing.

    ``recent(start_ms)`` gives the tag's samples from ``start_ms`` to now, oldest first; it is called
    only while a delayed transition is pending, for the delay plus ``stale_ms`` (a run that held for
    the whole delay has a sample in that window).
    """
    if not active:
        if not evaluate(rule, value, value_ts_ms, state_since_ms, now_ms, stale_ms):
            return None
        if rule.kind != "threshold" or rule.on_delay_s <= 0:  # a state_duration rule's duration_s is its on-delay
            return "raise"
        delay_ms = int(rule.on_delay_s * 1000)
        since = held_since(recent(now_ms - delay_ms - stale_ms), lambda v: OPS[rule.op or ">"](v, float(rule.threshold or 0.0)),
                           stale_ms)
        return "raise" if since is not None and now_ms - since >= delay_ms else None
    if not ended(rule, value, value_ts_ms, now_ms, stale_ms):
        return None
    if rule.off_delay_s <= 0:
        return "clear"
    delay_ms = int(rule.off_delay_s * 1000)
    since = held_since(recent(now_ms - delay_ms - stale_ms), lambda v: is_back(rule, v), stale_ms)
    return "clear" if since is not None and now_ms - since >= delay_ms else None


class StateTracker:
    """When each machine's state register last changed, as seen in its newest values."""

    def __init__(self) -> None:
        self._seen: dict[tuple[MachineRef, str], tuple[float, int]] = {}

    def update(self, machine: MachineRef, tag: str, value: float, ts_ms: int, store: TimeSeriesStore) -> int:
        key = (machine, tag)
        prev = self._seen.get(key)
        if prev is None:
            since = self._look_back(machine, tag, value, ts_ms, store)
        elif prev[0] != value:
            since = ts_ms
        else:
            since = prev[1]
        self._seen[key] = (value, since)
        return since

    @staticmethod
    def _look_back(machine: MachineRef, tag: str, value: float, ts_ms: int, store: TimeSeriesStore) -> int:
        """On first sight, the start of the current run within the last hour (or the hour's start)."""
        rows = store.history(machine, tag, ts_ms - 3_600_000, ts_ms + 1, 0)
        since = rows[0][0] if rows else ts_ms
        for t, v in reversed(rows):
            if v != value:
                break
            since = t
        return since


class AlarmEngine:
    def __init__(self, plant: PlantDb, store: TimeSeriesStore, stale_ms: int, interval_s: float = 1.0) -> None:
        self.plant, self.store, self.stale_ms, self.interval_s = plant, store, stale_ms, interval_s
        self.tracker = StateTracker()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.revision = Revision()  # bumped on every raise/clear/ack so live views know to refresh

    def start(self) -> None:
        """Restartable (a worker may lead, resign and lead again): each run has its own stop event."""
        self._stop = threading.Event()
        self.tracker = StateTracker()  # another leader may have changed the alarms meanwhile
        self._thread = threading.Thread(target=self._run, args=(self._stop,), name="alarm-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            try:
                self.tick(int(time.time() * 1000))
            except StoreError as exc:
                log.warning("alarm_tick_skipped reason=store error=%r", str(exc))
            except Exception:  # a bad rule must not stop alarm evaluation for everyone
                log.exception("alarm_tick_failed")

    def tick(self, now_ms: int) -> int:
        """Evaluate every rule once; returns how many alarms changed."""
        changed = 0
        with self.plant.session() as s, s.begin():
            rows = s.execute(
                up_to_tenant(select(AlarmRule, Machine.slug, Line.slug, Site.slug, Tenant.slug).select_from(AlarmRule),
                             AlarmRule)
                .where(AlarmRule.deleted_ms.is_(None))
            ).all()
            open_alarms = {a.rule_id: a for a in s.scalars(select(Alarm).where(Alarm.cleared_ms.is_(None)))}
            live = {rule.id for rule, *_ in rows}
            for rule_id, alarm in open_alarms.items():
                if rule_id not in live:  # its rule was deleted (a tick that raced the delete raised it)
                    alarm.cleared_ms, alarm.cleared_reason = now_ms, "rule_deleted"
                    log.info("alarm_cleared alarm=%s rule_id=%s reason=rule_deleted", alarm.id, rule_id)
                    changed += 1
            latest_cache: dict[MachineRef, dict] = {}
            for rule, m, line, site, tenant in rows:
                ref = MachineRef(tenant, site, line, m)
                if ref not in latest_cache:
                    latest_cache[ref] = self.store.latest(ref)
                lv = latest_cache[ref].get(rule.tag)
                since = None
                if lv is not None and rule.kind == "state_duration" and not isinstance(lv.value, str):
                    since = self.tracker.update(ref, rule.tag, lv.value, lv.ts_ms, self.store)
                spec = RuleSpec(rule.kind, rule.tag, rule.op, rule.threshold, rule.state, rule.duration_s,
                                rule.on_delay_s, rule.off_delay_s, rule.deadband)
                current = open_alarms.get(rule.id)
                upto = now_ms + 1

                def recent(start_ms: int, ref: MachineRef = ref, tag: str = rule.tag, upto: int = upto) -> list[Sample]:
                    return self.store.history(ref, tag, start_ms, upto, 0)

                move = step(spec, current is not None, lv.value if lv else None, lv.ts_ms if lv else None, since,
                            now_ms, self.stale_ms, recent)
                if move == "raise" and current is None:
                    s.add(Alarm(rule_id=rule.id, raised_ms=now_ms,
                                value=None if lv is None or isinstance(lv.value, str) else float(lv.value)))
                    log.info("alarm_raised rule=%s machine=%s tag=%s value=%r on_delay_s=%g", rule.name, ref,
                             rule.tag, lv.value if lv else None, spec.on_delay_s)
                    changed += 1
                elif move == "clear" and current is not None:
                    current.cleared_ms, current.cleared_reason = now_ms, "condition_ended"
                    log.info("alarm_cleared rule=%s machine=%s reason=condition_ended value=%r deadband=%g "
                             "off_delay_s=%g", rule.name, ref, lv.value if lv else None, spec.deadband,
                             spec.off_delay_s)
                    changed += 1
        if changed:
            self.revision.bump()
        return changed


def clear_open_alarms(session, rule_id: int, reason: str, by: str, now_ms: int) -> int:
    """Clear the rule's active or acknowledged alarms because a person changed or deleted the rule."""
    cleared = 0
    for alarm in session.scalars(select(Alarm).where(Alarm.rule_id == rule_id, Alarm.cleared_ms.is_(None))):
        alarm.cleared_ms, alarm.cleared_reason, alarm.cleared_by = now_ms, reason, by
        cleared += 1
    return cleared

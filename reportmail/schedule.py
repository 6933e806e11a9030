"""When a schedule is due: the latest occurrence at or before now, and its key (one send per key).

- weekly: Mondays at ``hour`` local time; key ``2026-W49``.
- monthly: the 1st at ``hour``; key ``2026-12``.
- after_commissioning: once, a week after the commissioning window ends (the first week the
  post window can show); key ``after-commissioning-<rollout>``.

Only the latest occurrence is sent: after a week of downtime the service sends this week's
report, not a backlog of stale ones; occurrences before the schedule existed are not sent.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

KINDS = ("weekly", "monthly", "after_commissioning")


def due(kind: str, hour: int, zone: str, now_ms: int, created_ms: int, rollout: date | None = None,
        commissioning_days: int = 14) -> tuple[str, int] | None:
    """(key, due time in ms) of the latest occurrence in [created, now], or None."""
    tz = ZoneInfo(zone)
    now = datetime.fromtimestamp(now_ms / 1000, tz)
    at = lambda d: int(datetime.combine(d, time(hour), tz).timestamp() * 1000)  # noqa: E731
    if kind == "weekly":
        d = now.date() - timedelta(days=now.weekday())
        if at(d) > now_ms:
            d -= timedelta(days=7)
        y, w, _ = d.isocalendar()
        key, when = f"{y}-W{w:02d}", at(d)
    elif kind == "monthly":
        d = now.date().replace(day=1)
        if at(d) > now_ms:
            d = (d - timedelta(days=1)).replace(day=1)
        key, when = f"{d:%Y-%m}", at(d)
    elif kind == "after_commissioning":
        if rollout is None:
            return None
        d = rollout + timedelta(days=commissioning_days + 7)
        key, when = f"after-commissioning-{rollout.isoformat()}", at(d)
        if when > now_ms:
            return None
        return key, when  # once, even when the schedule was made after that day
    else:
        raise ValueError(f"schedule kind {kind!r}: use one of {', '.join(KINDS)}")
    if when < created_ms:
        return None
    return key, when

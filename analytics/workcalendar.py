"""The working calendar: which days a shift is planned time. Pure functions, shared by the reports
(``analytics.kpi.calendar``) and the live dashboard, so both count the same planned hours.

A shift is planned on the weekdays it lists (a night shift belongs to the day it starts),
except on public holidays of the tenant's country (Korean by default, from the ``holidays``
package, which ships its data offline and follows the substitute-holiday rules) and on the
tenant's own closure days. A closed Sunday that counted as planned time with no output would
add a zero day to every week and widen the before/after intervals several times over.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import lru_cache

from analytics.policy import Policy, ShiftDef


@lru_cache(maxsize=1)
def _known_countries() -> frozenset[str]:
    """The package's alpha-2 and alpha-3 codes from its registry: ``list_supported_countries()`` imports every
    country's module (over a second at an API worker's first snapshot); the registry imports none."""
    try:
        from holidays.registry import COUNTRIES

        return frozenset(code for entry in COUNTRIES.values() for code in entry[1:3])  # alpha-2 and alpha-3
    except (ImportError, AttributeError, IndexError, TypeError):  # a holidays release without that registry
        return _all_supported()


@lru_cache(maxsize=1)
def _all_supported() -> frozenset[str]:
    import holidays

    return frozenset(holidays.list_supported_countries())


def check_country(code: str) -> str:
    """An ISO 3166 country code the holidays package knows, upper-cased; a clear error otherwise."""
    key = code.strip().upper()
    if key not in _known_countries() and key not in _all_supported():  # the full list holds aliases (UK) too
        raise ValueError(f"holidays: {code!r} is not a country the holidays package knows; "
                         "write an ISO 3166 code such as KR, or null for no public holidays")
    return key


def preload() -> None:
    """Import the holidays package's country data now: its first use imports every country's module
    (about half a second), which a process serving dashboards should pay at start, not in a viewer's
    first request."""
    import holidays.countries  # noqa: F401


@lru_cache(maxsize=64)
def _public(country: str, year: int) -> frozenset[date]:
    import holidays

    return frozenset(holidays.country_holidays(country, years=year))


def public_holidays(country: str | None, years: Iterable[int]) -> frozenset[date]:
    """The country's public holidays in those years (empty without a country)."""
    if not country:
        return frozenset()
    out: set[date] = set()
    for y in set(years):
        out |= _public(country, y)
    return frozenset(out)


def is_closed(day: date, policy: Policy) -> bool:
    """A public holiday of the policy's country or one of the tenant's closure days."""
    return day in policy.closed_days or day in public_holidays(policy.holidays, (day.year,))


def shift_planned_on(shift: ShiftDef, day: date, policy: Policy) -> bool:
    """Whether ``shift``, starting on production day ``day``, is planned time."""
    return day.weekday() in shift.weekdays() and not is_closed(day, policy)


def shift_at(local: datetime, policy: Policy) -> tuple[int, date] | None:
    """(index into policy.shifts, production day) of the planned shift running at local time ``local``, or None."""
    minute = local.hour * 60 + local.minute
    for j, sh in enumerate(policy.shifts):
        since = (minute - sh.start_min()) % 1440
        if since < sh.length_min():
            day = (local - timedelta(minutes=since)).date()
            return (j, day) if shift_planned_on(sh, day, policy) else None
    return None


def planned_minutes(day: date, policy: Policy) -> int:
    """Minutes of planned shift time that start on production day ``day``."""
    return sum(sh.length_min() for sh in policy.shifts if shift_planned_on(sh, day, policy))

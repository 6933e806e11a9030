"""The shift calendar: which parts of a local day are production, breaks, or not scheduled.

Pure functions. Days are local calendar days at a fixed UTC offset (Korea has no daylight
saving time); a day is the unit the timeline is generated in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


class Shift(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: time
    end: time = Field(description="may be earlier than start: the shift runs past midnight")
    days: list[str] = Field(default_factory=lambda: list(WEEKDAYS[:5]), description="days the shift starts on")

    @model_validator(mode="after")
    def _valid(self) -> "Shift":
        bad = [d for d in self.days if d not in WEEKDAYS]
        if bad:
            raise ValueError(f"unknown day(s) {bad}; use {', '.join(WEEKDAYS)}")
        return self


class Break(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: time
    minutes: float = Field(gt=0, le=240)


class CalendarSettings(BaseModel):
    """Shifts, breaks (planned stops at fixed times, on every shift they fall in), cleaning at
    the end of each shift (a planned stop), and holidays (not scheduled)."""

    model_config = ConfigDict(extra="forbid")

    utc_offset_hours: float = 9.0
    shifts: list[Shift] = Field(
        default_factory=lambda: [Shift(start=time(8, 30), end=time(17, 30))], min_length=1
    )
    breaks: list[Break] = Field(
        default_factory=lambda: [
            Break(start=time(10, 30), minutes=10),
            Break(start=time(12, 0), minutes=60),
            Break(start=time(15, 0), minutes=10),
        ]
    )
    cleaning_minutes: float = Field(15.0, ge=0, le=120, description="planned stop at the end of each shift")
    holidays: list[date] = Field(default_factory=list)

    @classmethod
    def always_on(cls) -> "CalendarSettings":
        """Three back-to-back shifts every day, no breaks: for demos that must move at any hour."""
        every = list(WEEKDAYS)
        return cls(
            shifts=[Shift(start=time(0), end=time(8), days=every), Shift(start=time(8), end=time(16), days=every),
                    Shift(start=time(16), end=time(0), days=every)],
            breaks=[], cleaning_minutes=0,
        )


@dataclass(frozen=True)
class DayPlan:
    """A local day as [start, end) second offsets from local midnight.

    ``production``: windows where the machine is scheduled to make parts; ``planned``:
    breaks and cleaning inside shifts. The rest of the day is not scheduled.
    """

    production: tuple[tuple[float, float], ...]
    planned: tuple[tuple[float, float], ...]

    @property
    def production_s(self) -> float:
        return sum(b - a for a, b in self.production)


def _subtract(intervals: list[tuple[float, float]], cut: tuple[float, float]) -> list[tuple[float, float]]:
    out = []
    for a, b in intervals:
        c, d = cut
        if d <= a or c >= b:
            out.append((a, b))
            continue
        if a < c:
            out.append((a, c))
        if d < b:
            out.append((d, b))
    return out


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def day_plan(cal: CalendarSettings, day: date) -> DayPlan:
    """The plan of one local day (shifts that began the day before and run past midnight count)."""
    shifts: list[tuple[float, float]] = []
    for offset in (-1, 0):
        d = day + timedelta(days=offset)
        if d in cal.holidays:
            continue
        weekday = WEEKDAYS[d.weekday()]
        for s in cal.shifts:
            if weekday not in s.days:
                continue
            a, b = _seconds(s.start), _seconds(s.end)
            if b <= a:
                b += 86400
            a, b = a + offset * 86400, b + offset * 86400
            a, b = max(a, 0.0), min(b, 86400.0)
            if b > a:
                # cleaning happens at the true end of the shift, which may be tomorrow
                shifts.append((a, b, s.end))  # type: ignore[arg-type]
    planned: list[tuple[float, float]] = []
    windows: list[tuple[float, float]] = []
    for a, b, end in shifts:  # type: ignore[misc]
        windows.append((a, b))
        true_end = _seconds(end) if _seconds(end) > 0 else 86400
        if cal.cleaning_minutes and abs(b - true_end) < 1e-9:
            planned.append((max(a, b - cal.cleaning_minutes * 60), b))
        for br in cal.breaks:
            lo = float(_seconds(br.start))
            hi = lo + br.minutes * 60
            if lo < b and hi > a:
                planned.append((max(lo, a), min(hi, b)))
    windows = _merge(windows)
    planned = _merge(planned)
    production = list(windows)
    for cut in planned:
        production = _subtract(production, cut)
    return DayPlan(tuple(p for p in production if p[1] - p[0] > 0), tuple(planned))

"""When a scheduled report is due: the latest occurrence only, in the tenant's local time, one key each."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from reportmail.schedule import due

KST = ZoneInfo("Asia/Seoul")


def ms(y, mo, d, h=0, mi=0) -> int:
    return int(datetime(y, mo, d, h, mi, tzinfo=KST).timestamp() * 1000)


def test_weekly_is_monday_at_the_hour_local_time():
    created = ms(2026, 11, 1)
    assert due("weekly", 7, "Asia/Seoul", ms(2026, 11, 30, 6, 59), created) == ("2026-W48", ms(2026, 11, 23, 7))
    assert due("weekly", 7, "Asia/Seoul", ms(2026, 11, 30, 7, 0), created) == ("2026-W49", ms(2026, 11, 30, 7))
    # three weeks down: only this week's report, not a backlog
    assert due("weekly", 7, "Asia/Seoul", ms(2026, 12, 2, 12), created)[0] == "2026-W49"


def test_monthly_and_nothing_before_the_schedule_existed():
    assert due("monthly", 7, "Asia/Seoul", ms(2026, 12, 1, 8), ms(2026, 11, 5)) == ("2026-12", ms(2026, 12, 1, 7))
    assert due("monthly", 7, "Asia/Seoul", ms(2026, 11, 20), ms(2026, 11, 5)) is None  # Nov 1st was before it


def test_after_commissioning_is_once_a_week_after_the_window():
    rollout = date(2026, 11, 2)
    when = ms(2026, 11, 23, 7)  # rollout + 14 commissioning days + 7
    assert due("after_commissioning", 7, "Asia/Seoul", when - 1, 0, rollout, 14) is None
    assert due("after_commissioning", 7, "Asia/Seoul", when + 86_400_000 * 30, when + 1, rollout, 14) == (
        "after-commissioning-2026-11-02", when)
    assert due("after_commissioning", 7, "Asia/Seoul", when, 0, None) is None
    with pytest.raises(ValueError, match="weekly, monthly, after_commissioning"):
        due("daily", 7, "Asia/Seoul", when, 0)

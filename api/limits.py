"""Resource limits of expensive requests: the longest range, a time budget, and stopping when the client leaves.

One request asking for a century of KPIs by shift kept a core busy for more than ten
minutes after its client had gone (issue #11). Three defences, as OWASP ASVS 4.0 V11.1.4
asks (protection against excessive calls and denial of service):

- **Ranges.** Every period a caller gives (report days, each before/after window, history
  and export ranges) is at most ``api.max_range_days`` (400 by default, defined once in
  ``ApiSettings``). A longer one is a 422 at once, naming the parameter, the limit and a
  range that would be accepted.
- **Time budget.** A report runs in a worker thread under an ``analytics.deadline.Deadline``
  of ``api.report_budget_s``; the analytics loops check it and stop themselves. A report
  that runs out is answered 503 with what to ask for instead.
- **Client gone.** While the report runs, the request checks twice a second whether its
  client disconnected; if so, it cancels the deadline and the thread stops at its next check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import date, timedelta
from typing import TypeVar

from fastapi import HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from analytics.deadline import BudgetSpent, Cancelled, Deadline, enforced
from api.settings import ApiSettings
from api.timeparams import iso

log = logging.getLogger("api.limits")
T = TypeVar("T")
#: How often a running report looks whether its client is still there.
DISCONNECT_POLL_S = 0.5
#: Status answered (to nobody) when the client went away; nginx's name for it.
CLIENT_CLOSED = 499


def _too_long(param: str, days: int, limit: int, hint: str) -> HTTPException:
    return HTTPException(status_code=422, detail=[{
        "type": "range_too_long", "loc": ["query", param],
        "msg": f"the range is {days} days; one request may cover at most {limit} days (api.max_range_days): "
               f"ask for less, e.g. {hint}, and split a longer period into several requests",
        "ctx": {"days": days, "max_days": limit}}])


def check_days(first: date, last: date, limit: int, first_name: str = "first", last_name: str = "last") -> None:
    """422 unless the inclusive day range [first, last] is at most ``limit`` days."""
    days = (last - first).days + 1
    if days > limit:
        hint = f"{first_name}={last - timedelta(days=limit - 1)}&{last_name}={last}"
        raise _too_long(last_name, days, limit, hint)


def check_window_days(param: str, days: int, limit: int) -> None:
    """422 unless one window of ``days`` days is at most ``limit`` days."""
    if days > limit:
        raise _too_long(param, days, limit, f"{param}={limit}")


def check_span_ms(start_ms: int, end_ms: int, limit: int) -> None:
    """422 unless [start_ms, end_ms) spans at most ``limit`` days."""
    span_ms = end_ms - start_ms
    if span_ms > limit * 86_400_000:
        days = -(-span_ms // 86_400_000)
        raise _too_long("start", days, limit, f"start={iso(end_ms - limit * 86_400_000)}&end={iso(end_ms)}")


async def computed(request: Request, settings: ApiSettings, work: Callable[[], T], what: str) -> T | Response:
    """``work()`` in a worker thread under the report time budget, cancelled if the client disconnects.

    A spent budget is a 503 that says what to ask for instead; a cancelled computation
    answers 499 (nobody reads it) and logs ``report_abandoned``.
    """
    deadline = Deadline(settings.report_budget_s)

    def run() -> T:
        with enforced(deadline):
            return work()

    task = asyncio.ensure_future(run_in_threadpool(run))
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if done:
                break
            if await request.is_disconnected():
                deadline.cancel("the client disconnected")
                log.info("report_client_gone what=%s after_s=%.1f: stopping the computation", what, deadline.elapsed_s)
                await asyncio.wait({task})
                break
        return task.result()
    except BudgetSpent as exc:
        log.warning("report_budget_spent what=%s budget_s=%g", what, deadline.budget_s)
        raise HTTPException(status_code=503, detail=(
            f"the {what} {exc.reason} (api.report_budget_s) and was stopped: ask for a shorter period, one "
            "machine (machine=) or fewer replicates; with the rollup cache on, finished hours are kept, so the "
            "same request may succeed later")) from None
    except Cancelled as exc:
        log.info("report_abandoned what=%s reason=%r after_s=%.1f", what, exc.reason, deadline.elapsed_s)
        return Response(status_code=CLIENT_CLOSED)
    finally:
        if not task.done():  # this coroutine itself was cancelled (server shutdown): stop the thread too
            deadline.cancel("the request was cancelled")

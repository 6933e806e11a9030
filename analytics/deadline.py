"""Stopping a report computation from outside: a time budget and a cancel flag, checked in the loops.

A report runs in a worker thread, and Python cannot kill a thread. So the computation
stops itself: the API puts a ``Deadline`` in force around it (``enforced``), and the
analytics loops (machines, buckets, days, KPIs, rollouts) call ``check()``, which raises
``Stopped`` once the budget is spent or the caller cancelled (the HTTP client went away).
Without a deadline in force — the CLI, the rollup maintainer, tests — ``check()`` does nothing.

The deadline is held in a context variable, so it follows the computation through every
function without each of them taking a parameter, and two reports in two threads never see
each other's deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class Stopped(Exception):
    """The computation was stopped before it finished; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BudgetSpent(Stopped):
    """The computation ran longer than its time budget."""


class Cancelled(Stopped):
    """Someone called ``Deadline.cancel`` (e.g. the HTTP client disconnected)."""


class Deadline:
    """A time budget (seconds from now; None: no limit) and a cancel flag, safe to set from another thread."""

    def __init__(self, budget_s: float | None) -> None:
        self.budget_s = budget_s
        self.started = time.monotonic()
        self._until = None if budget_s is None else self.started + budget_s
        self._cancelled: str | None = None

    def cancel(self, reason: str) -> None:
        self._cancelled = reason

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def check(self) -> None:
        if self._cancelled is not None:
            raise Cancelled(self._cancelled)
        if self._until is not None and time.monotonic() > self._until:
            raise BudgetSpent(f"ran longer than its time budget of {self.budget_s:g} s")


_current: ContextVar[Deadline | None] = ContextVar("analytics_deadline", default=None)


@contextmanager
def enforced(deadline: Deadline) -> Iterator[Deadline]:
    """Make ``check()`` in this thread (context) answer to ``deadline`` until the block ends."""
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)


def check() -> None:
    """Raise ``Stopped`` if the deadline in force is spent or cancelled; a no-op without one."""
    deadline = _current.get()
    if deadline is not None:
        deadline.check()

"""Pure decisions of the store path: finding the points a store refuses, and retry timing.

No I/O here (the write function is passed in), so both are unit-tested without servers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from tsstore import StoreRejected

P = TypeVar("P")

#: Below this many points a refused chunk is retried point by point instead of halved.
LINE_BY_LINE_BELOW = 16


def isolate_rejects(write: Callable[[Sequence[P]], None], points: Sequence[P]) -> list[tuple[P, str]]:
    """Write ``points``; return the ones the store refuses, each with the store's reason.

    A refusal (HTTP 400 "partial write", a field type conflict, 413) does not say which
    lines were bad, so the batch is halved and each half written again until the refused
    points are single: every good point ends up stored (re-writing one is idempotent), every
    bad one is returned, and the number of requests is bounded (at most about
    2·bad·log2(n), and 2n when every point is bad), so a poison batch is never retried
    forever. StoreUnavailable propagates: the caller keeps the whole batch and retries it.
    """
    if not points:
        return []
    try:
        write(points)
        return []
    except StoreRejected as exc:
        if len(points) == 1:
            return [(points[0], str(exc))]
    rejected: list[tuple[P, str]] = []
    if len(points) < LINE_BY_LINE_BELOW:
        for p in points:
            try:
                write([p])
            except StoreRejected as exc:
                rejected.append((p, str(exc)))
        return rejected
    half = len(points) // 2
    rejected.extend(isolate_rejects(write, points[:half]))
    rejected.extend(isolate_rejects(write, points[half:]))
    return rejected


@dataclass
class Backoff:
    """Capped exponential backoff that also honours a server's Retry-After."""

    initial_s: float
    max_s: float
    failures: int = 0
    retry_at: float = 0.0

    def failed(self, now: float, retry_after_s: float | None = None) -> float:
        """Record a failure at ``now``; return the delay before the next attempt."""
        delay = min(self.initial_s * (2 ** self.failures), self.max_s)
        if retry_after_s is not None and retry_after_s > 0:
            # The server knows best, but a Retry-After of an hour must not stall ingest for an hour.
            delay = min(max(delay, retry_after_s), max(self.max_s, 1.0) * 10)
        self.failures += 1
        self.retry_at = now + delay
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self.retry_at = 0.0

    def ready(self, now: float) -> bool:
        return now >= self.retry_at

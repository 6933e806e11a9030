"""Group classified messages into store writes by size, by message count and by age: pure, clock passed in.

Group commit: at light load a partial batch goes as soon as the store is idle and nothing is
waiting, once no message has come for ``linger_s`` (one poll cycle's burst from a gateway is
one write) or once it is ``linger_max_s`` old (a steady trickle), instead of waiting
``max_age_s``. While the store is busy, or messages keep coming closer together than
``linger_s`` (a saturated collector), batches fill by points, messages or ``max_age_s`` as
without it, so there are no more writes than before where writes cost throughput.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collector.ledger import DeadLetter
from tsstore import Point


@dataclass
class Batch:
    points: list[Point] = field(default_factory=list)
    #: accepted messages as received, (received_ms, topic, payload): what the spool keeps
    messages: list[tuple[int, str, bytes]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    acks: list[tuple[int, int]] = field(default_factory=list)  # (mid, qos) to acknowledge once stored
    opened_at: float | None = None
    last_added_at: float | None = None
    payload_bytes: int = 0
    #: the store's request body for ``points``, prepared off the store thread (InfluxDB only)
    encoded: object | None = None

    def add(self, points: list[Point], ack: tuple[int, int], now: float,
            raw: tuple[int, str, bytes] | None = None) -> None:
        self._open(now)
        self.points.extend(points)
        if raw is not None:
            self.messages.append(raw)
            self.payload_bytes += len(raw[2])
        self.acks.append(ack)

    def add_dead(self, letter: DeadLetter, ack: tuple[int, int], now: float) -> None:
        self._open(now)
        self.dead.append(letter)
        self.acks.append(ack)

    def _open(self, now: float) -> None:
        if self.opened_at is None:
            self.opened_at = now
        self.last_added_at = now

    def due(self, now: float, max_points: int, max_age_s: float, max_messages: int | None = None,
            linger_s: float | None = None, linger_max_s: float | None = None, idle: bool = False) -> bool:
        """Whether to write the batch now. ``idle``: the store waits for a batch and no message is queued
        behind this one; then the batch goes after ``linger_s`` without a message, or at ``linger_max_s``
        old (``linger_s`` None: only the limits and ``max_age_s``)."""
        if not self.acks:
            return False
        if len(self.points) >= max_points or (max_messages is not None and len(self.acks) >= max_messages):
            return True
        opened = self.opened_at if self.opened_at is not None else now
        if now - opened >= max_age_s:
            return True
        if not idle or linger_s is None:
            return False
        quiet = now - (self.last_added_at if self.last_added_at is not None else opened)
        return quiet >= linger_s or (linger_max_s is not None and now - opened >= linger_max_s)

    def seconds_until_due(self, now: float, max_age_s: float, linger_s: float | None = None,
                          linger_max_s: float | None = None, idle: bool = False) -> float | None:
        """How long the batcher may wait for the next message before this batch is due by time
        (None: empty, wait for a message). While the store is busy only ``max_age_s`` counts:
        the store going idle wakes the batcher."""
        if self.opened_at is None:
            return None
        due_at = self.opened_at + max_age_s
        if idle and linger_s is not None:
            due_at = min(due_at, (self.last_added_at or self.opened_at) + linger_s)
            if linger_max_s is not None:
                due_at = min(due_at, self.opened_at + linger_max_s)
        return max(0.0, due_at - now)

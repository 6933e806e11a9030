"""Group decoded messages into store writes by size and by age: pure, clock passed in."""

from __future__ import annotations

from dataclasses import dataclass, field

from tsstore import Point


@dataclass
class Batch:
    points: list[Point] = field(default_factory=list)
    acks: list[tuple[int, int]] = field(default_factory=list)  # (mid, qos) to acknowledge once stored
    opened_at: float | None = None

    def add(self, points: list[Point], ack: tuple[int, int], now: float) -> None:
        if self.opened_at is None:
            self.opened_at = now
        self.points.extend(points)
        self.acks.append(ack)

    def due(self, now: float, max_points: int, max_age_s: float) -> bool:
        if not self.acks:
            return False
        return len(self.points) >= max_points or (now - (self.opened_at or now)) >= max_age_s

    def seconds_until_due(self, now: float, max_age_s: float) -> float | None:
        if self.opened_at is None:
            return None
        return max(0.0, self.opened_at + max_age_s - now)

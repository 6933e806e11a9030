"""Deleting what has expired: web sessions, API tokens after a grace period, old throttle counts, stale devices.

``purge`` is one short transaction; ``Housekeeper`` runs it every ``interval_s`` in the leader
worker (``api.leader``), like the alarm engine, so several workers do not all delete the same rows.
Logins also delete the user's own expired sessions as they go (``purge_user_sessions``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import delete

from plantmodel.db import affected, ApiToken, LoginDevice, LoginThrottle, PlantDb, WebSession

log = logging.getLogger("plantmodel.housekeeping")
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Retention:
    token_grace_days: float = 30.0  # an expired token stays listed (as expired) this long, then goes
    throttle_forget_s: float = 3600.0  # a throttle count this long after its last failure is forgotten anyway
    device_days: float = 90.0  # a trusted login device unused this long is forgotten (its cookie lives as long)


def purge(plant: PlantDb, retention: Retention, now_ms: int | None = None) -> dict[str, int]:
    """Delete expired rows; returns how many of each kind went."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    with plant.session() as s, s.begin():
        out = {
            "sessions": affected(s.execute(delete(WebSession).where(WebSession.expires_ms <= now_ms))),
            "tokens": affected(s.execute(delete(ApiToken).where(
                ApiToken.expires_ms <= now_ms - int(retention.token_grace_days * DAY_MS)))),
            "throttle": affected(s.execute(delete(LoginThrottle).where(
                LoginThrottle.last_failure_ms <= now_ms - int(retention.throttle_forget_s * 1000),
                LoginThrottle.blocked_until_ms <= now_ms))),
            "devices": affected(s.execute(delete(LoginDevice).where(
                LoginDevice.last_login_ms <= now_ms - int(retention.device_days * DAY_MS)))),
        }
    return out


def purge_user_sessions(plant: PlantDb, user_id: int, now_ms: int) -> int:
    """The opportunistic part: at a login, the user's own expired sessions go."""
    with plant.session() as s, s.begin():
        return affected(s.execute(delete(WebSession).where(WebSession.user_id == user_id,
                                                  WebSession.expires_ms <= now_ms)))


class Housekeeper:
    """``purge`` at start and every ``interval_s`` on a daemon thread; a failed pass is logged, never fatal."""

    def __init__(self, plant: PlantDb, retention: Retention, interval_s: float = 600.0) -> None:
        self.plant, self.retention, self.interval_s = plant, retention, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0

    def start(self) -> None:
        self._stop = threading.Event()  # its own per run: a thread still ending a pass sees its own stop
        self._thread = threading.Thread(target=self._run, args=(self._stop,), name="housekeeping", daemon=True)
        self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        while True:
            try:
                counts = purge(self.plant, self.retention)
                self.passes += 1
                if any(counts.values()):
                    log.info("housekeeping_purged %s", " ".join(f"{k}={v}" for k, v in counts.items()))
            except Exception:  # the database may be down for a moment: try again next pass
                log.exception("housekeeping_failed; retrying in %gs", self.interval_s)
            if stop.wait(self.interval_s):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

"""Login throttling shared by every API worker through the plant database (OWASP ASVS 4.0 V2.2.1).

Two counters slow password guessing down, neither locks out the right password for good:

- per client address (``addr:<ip>``): every failed login from the address counts, whatever the
  username, so one address cannot try many passwords *or* many usernames;
- per account (``user:<name>``): failures from any address count, so guesses spread over many
  addresses are slowed too; but a browser that has logged in to the account before carries a
  device cookie (``LoginDevice``, OWASP's "device cookie" defence) and is exempt from the account's
  counter, so an attacker's guesses do not keep the owner out.

From the ``free``-th failure on, each one makes the next attempt wait ``base_s · 2^(n−1)`` seconds,
capped at ``max_s`` (exponential backoff); an attempt made while waiting is answered 429 with
``Retry-After`` and its password is not even checked. A counter is forgotten ``forget_s`` after its
last failure; a successful login clears the account's counter (not the address's: an attacker with
one valid account could otherwise reset it between guesses).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from plantmodel.credentials import secret_digest
from plantmodel.db import affected, LoginDevice, LoginThrottle, PlantDb, User

log = logging.getLogger("plantmodel.throttle")


@dataclass(frozen=True)
class ThrottlePolicy:
    free_per_address: int = 20
    free_per_account: int = 5
    base_s: float = 1.0
    max_s: float = 900.0
    forget_s: float = 3600.0

    def delay_s(self, failures: int, free: int) -> float:
        """After the ``free``-th failure the next attempt waits ``base_s``, then twice as long each time."""
        over = failures - free + 1
        return 0.0 if over <= 0 else min(self.base_s * 2 ** (over - 1), self.max_s)


def _addr(address: str) -> str:
    return f"addr:{address}"[:200]


def _acct(username: str) -> str:
    return f"user:{username.lower()}"[:200]


class Throttle:
    """The checks and counts around one login; every method is one short transaction."""

    def __init__(self, plant: PlantDb, policy: ThrottlePolicy | None = None) -> None:
        self.plant, self.policy = plant, policy or ThrottlePolicy()

    def wait_s(self, address: str, username: str, device: str | None, now_ms: int | None = None) -> tuple[float, str]:
        """Seconds the attempt must still wait (0: go ahead) and which counter holds it back."""
        now_ms = now_ms if now_ms is not None else _now_ms()
        keys = [_addr(address)]
        trusted = self.trusted(device, username)
        if not trusted:
            keys.append(_acct(username))
        with self.plant.session() as s:
            rows = {r.key: r for r in s.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys)))}
        worst, why = 0.0, ""
        for key, row in rows.items():
            if now_ms - row.last_failure_ms > self.policy.forget_s * 1000:
                continue
            wait = (row.blocked_until_ms - now_ms) / 1000
            if wait > worst:
                worst, why = wait, "address" if key.startswith("addr:") else "account"
        return worst, why

    def failed(self, address: str, username: str, device: str | None, now_ms: int | None = None) -> None:
        """Count a failed login against the address and, unless from a trusted device, the account."""
        now_ms = now_ms if now_ms is not None else _now_ms()
        self._count(_addr(address), self.policy.free_per_address, now_ms)
        if not self.trusted(device, username):
            self._count(_acct(username), self.policy.free_per_account, now_ms)

    def _count(self, key: str, free: int, now_ms: int) -> None:
        forget_before = now_ms - int(self.policy.forget_s * 1000)
        for _ in range(3):  # two workers may insert the same key at once: the loser retries as an update
            try:
                with self.plant.session() as s, s.begin():
                    # one atomic UPDATE per failure (no read-modify-write), so concurrent workers lose no count
                    s.execute(update(LoginThrottle).where(LoginThrottle.key == key,
                                                          LoginThrottle.last_failure_ms < forget_before)
                              .values(failures=0))
                    hit = affected(s.execute(update(LoginThrottle).where(LoginThrottle.key == key)
                                    .values(failures=LoginThrottle.failures + 1, last_failure_ms=now_ms)))
                    if not hit:
                        s.add(LoginThrottle(key=key, failures=1, last_failure_ms=now_ms, blocked_until_ms=now_ms))
                        s.flush()
                    failures = s.scalar(select(LoginThrottle.failures).where(LoginThrottle.key == key))
                    delay = self.policy.delay_s(failures or 1, free)  # the row was written above
                    s.execute(update(LoginThrottle).where(LoginThrottle.key == key)
                              .values(blocked_until_ms=now_ms + int(delay * 1000)))
                if delay:
                    log.warning("login_backoff key=%s failures=%d next_attempt_in_s=%g", key, failures, delay)
                return
            except IntegrityError:
                continue

    def succeeded(self, username: str) -> None:
        with self.plant.session() as s, s.begin():
            s.execute(delete(LoginThrottle).where(LoginThrottle.key == _acct(username)))

    def trusted(self, device: str | None, username: str) -> bool:
        """Has this browser (its device cookie) logged in to this account before?"""
        if not device:
            return False
        with self.plant.session() as s:
            user_id = s.scalar(select(User.id).where(User.username == username))
            return user_id is not None and s.get(LoginDevice, _device_digest(device, user_id)) is not None

    def remember_device(self, device: str, user_id: int, now_ms: int | None = None) -> None:
        """After a successful login: this browser may log in to the account despite the account's counter."""
        now_ms = now_ms if now_ms is not None else _now_ms()
        digest = _device_digest(device, user_id)
        with self.plant.session() as s, s.begin():
            row = s.get(LoginDevice, digest)
            if row is None:
                s.add(LoginDevice(digest=digest, user_id=user_id, last_login_ms=now_ms))
            else:
                row.last_login_ms = now_ms


def _device_digest(device: str, user_id: int) -> str:
    """One cookie, one row per account it logged in to; only the digest is stored, like a session's."""
    return secret_digest(f"{device}:{user_id}")


def _now_ms() -> int:
    return int(time.time() * 1000)

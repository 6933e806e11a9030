"""Per-tenant limits on what one gateway's credential can make the collector store.

One SME's gateway must not be able to grow the store without bound (new machines, new tag
names: every one is a new series) or crowd out the other tenants. So a decoded message is
admitted only if

- its machine is in the plant model (``unknown_machine``), unless the collector is told
  to accept any machine (``collector.unknown_machines: accept``, the demo's switch);
- its tenant is within its message rate: a token bucket of
  ``max_messages_per_s_per_tenant`` refilled per second, holding up to
  ``tenant_burst_s`` seconds' worth, so a gateway replaying its outbox after an outage
  still gets through (``rate_limited``);
- it names no tag beyond the first ``max_tags_per_machine`` tag names seen for its machine
  (``too_many_tags``); the collector keeps the names it admitted in its data dir, so the
  bound holds across restarts.

Pure: the clock is passed in, no I/O, so the policy is unit-tested without servers. A
refused message goes to the dead letters with its reason; nothing here drops anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from plant import MachineRef

UNKNOWN_MACHINE = "unknown_machine"
RATE_LIMITED = "rate_limited"
TOO_MANY_TAGS = "too_many_tags"
#: the tenant label of a refusal whose tenant the plant model does not know (bounded label set)
UNKNOWN_TENANT = "(unknown)"


@dataclass(frozen=True)
class Refusal:
    reason: str
    detail: str
    tenant: str  # the metrics label: a known tenant, or UNKNOWN_TENANT


class _Bucket:
    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens, self.at = tokens, at


class Admission:
    def __init__(self, max_tags_per_machine: int, max_messages_per_s_per_tenant: float, tenant_burst_s: float,
                 accept_unknown_machines: bool = False,
                 on_new_tags: Callable[[MachineRef, list[str]], None] | None = None) -> None:
        """``on_new_tags`` is told each admitted machine's new tag names (to remember them across restarts)."""
        self.max_tags = max_tags_per_machine
        self.rate = max_messages_per_s_per_tenant
        self.capacity = max(1.0, max_messages_per_s_per_tenant * tenant_burst_s)
        self.accept_unknown = accept_unknown_machines
        self._machines: frozenset[MachineRef] | None = None
        self._tenants: frozenset[str] = frozenset()
        self._tags: dict[MachineRef, set[str]] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._on_new_tags = on_new_tags

    def remember_tags(self, machine: MachineRef, tags: Iterable[str]) -> None:
        """Tag names the machine had before (a previous run): they count towards its limit."""
        self._tags.setdefault(machine, set()).update(tags)

    def set_machines(self, machines: Iterable[MachineRef] | None) -> None:
        """The plant model's machines; None: no list (every machine passes this check)."""
        if machines is None:
            self._machines, self._tenants = None, frozenset()
            return
        self._machines = frozenset(machines)
        self._tenants = frozenset(m.tenant for m in self._machines)

    @property
    def checks_machines(self) -> bool:
        return self._machines is not None and not self.accept_unknown

    def tenant_label(self, tenant: str) -> str:
        if self._machines is None or self.accept_unknown or tenant in self._tenants:
            return tenant
        return UNKNOWN_TENANT

    def check(self, machine: MachineRef, tags: Iterable[str], now: float) -> Refusal | None:
        """None to store the message; else why not. Call once per message, in arrival order."""
        if self.checks_machines and machine not in self._machines:  # type: ignore[operator]
            return Refusal(UNKNOWN_MACHINE,
                           f"machine {machine.site}/{machine.line}/{machine.machine} of tenant {machine.tenant!r} "
                           "is not in the plant model: add it (web UI or smartfactory plant seed); the collector "
                           "reloads the machine list every collector.plant_refresh_s",
                           self.tenant_label(machine.tenant))
        tenant = machine.tenant
        bucket = self._buckets.get(tenant)
        if bucket is None:
            bucket = self._buckets[tenant] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens < 1.0:
            return Refusal(RATE_LIMITED,
                           f"tenant {tenant!r} sends more than collector.max_messages_per_s_per_tenant="
                           f"{self.rate:g} messages/s (bursts up to {self.capacity:.0f}): put more samples in each "
                           "message or raise the limit", self.tenant_label(tenant))
        bucket.tokens -= 1.0  # a message refused for its tags still counts towards the rate
        seen = self._tags.setdefault(machine, set())
        new = [t for t in dict.fromkeys(tags) if t not in seen]
        if new and len(seen) + len(new) > self.max_tags:
            return Refusal(TOO_MANY_TAGS,
                           f"machine {machine.site}/{machine.line}/{machine.machine} would have {len(seen) + len(new)} "
                           f"tag names, more than collector.max_tags_per_machine={self.max_tags} (new: "
                           f"{', '.join(sorted(new)[:5])}{', ...' if len(new) > 5 else ''})",
                           self.tenant_label(tenant))
        if new:
            seen.update(new)
            if self._on_new_tags is not None:
                self._on_new_tags(machine, new)
        return None

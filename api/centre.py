"""The centre view's status of every SME: cheap per machine, so it scales to hundreds of tenants.

Data coverage over the last day comes from the hourly rollups the maintainer keeps
(``analytics.continuous``): the settled hours are rows in the rollup cache, and only the
last few hours are tallied from the store, for the state tag alone. Coverage here is what it
is in the reports: the share of time with a fresh state sample (a sample holds until the next
one, at most the staleness limit). Last data is the newest state sample (``latest``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from analytics.rollup import RollupCache
from analytics.settings import AnalyticsSettings
from api.live import alarms_of
from plantmodel.db import BrokerAccount, PlantDb, Tenant
from plant import MachineRef
from tsstore import TimeSeriesStore

DAY_MS = 86_400_000


@dataclass(frozen=True)
class MachineStatus:
    known_ms: int
    window_ms: int
    last_data_ms: int | None


def machine_status(store: TimeSeriesStore, cache: RollupCache | None, ref: MachineRef, settings: AnalyticsSettings,
                   now_ms: int) -> MachineStatus:
    """Time with data in the 24 h before now: settled hours from the cache, the edges from the store."""
    policy = settings.policy(ref.tenant)
    every, minute = policy.bucket_min * 60_000, 60_000
    codes, stale = [s.code for s in policy.states], int(policy.stale_s * 1000)

    def from_store(a: int, b: int, step: int) -> float:
        if b <= a:
            return 0.0
        return float(sum(min(c.held_ms, step) for c in store.state_durations(ref, policy.tags.state, a, b, step, codes, stale)))

    start = (now_ms - DAY_MS) // minute * minute
    first_whole = -(-start // every) * every
    settled = first_whole
    if cache is not None:
        settled = max(first_whole, (now_ms - cache.settle_ms) // every * every)
    known = from_store(start, first_whole, minute)  # the part-hour at the far edge, by the minute
    if settled > first_whole:
        known += float(cache.machine_buckets(store, ref, policy, first_whole, settled, now_ms).known_ms().sum())
    known += from_store(settled, -(-now_ms // every) * every, every)  # the hours too recent to be settled
    newest = store.latest(ref).get(policy.tags.state)
    return MachineStatus(int(known), now_ms - start, newest.ts_ms if newest else None)


def overview(plant: PlantDb, store: TimeSeriesStore, cache: RollupCache | None, settings: AnalyticsSettings,
             now_ms: int, stale_ms: int) -> list[dict]:
    out = []
    with plant.session() as s:
        for t in s.scalars(select(Tenant).order_by(Tenant.slug)):
            machines = [(site, ln, m) for site in t.sites for ln in site.lines for m in ln.machines]
            status = {m.id: machine_status(store, cache, MachineRef(t.slug, site.slug, ln.slug, m.slug), settings, now_ms)
                      for site, ln, m in machines}
            gateways = []
            for g in s.scalars(select(BrokerAccount).filter_by(tenant_id=t.id, kind="gateway")):
                seen = [status[m.id].last_data_ms for _, _, m in machines if m.gateway_id == g.id]
                newest = max((x for x in seen if x), default=None)
                gateways.append({"gateway": g.username, "machines": len(seen), "last_data_ms": newest,
                                 "online": newest is not None and now_ms - newest < 60_000 + stale_ms})
            coverage = [min(1.0, st.known_ms / st.window_ms) for st in status.values()]
            out.append({
                "tenant": t.slug, "name": t.name,
                "rollout_date": t.rollout_date.isoformat() if t.rollout_date else None,
                "machines": len(machines), "gateways": gateways,
                "coverage_24h": round(sum(coverage) / len(coverage), 4) if coverage else None,
                "active_alarms": len(alarms_of(plant, t.slug, ("active",))),
            })
    return out


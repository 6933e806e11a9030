"""The services a request handler may use, built once per app and read through ``Depends``.

Handlers never reach into ``app.state`` for them: ``create_app`` builds one ``Services``
and every router asks for it (or one of its parts) with the dependencies below, so a
missing service fails at start-up instead of being replaced by a silent default.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from analytics.rollup import RollupCache
from analytics.settings import AnalyticsSettings
from api.access import PrincipalCache
from api.answerstore import AnswerStore
from api.caches import Revalidating, SharedCache
from api.centre import CentrePortfolio, CentreSummaries
from api.alarms import AlarmEngine
from api.follow import Follows
from api.live import RecentAnswers, SnapshotCache
from api.settings import ApiSettings
from plantmodel.db import PlantDb
from plantmodel.housekeeping import Housekeeper
from plantmodel.throttle import Throttle
from plantmodel.policy import effective_settings
from tsstore import TimeSeriesStore


class EffectiveAnalytics:
    """The config's analytics section completed from the plant model (``plantmodel.policy``).

    Merging reads the plant model, so the result is kept for ``ttl_s``: a rollout date or a
    machine's ideal cycle time edited in the plant model reaches reports within that time.
    """

    def __init__(self, configured: AnalyticsSettings, plant: PlantDb, ttl_s: float = 30.0) -> None:
        self.configured, self.plant, self.ttl_s = configured, plant, ttl_s
        self._lock = threading.Lock()
        self._merged: tuple[float, AnalyticsSettings] | None = None

    def get(self) -> AnalyticsSettings:
        with self._lock:
            if self._merged and time.monotonic() - self._merged[0] < self.ttl_s:
                return self._merged[1]
        merged = effective_settings(self.configured, self.plant)
        with self._lock:
            self._merged = (time.monotonic(), merged)
        return merged


@dataclass
class Services:
    """Everything the routers use; one per app."""

    store: TimeSeriesStore
    plant: PlantDb
    settings: ApiSettings
    analytics: EffectiveAnalytics
    alarms: AlarmEngine
    snapshots: SnapshotCache
    follows: Follows  # the lines this worker's event streams follow, refreshed once each
    rollup_cache: RollupCache | None  # None: no cache configured, reports compute from the store
    principals: PrincipalCache  # ttl: api.credential_cache_s
    login_throttle: Throttle  # counts in the plant database, shared by the workers
    housekeeper: Housekeeper  # runs in the leader worker only
    alarm_lists: RecentAnswers = field(default_factory=RecentAnswers)
    # the plant trees (JSON) per visible set, every page load asks: fresh 5 s, then served while one refresh runs
    tenant_trees: Revalidating[tuple, bytes] = field(default_factory=lambda: Revalidating(10_000, 5.0, 60.0))
    centre_overview: RecentAnswers = field(default_factory=lambda: RecentAnswers(ttl_s=30.0))
    centre_portfolio: CentrePortfolio = field(default_factory=CentrePortfolio)  # status 30 s, report gains longer
    # machine and line names of the history pages, so their requests need no plant query (renames show within 30 s)
    plant_names: Revalidating[tuple, Any] = field(default_factory=lambda: Revalidating(10_000, 30.0, 300.0))
    # the newest, unsettled hours of the tallies the history pages read (api.routers.history._RecentTails)
    range_tails: SharedCache[tuple, Any] = field(default_factory=lambda: SharedCache(4096, 15.0))
    # their hours that ended but are not settled yet: late data there shows within 120 s
    range_recent: SharedCache[tuple, Any] = field(default_factory=lambda: SharedCache(4096, 120.0))
    centre_summaries: CentreSummaries | None = None  # per-tenant rows the maintainer keeps; None without a cache
    # range answers the host's workers computed (api.answerstore); None: each worker computes its own
    shared_answers: AnswerStore | None = None

    @property
    def stale_ms(self) -> int:
        return int(self.settings.stale_after_s * 1000)

    def live_views_changed(self, tenant: str) -> None:
        """Live views show an alarm or rule change at once, not after their caches' ttl."""
        self.snapshots.invalidate(tenant)
        self.alarm_lists.invalidate(tenant)
        self.alarms.revision.bump()


def services_of(app) -> Services:
    """The app's services; an app built without them is a programming error, said at once."""
    services = getattr(app.state, "services", None)
    if not isinstance(services, Services):
        raise RuntimeError("this app has no services: build it with api.app.create_app")
    return services


# Dependencies that only look something up are async: FastAPI runs a sync one in the thread
# pool, a hop that costs more than the lookup under load.
async def get_services(request: Request) -> Services:
    return services_of(request.app)


async def get_store(request: Request) -> TimeSeriesStore:
    return services_of(request.app).store


async def get_plant(request: Request) -> PlantDb:
    return services_of(request.app).plant


async def get_settings(request: Request) -> ApiSettings:
    return services_of(request.app).settings


ServicesDep = Annotated[Services, Depends(get_services)]
StoreDep = Annotated[TimeSeriesStore, Depends(get_store)]
PlantDep = Annotated[PlantDb, Depends(get_plant)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]

"""The delivery as the API leader and the CLI build it from a config: store, plant model, analytics, SMTP."""

from __future__ import annotations

from analytics.settings import AnalyticsSettings
from plantmodel.db import PlantDb
from plantmodel.policy import effective_settings
from reportmail.content import Job, report_mail
from reportmail.delivery import Delivery
from reportmail.settings import MailSettings


def delivery_for(mail: MailSettings, analytics: AnalyticsSettings, store, plant: PlantDb, cache=None,
                 replicates: int = 1000) -> Delivery:
    def settings() -> AnalyticsSettings:
        return effective_settings(analytics, plant)

    def build(job: Job, key: str):
        return report_mail(job, key, store, settings, plant, cache, replicates)

    def rollout(tenant: str, line: str | None):
        r = settings().rollout(tenant, line)
        return (r.date, r.commissioning_days) if r else None

    return Delivery(plant, mail, build, rollout, analytics.default.timezone)

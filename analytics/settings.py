"""The ``analytics:`` section of a config file: tenant policies, rollouts, the rollup cache.

```yaml
analytics:
  default: {timezone: Asia/Seoul, default_ideal_cycle_s: 24}
  tenants:
    hanil-autoparts:
      ideal_cycle_s: {press-4: 26}
      states:   # optional: the whole classification, printed on every report
        - {code: 7, name: changeover, kind: planned}
        ...
  rollouts:
    - {tenant: hanil-autoparts, line: press-line-1, date: 2026-02-23, commissioning_days: 7}
  cache_path: smartfactory-data/rollups.db
  rollup_interval_s: 300   # the API keeps the cache up to date
  rollup_quick_recheck_hours: 2   # recomputed on every pass, for late data
  rollup_recheck_hours: 24        # recomputed once per rollup_full_recheck_s, machines taking turns
  rollup_full_recheck_s: 3600
```
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from analytics.policy import Policy


class RolloutDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str
    site: str | None = None
    line: str | None = Field(None, description="one line of the tenant; all its machines when omitted")
    date: date
    commissioning_days: Annotated[int, Field(ge=0, le=365)] = 14
    pre_exclusion_days: Annotated[int, Field(ge=0, le=365)] = 0
    days: Annotated[int | None, Field(ge=7, le=730, description="window length; the most the data allows if omitted")] = None


class AnalyticsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: Policy = Field(default_factory=Policy)
    tenants: dict[str, Policy] = Field(default_factory=dict)
    rollouts: list[RolloutDef] = Field(default_factory=list)
    cache_path: Path | None = Field(None, description="rollup cache file; default: beside the SQLite store")
    maintain_rollups: bool = Field(True, description="keep the rollup cache up to date in the API (a continuous "
                                   "aggregate), so no report starts cold")
    rollup_interval_s: Annotated[float, Field(ge=10, le=86_400)] = 300.0
    rollup_recheck_hours: Annotated[int, Field(ge=0, le=24 * 14, description="hours recomputed by a full recheck "
                                               "(once per rollup_full_recheck_s) for late data (gateway outbox "
                                               "replays)")] = 24
    rollup_quick_recheck_hours: Annotated[int, Field(ge=0, le=24 * 14, description="hours recomputed by the "
                                                     "passes between full rechecks (at most rollup_recheck_hours): "
                                                     "late data that old (plus the 2 h before an hour is kept) "
                                                     "reaches the rollups at the next pass, older late data at the "
                                                     "next full recheck")] = 2
    rollup_full_recheck_s: Annotated[float, Field(ge=60, le=7 * 86_400, description="how often each machine's "
                                                  "whole rollup_recheck_hours is rechecked, the machines taking "
                                                  "turns over the passes (at least rollup_interval_s; when left "
                                                  "out and the interval is longer, every pass is full)")] = 3600.0
    rollup_lease_s: Annotated[float, Field(ge=5, le=3600, description="PostgreSQL: how long a maintainer worker's "
                                           "claim on a machine lasts without renewal (renewed every third of it); "
                                           "a dead worker's machines pass to another after this")] = 60.0
    rollups_in_api: Literal["leader", "every"] = Field(
        "leader", description="PostgreSQL: which API processes run a leased rollup worker: only the leader (the "
        "default: a tally is CPU-bound and would slow every process's requests; add `smartfactory rollups "
        "--workers N` for throughput) or every one (rollup throughput grows with the API processes, and a dead "
        "leader does not pause rollups). With the embedded SQLite cache only the leader runs the maintainer")
    rollup_batch: Annotated[int, Field(ge=1, le=1000, description="PostgreSQL: machines a maintainer worker "
                                       "claims at a time")] = 10

    @field_validator("rollup_quick_recheck_hours")
    @classmethod
    def _quick_within_full(cls, v: int, info: ValidationInfo) -> int:
        full = info.data.get("rollup_recheck_hours")  # absent when it failed its own check
        if full is not None and v > full:
            raise ValueError(f"must be at most analytics.rollup_recheck_hours ({full}), the window of a full "
                             f"recheck; got {v}")
        return v

    @field_validator("rollup_full_recheck_s")
    @classmethod
    def _full_not_before_interval(cls, v: float, info: ValidationInfo) -> float:
        interval = info.data.get("rollup_interval_s")
        if interval is not None and v < interval:
            raise ValueError(f"must be at least analytics.rollup_interval_s ({interval:g}): a full recheck is "
                             f"one pass in every few; got {v:g}")
        return v

    @model_validator(mode="after")
    def _defaults_follow_explicit_values(self) -> AnalyticsSettings:
        """Defaults give way to what was written: a 1-h recheck window makes the quick one 1 h, a 2-h interval makes
        every pass full (the checks above only refuse values written in the file)."""
        if "rollup_quick_recheck_hours" not in self.model_fields_set:
            self.rollup_quick_recheck_hours = min(self.rollup_quick_recheck_hours, self.rollup_recheck_hours)
        if "rollup_full_recheck_s" not in self.model_fields_set:
            self.rollup_full_recheck_s = max(self.rollup_full_recheck_s, self.rollup_interval_s)
        return self

    def policy(self, tenant: str) -> Policy:
        return self.tenants.get(tenant, self.default)

    def rollout(self, tenant: str, line: str | None) -> RolloutDef | None:
        for r in self.rollouts:
            if r.tenant == tenant and (r.line is None or line is None or r.line == line):
                return r
        return None

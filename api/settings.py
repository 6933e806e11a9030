"""The ``api:`` section of a config file."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    max_points: Annotated[int, Field(ge=10, le=1_000_000, description="largest history answer")] = 10_000
    database_url: str = Field(
        default="sqlite:///plant.db",
        description="plant model and users: a SQLAlchemy URL; a relative SQLite path is relative to the config "
        "file; PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    session_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 12.0
    token_default_days: Annotated[float, Field(gt=0, le=3650)] = Field(
        default=90.0, description="lifetime of a new API token when its creator names none")
    token_max_days: Annotated[float, Field(gt=0, le=3650)] = Field(
        default=365.0, description="longest lifetime a new API token may be given; a longer request is refused")
    token_grace_days: Annotated[float, Field(ge=0, le=3650)] = Field(
        default=30.0, description="an expired token stays listed (as expired) this long, then is deleted")
    credential_cache_s: Annotated[float, Field(gt=0, le=30)] = Field(
        default=5.0, description="how long a worker trusts a resolved session or token without asking the "
        "database: a logout, revocation, password change or deactivation takes effect on every worker within it")
    login_free_failures_per_address: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=20, description="failed logins from one client address (any usernames) after which each next one "
        "makes it wait, doubling from login_backoff_base_s")
    login_free_failures_per_account: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=5, description="failed logins for one account (any address) after which each next one makes it "
        "wait; a browser that logged in to the account before is exempt (device cookie)")
    login_backoff_base_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    login_backoff_max_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=900.0, description="the longest wait between attempts; with the defaults an account sees at "
        "most about 20 guesses an hour (OWASP ASVS 4.0 V2.2.1 allows 100)")
    login_forget_after_s: Annotated[float, Field(gt=0, le=30 * 86_400)] = Field(
        default=3600.0, description="a login counter this long after its last failure starts again from zero")
    housekeeping_interval_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=600.0, description="how often the leader worker deletes expired sessions, tokens past their "
        "grace period and old login counters")
    secure_cookies: bool = Field(default=False, description="set behind HTTPS so the session cookie is never sent "
                                                            "in clear")
    stale_after_s: Annotated[float, Field(gt=0)] = Field(
        default=90.0, description="alarms and the centre overview: a value holds until the next sample, at most "
        "this long; keep it above the gateways' heartbeat (max_silence_s, 60 s). The line dashboard uses the "
        "tenant's analytics stale_s, as its reports do")
    alarm_interval_s: Annotated[float, Field(gt=0)] = 1.0
    workers: Annotated[int, Field(ge=1, le=64)] = Field(
        default=1, description="uvicorn worker processes; more than one spreads requests over CPU cores. The "
        "alarm engine and the rollup maintainer then run in exactly one of them (see leader_lock)")
    max_range_days: Annotated[int, Field(ge=1, le=200 * 366)] = Field(
        default=400, description="the longest period one request may cover: report days (first..last), each "
        "before/after window, history and export ranges; longer asks get a 422 that says so")
    report_budget_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=120.0, description="time budget of one report computation (KPIs, before/after, portfolio); one "
        "that runs longer is stopped and answered 503. A report whose client disconnects stops at once")
    trusted_origins: list[str] = Field(
        default_factory=list, description="origins besides the request's own (scheme://host[:port]) from which "
        "browsers may send unsafe requests with the session cookie, e.g. https://factory.example.org behind a "
        "reverse proxy that rewrites Host; see api.csrf")
    docs_public: bool = Field(default=True, description="serve /docs and /openapi.json without login; false puts "
                                                        "them behind login like every other route")
    leader_lock: str = Field(
        default="api-leader.lock", description="with the plant database on SQLite: the lock file that elects the "
        "worker running the background duties; a relative path is relative to the config file. Workers must share "
        "it (one host). On PostgreSQL a database advisory lock elects instead, across hosts, and this is unused")
    leader_retry_s: Annotated[float, Field(gt=0, le=600)] = Field(
        default=5.0, description="how often a standby worker tries to become the leader: a dead leader's duties "
        "resume within about this long")
    leader_lease_s: Annotated[float, Field(ge=4, le=600)] = Field(
        default=20.0, description="PostgreSQL only: a leader whose database connection is silent this long loses "
        "its lock (the server ends the session); the leader notices a dead connection within half of it and "
        "resigns first")
    warm_lines: Annotated[int, Field(ge=0, le=100_000)] = Field(
        default=100, description="at start, each worker computes the live snapshots of up to this many lines (by "
        "tenant, site and line), one at a time in the background, so the first viewers after a restart, and those "
        "a second worker serves, do not wait for a line's first full read (1-2 s for a day of 1-s samples). Each "
        "line kept costs memory for its machines' day of data; 0 turns it off")
    shared_answers: str | None = Field(
        default="api-answers.db", description="a small SQLite file where the workers of one host share the "
        "history pages' range answers: one worker computes a page, the others read it (a relative path is relative "
        "to the config file; it is a cache, safe to delete). null: each worker computes its own")
    centre_coverage_floor: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.8, description="the centre portfolio flags an SME whose data coverage over the last 24 h is under "
        "this share (0.8 = 80%); no data at all is flagged as such")
    centre_gains_ttl_s: Annotated[float, Field(ge=0, le=86_400)] = Field(
        default=300.0, description="how long a worker keeps the before/after reports behind the centre portfolio's "
        "gains (they change by the day; computing them reads every rollout's windows)")
    centre_summary_max_age_s: Annotated[float | None, Field(ge=0, le=86_400)] = Field(
        default=None, description="the centre overview and portfolio read per-tenant summaries the rollup maintainer "
        "keeps; one older than this is recomputed in the request. Default: 3 rollup intervals + 60 s with the "
        "rollup cache in PostgreSQL (many tenants, many hosts), 30 s with the embedded SQLite cache (a few tenants: "
        "the overview stays as fresh as before)")

    @model_validator(mode="after")
    def _default_within_max(self) -> ApiSettings:
        if self.token_default_days > self.token_max_days:
            raise ValueError(f"token_default_days ({self.token_default_days:g}) is more than token_max_days "
                             f"({self.token_max_days:g}): lower the default or raise the maximum")
        return self

    def token_lifetime(self):
        from plantmodel.admin import TokenLifetime

        return TokenLifetime(self.token_default_days, self.token_max_days)

    def throttle_policy(self):
        from plantmodel.throttle import ThrottlePolicy

        return ThrottlePolicy(self.login_free_failures_per_address, self.login_free_failures_per_account,
                              self.login_backoff_base_s, self.login_backoff_max_s, self.login_forget_after_s)

    def retention(self):
        from plantmodel.housekeeping import Retention

        return Retention(self.token_grace_days, self.login_forget_after_s)

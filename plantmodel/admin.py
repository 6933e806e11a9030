"""Creating the plant model and its principals: used by the CLI, the demo and the tests.

A seed document (YAML or a dict, validated by pydantic) describes a whole centre at once;
applying it is idempotent, so the demo can seed on every start.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from plantmodel.credentials import (
    WeakPassword,
    check_password,
    hash_password,
    mosquitto_hash,
    new_secret,
    secret_digest,
    verify_password,
)
from plantmodel.db import (
    affected,
    AlarmRule,
    MAX_ALARM_DELAY_S,
    deadband_problem,
    ApiToken,
    BrokerAccount,
    Centre,
    Line,
    Machine,
    PlantDb,
    Role,
    Shift,
    Site,
    Tenant,
    User,
    WebSession,
)
from plant import IDENTIFIER_PATTERN, check_identifier, check_time_zone

Ident = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
# Lengths and ranges are the columns' (plantmodel/db.py): SQLite stores anything, PostgreSQL refuses what does not fit.
Name = Annotated[str, Field(min_length=1, max_length=200)]
StateCode = Annotated[int, Field(ge=-(2**31), le=2**31 - 1, description="a state register value (32-bit column)")]
_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class ShiftSeed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=64)]
    start: Annotated[str, Field(pattern=_HHMM, description="local time HH:MM")]
    end: Annotated[str, Field(pattern=_HHMM, description="local time HH:MM; before start = past midnight")]
    weekdays: Annotated[str, Field(pattern=r"^[0-6]{1,7}$")] = "0123456"


class RuleSeed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=100)]
    kind: Literal["threshold", "state_duration"]
    tag: Ident
    op: Literal[">", ">=", "<", "<=", "==", "!="] | None = None
    threshold: float | None = None
    state: StateCode | None = None
    duration_s: Annotated[float, Field(gt=0)] | None = None
    on_delay_s: Annotated[float, Field(ge=0, le=MAX_ALARM_DELAY_S)] = Field(default=0.0, description="threshold rules: seconds "
                                                                "the condition holds before the alarm is raised")
    off_delay_s: Annotated[float, Field(ge=0, le=MAX_ALARM_DELAY_S)] = Field(default=0.0, description="seconds the clear "
                                                                 "condition holds before the alarm clears")
    deadband: Annotated[float, Field(ge=0)] = Field(default=0.0, description="threshold rules with > >= < <=: the "
                                                    "alarm clears only this far back past the threshold")

    @model_validator(mode="after")
    def _complete(self) -> RuleSeed:
        if self.kind == "threshold" and (self.op is None or self.threshold is None):
            raise ValueError("a threshold rule needs 'op' and 'threshold'")
        if self.kind == "state_duration" and (self.state is None or self.duration_s is None):
            raise ValueError("a state_duration rule needs 'state' and 'duration_s'")
        problem = deadband_problem(self.op, self.threshold, self.deadband) if self.kind == "threshold" else None
        if problem == "with_equality":
            raise ValueError(f"'deadband' applies to >, >=, <, <= rules, and this one compares with {self.op}: set "
                             "it to 0 and use 'off_delay_s' to keep the alarm from flapping")
        if problem == "too_large":
            raise ValueError(f"'deadband' {self.deadband:g} is as large as the threshold {self.threshold:g} or larger: "
                             "the alarm would clear only beyond zero, practically never; use 1-5 % of the tag's range")
        return self


class MachineSeed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: Ident
    name: Name | None = None
    name_en: Name | None = Field(default=None, description="the name in English (the English UI; else the name)")
    ideal_cycle_s: Annotated[float, Field(gt=0)] = 60.0
    rollout_date: date | None = None
    gateway: Ident | None = Field(default=None, description="broker username of the gateway that reads it")
    alarms: list[RuleSeed] = Field(default_factory=list)


class LineSeed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: Ident
    name: Name | None = None
    name_en: Name | None = Field(default=None, description="the name in English (the centre's UI)")
    shifts: list[ShiftSeed] = Field(default_factory=list)
    machines: list[MachineSeed] = Field(default_factory=list)


class SiteSeed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: Ident
    name: Name | None = None
    name_en: Name | None = Field(default=None, description="the name in English (the centre's UI)")
    lines: list[LineSeed] = Field(default_factory=list)


class TargetSeed(BaseModel):
    """A target KPI of the rollout plan: ``{kpi: output_per_hour, change_pct: 10}`` (+10%), optionally per line."""

    model_config = ConfigDict(extra="forbid")
    kpi: Annotated[str, Field(max_length=64)]
    change_pct: float
    line: Ident | None = None
    note: Annotated[str, Field(max_length=200)] | None = None

    @model_validator(mode="after")
    def _judgeable(self) -> TargetSeed:
        from analytics.targets import check_target

        check_target(self.kpi, self.change_pct)
        return self


class TenantSeed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: Ident
    name: Name | None = None
    name_en: Name | None = Field(default=None, description="the name in English (the centre's UI)")
    timezone: Annotated[str, Field(max_length=64)] = "Asia/Seoul"
    rollout_date: date | None = None
    sites: list[SiteSeed] = Field(default_factory=list)
    targets: list[TargetSeed] = Field(default_factory=list, description="the rollout plan's target KPIs (달성률)")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        """Shifts and "today" are local time: a zone the dashboards cannot load is refused here, not there."""
        return check_time_zone(v)


class UserSeed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Ident
    password: Annotated[str, Field(min_length=8)]
    role: Role
    tenant: Ident | None = None
    language: Literal["ko", "en"] | None = None

    @model_validator(mode="after")
    def _tenant_matches_role(self) -> UserSeed:
        if self.role.is_centre and self.tenant:
            raise ValueError(f"{self.role.value} works for the centre: remove 'tenant'")
        if not self.role.is_centre and not self.tenant:
            raise ValueError(f"{self.role.value} belongs to one tenant: set 'tenant'")
        try:
            check_password(self.password, self.username, (self.tenant,) if self.tenant else ())
        except WeakPassword as exc:
            raise ValueError(f"user {self.username}: {exc}") from None
        return self


class BrokerSeed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Ident
    password: Annotated[str, Field(min_length=8)]
    kind: Literal["gateway", "collector"] = "gateway"
    tenant: Ident | None = None

    @model_validator(mode="after")
    def _gateway_has_tenant(self) -> BrokerSeed:
        if (self.kind == "gateway") != (self.tenant is not None):
            raise ValueError("a gateway publishes for exactly one tenant; a collector for none: set 'tenant' "
                             "on gateways only")
        return self


class PlantSeed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    centre: Name = "Smart Factory Centre"
    tenants: list[TenantSeed] = Field(default_factory=list)
    users: list[UserSeed] = Field(default_factory=list)
    broker_accounts: list[BrokerSeed] = Field(default_factory=list)

    @field_validator("tenants")
    @classmethod
    def _unique_tenants(cls, tenants: list[TenantSeed]) -> list[TenantSeed]:
        slugs = [t.slug for t in tenants]
        if len(slugs) != len(set(slugs)):
            raise ValueError(f"tenant slugs must be unique: {slugs}")
        return tenants


def _minute(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _get_or_add(s: Session, model, defaults: dict, **keys):
    row = s.scalars(select(model).filter_by(**keys)).first()
    if row is None:
        row = model(**keys, **defaults)
        s.add(row)
        s.flush()
    else:
        for k, v in defaults.items():
            setattr(row, k, v)
    return row


def apply_seed(plant: PlantDb, seed: PlantSeed) -> None:
    """Create or update everything the seed names; nothing it does not name is removed."""
    with plant.session() as s, s.begin():
        centre = _get_or_add(s, Centre, {}, name=seed.centre)
        tenants = {t.slug: _get_or_add(s, Tenant, {"centre_id": centre.id, "name": t.name or t.slug, "name_en": t.name_en,
                                                   "timezone": t.timezone, "rollout_date": t.rollout_date},
                                       slug=t.slug) for t in seed.tenants}
        gateways = {b.username: add_broker_account(s, b.username, b.password, b.kind, b.tenant)
                    for b in seed.broker_accounts}
        for t in seed.tenants:
            tenant = tenants[t.slug]
            for site_seed in t.sites:
                site = _get_or_add(s, Site, {"name": site_seed.name or site_seed.slug, "name_en": site_seed.name_en},
                                   tenant_id=tenant.id, slug=site_seed.slug)
                for line_seed in site_seed.lines:
                    line = _get_or_add(s, Line, {"name": line_seed.name or line_seed.slug, "name_en": line_seed.name_en},
                                       site_id=site.id, slug=line_seed.slug)
                    for m in line_seed.machines:
                        gw = _gateway(s, gateways, m.gateway, t.slug)
                        machine = _get_or_add(s, Machine, {"name": m.name or m.slug, "name_en": m.name_en, "ideal_cycle_s": m.ideal_cycle_s,
                                                           "rollout_date": m.rollout_date, "gateway_id": gw},
                                              line_id=line.id, slug=m.slug)
                        for r in m.alarms:  # a rule deleted in the UI is created anew: the seed names it
                            _get_or_add(s, AlarmRule, r.model_dump(exclude={"name"}), machine_id=machine.id,
                                        name=r.name, deleted_ms=None)
                    if line_seed.shifts:
                        for old in list(line.shifts):
                            s.delete(old)
                        s.flush()
                        for sh in line_seed.shifts:
                            s.add(Shift(line_id=line.id, name=sh.name, start_minute=_minute(sh.start),
                                        end_minute=_minute(sh.end), weekdays=sh.weekdays))
        s.flush()
        for u in seed.users:
            add_user(s, u.username, u.password, u.role, u.tenant, u.language)
    for t in seed.tenants:
        if t.targets:
            from plantmodel.targets import set_targets

            set_targets(plant, t.slug, [x.model_dump() for x in t.targets])


def _gateway(s: Session, seeded: dict[str, BrokerAccount], username: str | None, tenant: str) -> int | None:
    if username is None:
        return None
    account = seeded.get(username) or s.scalars(select(BrokerAccount).filter_by(username=username)).first()
    if account is None or account.kind != "gateway" or account.tenant is None or account.tenant.slug != tenant:
        raise ValueError(f"machine gateway {username!r} is not a gateway of tenant {tenant!r}: "
                         "list it under broker_accounts with that tenant")
    return account.id


def _tenant(s: Session, slug: str | None) -> Tenant | None:
    if slug is None:
        return None
    tenant = s.scalars(select(Tenant).filter_by(slug=slug)).first()
    if tenant is None:
        raise LookupError(f"no tenant {slug!r}: create it first (smartfactory plant seed)")
    return tenant


def add_user(s: Session, username: str, password: str, role: Role, tenant: str | None,
             language: str | None = None) -> User:
    """Create the user, or reset the password and role of an existing one (a deactivated one stays so).

    A new password must pass the policy (``WeakPassword`` says why not) and ends every session and
    token of the user; the same password again (the demo seeds on every start) changes nothing.
    """
    check_identifier(username, "username")  # the seed checks it too; the CLI's `plant user` relies on this one
    if role.is_centre == (tenant is not None):
        raise ValueError(f"{role.value}: centre roles have no tenant, SME roles need one")
    t = _tenant(s, tenant)
    existing = s.scalars(select(User).filter_by(username=username)).first()
    if existing is not None and verify_password(existing.password_hash, password):
        password_hash = existing.password_hash
    else:
        check_password(password, username, (tenant,) if tenant else ())
        password_hash = hash_password(password)
        if existing is not None:
            end_credentials(s, existing)
    # ``active`` is left alone: re-running a seed must not bring back a user the centre deactivated
    return _get_or_add(s, User, {"password_hash": password_hash, "role": role.value,
                                 "tenant_id": t.id if t else None, "language": language},
                       username=username)


def end_credentials(s: Session, user: User) -> tuple[int, int]:
    """Delete every web session and API token of the user: (sessions, tokens) ended.

    The workers cache a resolved caller for ``api.access.PrincipalCache.ttl_s`` seconds at most,
    so within that time no worker accepts them any more.
    """
    sessions = affected(s.execute(delete(WebSession).where(WebSession.user_id == user.id)))
    tokens = affected(s.execute(delete(ApiToken).where(ApiToken.user_id == user.id)))
    return sessions, tokens


def change_password(plant: PlantDb, username: str, new_password: str) -> tuple[int, int]:
    """Set a new password (policy-checked) and end the user's sessions and tokens: (sessions, tokens) ended."""
    with plant.session() as s, s.begin():
        user = _user(s, username)
        check_password(new_password, username, (user.tenant.slug,) if user.tenant else ())
        user.password_hash = hash_password(new_password)
        return end_credentials(s, user)


def set_active(plant: PlantDb, username: str, active: bool) -> tuple[int, int]:
    """Deactivate (or reactivate) a user; deactivating ends every session and token: (sessions, tokens) ended."""
    with plant.session() as s, s.begin():
        user = _user(s, username)
        user.active = active
        return end_credentials(s, user) if not active else (0, 0)


def _user(s: Session, username: str) -> User:
    user = s.scalars(select(User).filter_by(username=username)).first()
    if user is None:
        raise LookupError(f"no user {username!r}")
    return user


def add_broker_account(s: Session, username: str, password: str, kind: str, tenant: str | None) -> BrokerAccount:
    t = _tenant(s, tenant)
    return _get_or_add(s, BrokerAccount, {"kind": kind, "tenant_id": t.id if t else None,
                                          "mqtt_password_hash": mosquitto_hash(password)}, username=username)


@dataclass(frozen=True)
class TokenLifetime:
    """How long a new API token lives: ``default_days`` unless asked, never more than ``max_days``."""

    default_days: float = 90.0
    max_days: float = 365.0

    def expiry_ms(self, now_ms: int, days: float | None) -> int:
        days = self.default_days if days is None else days
        if not 0 < days <= self.max_days:
            raise ValueError(f"a token lives more than 0 and at most {self.max_days:g} days (api.token_max_days): "
                             f"got {days:g}")
        return now_ms + int(days * 86_400_000)


def create_token(plant: PlantDb, username: str, name: str, days: float | None = None,
                 lifetime: TokenLifetime | None = None) -> str:
    """A new API token for scripts; the secret is returned once and stored only as a digest."""
    return create_token_row(plant, username, name, days, lifetime)[0]


def create_token_row(plant: PlantDb, username: str, name: str, days: float | None = None,
                     lifetime: TokenLifetime | None = None) -> tuple[str, dict]:
    """The secret (shown once) and the token as ``list_tokens`` shows it."""
    if not 1 <= len(name) <= 100:
        raise ValueError(f"token name {name!r} must be 1-100 characters")
    now = int(time.time() * 1000)
    expires = (lifetime or TokenLifetime()).expiry_ms(now, days)
    secret = new_secret()
    with plant.session() as s, s.begin():
        user = _user(s, username)
        if not user.active:
            raise ValueError(f"user {username!r} is deactivated: activate it first (smartfactory plant user "
                             f"{username} --activate)")
        row = ApiToken(token_hash=secret_digest(secret), user_id=user.id, name=name, created_ms=now, expires_ms=expires)
        s.add(row)
        s.flush()
        return secret, _token_out(row, username, now)


def _token_out(row: ApiToken, username: str, now_ms: int) -> dict:
    """What a token list shows: never the secret (only its digest is stored)."""
    return {"id": row.id, "user": username, "name": row.name, "created_ms": row.created_ms,
            "last_used_ms": row.last_used_ms, "expires_ms": row.expires_ms, "expired": row.expires_ms <= now_ms}


def list_tokens(plant: PlantDb, username: str | None = None) -> list[dict]:
    """The tokens of one user (or of everyone), newest first; expired ones until the housekeeper deletes them."""
    now = int(time.time() * 1000)
    with plant.session() as s:
        q = select(ApiToken, User.username).join(User, ApiToken.user_id == User.id)
        if username is not None:
            _user(s, username)
            q = q.where(User.username == username)
        return [_token_out(row, name, now) for row, name in s.execute(q.order_by(ApiToken.id.desc()))]


def revoke_token(plant: PlantDb, token_id: int, username: str | None = None) -> dict:
    """Delete one token (of ``username`` when given: then another user's id is a LookupError, as if absent)."""
    now = int(time.time() * 1000)
    with plant.session() as s, s.begin():
        q = select(ApiToken, User.username).join(User, ApiToken.user_id == User.id).where(ApiToken.id == token_id)
        if username is not None:
            q = q.where(User.username == username)
        hit = s.execute(q).first()
        if hit is None:
            raise LookupError(f"no token {token_id}" + (f" of user {username!r}" if username else ""))
        out = _token_out(hit[0], hit[1], now)
        s.delete(hit[0])
        return out

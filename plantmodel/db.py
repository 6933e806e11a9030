"""The plant model and identities, stored relationally (SQLite by default, PostgreSQL by URL).

centre → tenants (SMEs) → sites → lines → machines, with rollout dates, ideal cycle times
and per-line shift calendars; users with roles; API tokens and web sessions (stored as
hashes only; tokens expire); login throttling and trusted login devices; broker accounts (gateways and collectors) with mosquitto password hashes;
alarm rules and alarms; customer orders (delivery KPIs). The schema is owned by Alembic (``plantmodel/migrations``): ``open_plant``
upgrades a database to the newest revision before use.
"""

from __future__ import annotations

import enum
import math
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    BigInteger,
    String,
    UniqueConstraint,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


class Role(str, enum.Enum):
    CENTRE_ADMIN = "centre_admin"  # manages tenants, users and gateways; reads everything
    CENTRE_ENGINEER = "centre_engineer"  # reads every tenant
    SME_OWNER = "sme_owner"  # reads and configures alarms of the own tenant
    SME_OPERATOR = "sme_operator"  # reads the own tenant, acknowledges alarms

    @property
    def is_centre(self) -> bool:
        return self in (Role.CENTRE_ADMIN, Role.CENTRE_ENGINEER)


class Base(DeclarativeBase):
    pass


class Centre(Base):
    __tablename__ = "centres"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    tenants: Mapped[list[Tenant]] = relationship(back_populates="centre", order_by="Tenant.slug")


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the name in English, if given
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Seoul")
    rollout_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    centre: Mapped[Centre] = relationship(back_populates="tenants")
    sites: Mapped[list[Site]] = relationship(back_populates="tenant", order_by="Site.slug", cascade="all, delete-orphan")


class Site(Base):
    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("tenant_id", "slug"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the name in English, if given
    tenant: Mapped[Tenant] = relationship(back_populates="sites")
    lines: Mapped[list[Line]] = relationship(back_populates="site", order_by="Line.slug", cascade="all, delete-orphan")


class Line(Base):
    __tablename__ = "lines"
    __table_args__ = (UniqueConstraint("site_id", "slug"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the name in English, if given
    site: Mapped[Site] = relationship(back_populates="lines")
    machines: Mapped[list[Machine]] = relationship(back_populates="line", order_by="Machine.slug",
                                                   cascade="all, delete-orphan")
    shifts: Mapped[list[Shift]] = relationship(back_populates="line", order_by="Shift.start_minute",
                                               cascade="all, delete-orphan")


class Machine(Base):
    __tablename__ = "machines"
    __table_args__ = (UniqueConstraint("line_id", "slug"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("lines.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the name in English, if given
    ideal_cycle_s: Mapped[float] = mapped_column(Float, default=60.0)
    rollout_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    gateway_id: Mapped[int | None] = mapped_column(ForeignKey("broker_accounts.id", ondelete="SET NULL"), nullable=True)
    line: Mapped[Line] = relationship(back_populates="machines")
    gateway: Mapped[BrokerAccount | None] = relationship()


class Shift(Base):
    """One shift of a line's weekly calendar, in the tenant's local time.

    ``end_minute`` may be smaller than ``start_minute``: the shift runs past midnight.
    ``weekdays`` lists the days the shift starts on, Monday = 0 ("01234" = Mon–Fri).
    """

    __tablename__ = "shifts"
    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("lines.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)
    weekdays: Mapped[str] = mapped_column(String(7), default="0123456")
    line: Mapped[Line] = relationship(back_populates="shifts")


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    tenant: Mapped[Tenant | None] = relationship()


class WebSession(Base):
    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    expires_ms: Mapped[int] = mapped_column(BigInteger, index=True)  # index: the housekeeper deletes by it
    user: Mapped[User] = relationship()


class ApiToken(Base):
    """A script's credential. Expired tokens stop working at once and are deleted after a grace
    period (``plantmodel.housekeeping``), so their owner can still see in the list why a script stopped."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    expires_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    last_used_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # updated at most once a minute
    user: Mapped[User] = relationship()


class LoginThrottle(Base):
    """Failed logins per client address (``addr:…``) or per account (``user:…``), shared by every
    API worker (``plantmodel.throttle``): the count and until when the next attempt must wait."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    blocked_until_ms: Mapped[int] = mapped_column(BigInteger)


class LoginDevice(Base):
    """A browser that has logged in to an account before (OWASP's "device cookie"): its logins are
    not held back by the account's throttle, so an attacker's guesses do not lock the owner out."""

    __tablename__ = "login_devices"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    last_login_ms: Mapped[int] = mapped_column(BigInteger, index=True)


class BrokerAccount(Base):
    """A machine principal on the broker: a gateway (publishes for one tenant) or a collector."""

    __tablename__ = "broker_accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # "gateway" | "collector"
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True)
    mqtt_password_hash: Mapped[str] = mapped_column(String(200))
    tenant: Mapped[Tenant | None] = relationship()


#: The longest on- or off-delay of an alarm rule: longer hides a real alarm for longer than anyone can act on it.
MAX_ALARM_DELAY_S = 3600.0


def deadband_problem(op: str | None, threshold: float | None, deadband: float) -> str | None:
    """Why a threshold rule's (non-negative) deadband makes no sense, or None: "with_equality" (``==`` and
    ``!=`` have no side to come back to) or "too_large" (at least the threshold's magnitude, so the alarm
    would clear only beyond zero, practically never; a threshold of 0 has no scale to judge by).
    The API (api.alarmrules) and the plant seed refuse both."""
    if deadband <= 0:
        return None
    if op in ("==", "!="):
        return "with_equality"
    if threshold is not None and math.isfinite(threshold) and threshold != 0 and deadband >= abs(threshold):
        return "too_large"
    return None


class AlarmRule(Base):
    """kind "threshold": value ``op`` threshold; kind "state_duration": state == ``state`` for ≥ duration_s.

    ``on_delay_s`` (threshold rules), ``off_delay_s`` and ``deadband`` (threshold rules with an
    ordering operator) keep a noisy signal from raising and clearing over and over.

    A deleted rule keeps its row (``deleted_ms``) so the history of its alarms survives; nothing
    evaluates or lists it any more.
    """

    __tablename__ = "alarm_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    tag: Mapped[str] = mapped_column(String(64))
    op: Mapped[str | None] = mapped_column(String(2), nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    state: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    # against flapping (api.alarms.step); 0 is how rules behaved before migration 0008
    on_delay_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    off_delay_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    deadband: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    deleted_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    machine: Mapped[Machine] = relationship()


#: Why an alarm was cleared: its condition ended, or a person changed or deleted its rule.
CLEARED_REASONS = ("condition_ended", "rule_changed", "rule_deleted")


class Alarm(Base):
    __tablename__ = "alarms"
    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alarm_rules.id", ondelete="CASCADE"))
    raised_ms: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    acknowledged_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cleared_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cleared_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)  # one of CLEARED_REASONS
    cleared_by: Mapped[str | None] = mapped_column(String(64), nullable=True)  # who changed/deleted the rule
    rule: Mapped[AlarmRule] = relationship()

    @property
    def status(self) -> str:
        if self.cleared_ms is not None:
            return "cleared"
        return "acknowledged" if self.acknowledged_ms is not None else "active"


class Order(Base):
    """A customer order from the SME's ERP export (``plantmodel.orders``): the D of PQCD.

    ``ordered`` and ``completed`` keep what the file said: a date (``2026-03-02``) or a date-time
    with its UTC offset (naive times in the file are the tenant's local time). ``completed``
    is null while the order is open. One row per (tenant, order_id); a later import updates it.
    """

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("tenant_id", "order_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    order_id: Mapped[str] = mapped_column(String(64))
    line: Mapped[str | None] = mapped_column(String(64), nullable=True)  # a line slug of the tenant, or none
    product: Mapped[str | None] = mapped_column(String(100), nullable=True)
    quantity: Mapped[float] = mapped_column(Float)
    ordered: Mapped[str] = mapped_column(String(32))
    due: Mapped[date] = mapped_column(Date)
    completed: Mapped[str | None] = mapped_column(String(32), nullable=True)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class KpiTarget(Base):
    """A target KPI the SME declared in its rollout plan (``plantmodel.targets``): the report's 달성률.

    ``change_pct`` is the declared change, signed as the programme writes it: +10 (output per
    hour up 10%), -20 (defect rate down 20%). ``line`` is a line slug, or null for every line.
    """

    __tablename__ = "kpi_targets"
    __table_args__ = (UniqueConstraint("tenant_id", "line", "kpi"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    line: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kpi: Mapped[str] = mapped_column(String(64))
    change_pct: Mapped[float] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ReportSchedule(Base):
    """A report sent by e-mail on a schedule (``reportmail``): one tenant's before/after report, or the
    centre's portfolio when ``tenant_id`` is null. ``recipients`` is a comma-separated list."""

    __tablename__ = "report_schedules"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True)
    line: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))  # weekly, monthly, after_commissioning (reportmail.schedule)
    hour: Mapped[int] = mapped_column(Integer, default=7)
    recipients: Mapped[str] = mapped_column(String(2000))
    lang: Mapped[str] = mapped_column(String(2), default="ko")
    active: Mapped[bool] = mapped_column(default=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    tenant: Mapped[Tenant | None] = relationship()


class ReportSend(Base):
    """One delivery of a schedule's occurrence: at most one row per (schedule, key), so no report goes twice.

    status: pending (waiting for its next attempt), sending (claimed by the leader), sent, failed
    (attempts used up, or interrupted mid-send and not retried)."""

    __tablename__ = "report_sends"
    __table_args__ = (UniqueConstraint("schedule_id", "due_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("report_schedules.id", ondelete="CASCADE"))
    due_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_ms: Mapped[int] = mapped_column(BigInteger)
    claimed_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    sent_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    recipients: Mapped[str] = mapped_column(String(2000))
    message_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)


class PlantDb:
    """The engine and a session factory; one per process."""

    def __init__(self, url: str) -> None:
        self.url = url
        sqlite = url.startswith("sqlite")
        connect_args = {"check_same_thread": False} if sqlite else {}
        file_path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None
        if file_path and file_path != ":memory:":
            Path(file_path).parent.mkdir(parents=True, exist_ok=True)  # SQLite creates the file, not its directory
        try:
            # pool_pre_ping: a server database may have restarted (or dropped idle connections) since a pooled
            # connection was last used; test it first instead of failing the next request with a 500
            self.engine: Engine = create_engine(url, connect_args=connect_args, pool_pre_ping=not sqlite)
        except ModuleNotFoundError as exc:
            raise RuntimeError(f"the plant database {redacted(url)} needs the Python driver {exc.name!r}, which is not "
                               "installed: for PostgreSQL, pip install 'smartfactory[postgresql]' and use a "
                               "postgresql+psycopg://user:pass@host/db URL") from None
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    def upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision (a no-op when it is current)."""
        import logging

        alembic_log = logging.getLogger("alembic")
        level = alembic_log.level
        alembic_log.setLevel(logging.WARNING)  # its INFO lines on every start say nothing an operator needs
        try:
            from alembic import command  # after setLevel: importing it logs a "setup plugin" line per plugin

            command.upgrade(alembic_config(self.url, self.engine), "head")
        finally:
            alembic_log.setLevel(level)

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def alembic_config(url: str, engine: Engine | None = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["engine"] = engine
    return cfg


def redacted(url: str) -> str:
    """The URL with its password replaced by ***, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: say nothing of it
        return "<unparseable database URL>"


def database_url(setting: str, base_dir: Path | None) -> str:
    """A relative SQLite path in the config is relative to the config file, like the store's."""
    prefix = "sqlite:///"
    if setting.startswith(prefix) and base_dir is not None:
        path = setting[len(prefix):]
        if path and path != ":memory:" and not Path(path).is_absolute():
            return prefix + str((base_dir / path).resolve())
    return setting


def open_plant(url: str) -> PlantDb:
    plant = PlantDb(url)
    plant.upgrade()
    return plant


def affected(result: Any) -> int:
    """How many rows an UPDATE or DELETE changed (``Session.execute`` is typed as a plain Result)."""
    return int(getattr(result, "rowcount", 0) or 0)

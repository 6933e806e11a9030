"""The delivery loop the API leader runs: find what is due, record it, send it, retry with backoff.

No report goes twice: each occurrence of a schedule gets one ``report_sends`` row (unique per
schedule and key), and an attempt first claims its row (pending -> sending in one conditional
UPDATE), so two workers or two ticks cannot both send it. A row still 'sending' after
``sending_timeout_s`` (the process died mid-send: the server may or may not have taken the
message) is marked failed as interrupted and not retried; ``smartfactory report send --now``
sends it again on purpose. Failed attempts wait retry_base_s x 2^(attempt-1) before the next.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from plantmodel.db import PlantDb, ReportSchedule, ReportSend, Tenant
from reportmail import smtp
from reportmail.content import Job, Mail
from reportmail.schedule import KINDS, due
from reportmail.settings import MailSettings

log = logging.getLogger("reportmail")

Builder = Callable[[Job, str], Mail]
Rollout = Callable[[str, str | None], tuple | None]  # (tenant, line) -> (rollout date, commissioning days) or None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _check_schedule(kind: str, recipients: list[str], lang: str, hour: int, tenant: str | None) -> None:
    """The rules a schedule must keep, for a new one and for a change alike; ValueError says what and how."""
    if kind not in KINDS:
        raise ValueError(f"schedule kind {kind!r}: use one of {', '.join(KINDS)}")
    if lang not in ("ko", "en"):
        raise ValueError(f"language {lang!r}: use ko or en")
    if not 0 <= hour <= 23:
        raise ValueError(f"hour {hour}: use 0-23 (the tenant's local time)")
    bad = [r for r in recipients if "@" not in r or any(c in r for c in " ,;<>\r\n")]
    if not recipients or bad:
        raise ValueError(f"recipients: give e-mail addresses (name@example.com){'; not addresses: ' + ', '.join(bad) if bad else ''}")
    if tenant is None and kind == "after_commissioning":
        raise ValueError("after_commissioning belongs to one SME's rollout: give a tenant")


def add_schedule(plant: PlantDb, tenant: str | None, kind: str, recipients: list[str], lang: str = "ko",
                 line: str | None = None, hour: int = 7, now_ms: int | None = None) -> int:
    """A new schedule; ``tenant`` None = the centre's portfolio. Returns its id."""
    _check_schedule(kind, recipients, lang, hour, tenant)
    with plant.session() as s, s.begin():
        tid = None
        if tenant is not None:
            t = s.scalars(select(Tenant).filter_by(slug=tenant)).first()
            if t is None:
                raise LookupError(f"no tenant {tenant!r}")
            tid = t.id
        row = ReportSchedule(tenant_id=tid, line=line, kind=kind, hour=hour, recipients=",".join(recipients), lang=lang,
                             active=True, created_ms=now_ms if now_ms is not None else _now_ms())
        s.add(row)
        s.flush()
        return row.id


def update_schedule(plant: PlantDb, schedule_id: int, *, recipients: list[str] | None = None, lang: str | None = None,
                    hour: int | None = None, active: bool | None = None) -> dict:
    """Change who gets a schedule, in which language, at what hour, or pause it (active False) while keeping
    its send records; LookupError when there is no such schedule. Occurrences already recorded keep the
    recipients they were recorded with, so a change never re-sends or drops one."""
    with plant.session() as s, s.begin():
        row = s.get(ReportSchedule, schedule_id)
        if row is None:
            raise LookupError(f"no report schedule {schedule_id}")
        new_recipients = recipients if recipients is not None else row.recipients.split(",")
        new_lang = lang if lang is not None else row.lang
        new_hour = hour if hour is not None else row.hour
        _check_schedule(row.kind, new_recipients, new_lang, new_hour, row.tenant.slug if row.tenant else None)
        row.recipients, row.lang, row.hour = ",".join(new_recipients), new_lang, new_hour
        if active is not None:
            row.active = active
        s.flush()
        out = _schedule_out(row)
    log.info("schedule_updated schedule=%d active=%s hour=%d lang=%s recipients=%d", schedule_id, out["active"],
             out["hour"], out["lang"], len(out["recipients"]))
    return out


def delete_schedule(plant: PlantDb, schedule_id: int) -> int:
    """Remove a schedule and its send records (pause it with ``active`` False to keep them); returns how many
    send records went with it. LookupError when there is no such schedule."""
    with plant.session() as s, s.begin():
        row = s.get(ReportSchedule, schedule_id)
        if row is None:
            raise LookupError(f"no report schedule {schedule_id}")
        sends = list(s.scalars(select(ReportSend).filter_by(schedule_id=schedule_id)))
        for r in sends:  # explicit: SQLite enforces ON DELETE CASCADE only with its foreign-key pragma on
            s.delete(r)
        s.flush()  # the sends first: no relationship tells the session to order them before their schedule
        s.delete(row)
    log.info("schedule_deleted schedule=%d sends_removed=%d", schedule_id, len(sends))
    return len(sends)


def _schedule_out(r: ReportSchedule) -> dict:
    return {"id": r.id, "tenant": r.tenant.slug if r.tenant else None, "line": r.line, "kind": r.kind, "hour": r.hour,
            "recipients": r.recipients.split(","), "lang": r.lang, "active": r.active}


def list_schedules(plant: PlantDb) -> list[dict]:
    with plant.session() as s:
        return [_schedule_out(r) for r in s.scalars(select(ReportSchedule).order_by(ReportSchedule.id))]


def list_sends(plant: PlantDb, schedule_id: int | None = None) -> list[dict]:
    with plant.session() as s:
        q = select(ReportSend).order_by(ReportSend.id)
        if schedule_id is not None:
            q = q.where(ReportSend.schedule_id == schedule_id)
        return [{"id": r.id, "schedule": r.schedule_id, "key": r.due_key, "status": r.status, "attempts": r.attempts,
                 "recipients": r.recipients.split(","), "sent_ms": r.sent_ms, "next_attempt_ms": r.next_attempt_ms,
                 "error": r.last_error, "message_id": r.message_id} for r in s.scalars(q)]


class Delivery:
    def __init__(self, plant: PlantDb, mail: MailSettings, build: Builder, rollout: Rollout,
                 default_zone: str = "Asia/Seoul") -> None:
        self.plant, self.mail, self.build, self.rollout, self.default_zone = plant, mail, build, rollout, default_zone
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the loop -----------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="report-delivery", daemon=True)
        self._thread.start()
        log.info("delivery_started interval_s=%g smtp=%s:%d", self.mail.interval_s, self.mail.host, self.mail.port)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.mail.timeout_s + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # a bad schedule or a database hiccup must not end the loop
                log.exception("delivery_tick_failed")
            self._stop.wait(self.mail.interval_s)

    def tick(self, now_ms: int | None = None) -> list[dict]:
        """One pass: record due occurrences, give up on interrupted sends, attempt what is ready."""
        now = now_ms if now_ms is not None else _now_ms()
        self._enqueue(now)
        self._expire(now)
        with self.plant.session() as s:
            ready = [r.id for r in s.scalars(select(ReportSend).where(ReportSend.status == "pending",
                                                                      ReportSend.next_attempt_ms <= now))]
        return [r for r in (self._attempt(i, now) for i in ready) if r is not None]

    def send_now(self, schedule_id: int, now_ms: int | None = None) -> dict:
        """A manual send (``smartfactory report send --now``): a new record, attempted at once."""
        now = now_ms if now_ms is not None else _now_ms()
        with self.plant.session() as s, s.begin():
            sched = s.get(ReportSchedule, schedule_id)
            if sched is None:
                raise LookupError(f"no report schedule {schedule_id} (smartfactory report schedules lists them)")
            row = ReportSend(schedule_id=sched.id, due_key=f"manual-{now}-{uuid.uuid4().hex[:6]}", status="pending", attempts=0,
                             next_attempt_ms=now, recipients=sched.recipients, created_ms=now)
            s.add(row)
            s.flush()
            send_id = row.id
        out = self._attempt(send_id, now)
        assert out is not None
        return out

    # -- steps --------------------------------------------------------------------------------
    def _zone(self, sched: ReportSchedule) -> str:
        return sched.tenant.timezone if sched.tenant else self.default_zone

    def _enqueue(self, now: int) -> None:
        with self.plant.session() as s:
            schedules = list(s.scalars(select(ReportSchedule).where(ReportSchedule.active.is_(True))))
            wanted = []
            for sc in schedules:
                rollout = self.rollout(sc.tenant.slug, sc.line) if (sc.tenant and sc.kind == "after_commissioning") else None
                d = due(sc.kind, sc.hour, self._zone(sc), now, sc.created_ms, *(rollout or (None,)))
                if d is not None:
                    wanted.append((sc.id, d[0], sc.recipients))
        for sid, key, recipients in wanted:
            try:
                with self.plant.session() as s, s.begin():
                    if s.scalars(select(ReportSend.id).filter_by(schedule_id=sid, due_key=key)).first() is None:
                        s.add(ReportSend(schedule_id=sid, due_key=key, status="pending", attempts=0, next_attempt_ms=now,
                                         recipients=recipients, created_ms=now))
                        log.info("delivery_due schedule=%d key=%s", sid, key)
            except IntegrityError:  # another worker recorded it first
                pass

    def _expire(self, now: int) -> None:
        limit = now - int(self.mail.sending_timeout_s * 1000)
        with self.plant.session() as s, s.begin():
            for r in s.scalars(select(ReportSend).where(ReportSend.status == "sending", ReportSend.claimed_ms < limit)):
                r.status = "failed"
                r.last_error = ("interrupted while sending: the server may have taken it, so it is not retried; "
                                "check the mailbox, then 'smartfactory report send --now' if it did not arrive")
                log.warning("delivery_interrupted send=%d schedule=%d key=%s", r.id, r.schedule_id, r.due_key)

    def _attempt(self, send_id: int, now: int) -> dict | None:
        with self.plant.session() as s, s.begin():
            result = s.execute(update(ReportSend).where(ReportSend.id == send_id, ReportSend.status == "pending")
                               .values(status="sending", claimed_ms=now))
            claimed = getattr(result, "rowcount", 0)  # a CursorResult: rows the conditional UPDATE changed
        if claimed != 1:
            return None  # someone else has it
        with self.plant.session() as s:
            r = s.get(ReportSend, send_id)
            assert r is not None
            sc = s.get(ReportSchedule, r.schedule_id)
            assert sc is not None
            job = Job(sc.id, sc.tenant.slug if sc.tenant else None, sc.line, sc.lang, tuple(r.recipients.split(",")))
            key, attempts = r.due_key, r.attempts
        error, message_id = None, None
        try:
            mail = self.build(job, key)
            msg = smtp.message(mail, self.mail.sender, job.recipients, f"sf-{job.schedule_id}-{key}")
            message_id = msg["Message-ID"]
            smtp.send(self.mail, msg)
        except Exception as exc:  # SMTP, network, TLS, a report that cannot be made: recorded, retried
            error = f"{type(exc).__name__}: {exc}"[:500]
        with self.plant.session() as s, s.begin():
            r = s.get(ReportSend, send_id)
            assert r is not None
            r.attempts = attempts + 1
            if error is None:
                r.status, r.sent_ms, r.message_id, r.last_error = "sent", _now_ms(), message_id, None
                log.info("delivery_sent send=%d schedule=%d key=%s to=%s", send_id, job.schedule_id, key, r.recipients)
            else:
                r.last_error = error
                if r.attempts >= self.mail.max_attempts:
                    r.status = "failed"
                    log.error("delivery_failed send=%d schedule=%d key=%s attempts=%d error=%s", send_id,
                              job.schedule_id, key, r.attempts, error)
                else:
                    r.status = "pending"
                    r.next_attempt_ms = now + int(self.mail.retry_base_s * 1000 * 2 ** (r.attempts - 1))
                    log.warning("delivery_retry send=%d schedule=%d key=%s attempt=%d next_in_s=%d error=%s", send_id,
                                job.schedule_id, key, r.attempts, (r.next_attempt_ms - now) // 1000, error)
            out = {"id": r.id, "schedule": r.schedule_id, "key": r.due_key, "status": r.status, "attempts": r.attempts,
                   "error": r.last_error, "next_attempt_ms": r.next_attempt_ms, "recipients": r.recipients.split(",")}
        return out

"""Scheduled report e-mails against a real SMTP server process (aiosmtpd, tests/smtpserver.py) on loopback.

Checked: the message (subject, sender, recipients) and its PDF and XLSX attachments; a failed
attempt is recorded and retried after its backoff; no occurrence is sent twice, not by a second
tick nor by a second worker; STARTTLS with the server's certificate checked, and login; a send
interrupted mid-way is not retried; `smartfactory report send --now`.
"""

from __future__ import annotations

import email
import mailbox
import subprocess
import sys
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from analytics.policy import Policy
from analytics.settings import AnalyticsSettings, RolloutDef
from analytics.synthetic import LineSpec, generate
from plant import MachineRef
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import ReportSend, open_plant
from reportmail.delivery import add_schedule, delete_schedule, list_schedules, list_sends, update_schedule
from reportmail.service import delivery_for
from reportmail.settings import MailSettings
from tests.servers import free_port
from tests.waiting import wait_until
from tsstore.sqlite import SqliteStore

pytestmark = pytest.mark.integration

M = MachineRef("acme", "plant-1", "line-a", "press-1")
FIRST, ROLLOUT = date(2026, 3, 2), date(2026, 3, 16)
KST = ZoneInfo("Asia/Seoul")


def kst_ms(y, mo, d, h, mi=0) -> int:
    return int(datetime(y, mo, d, h, mi, tzinfo=KST).timestamp() * 1000)


CREATED = kst_ms(2026, 4, 6, 6)  # a Monday, before the 07:00 send
DUE = kst_ms(2026, 4, 6, 7, 30)


class SmtpServer:
    def __init__(self, tmp, port: int, tls: tuple[str, str] | None = None, login: tuple[str, str] | None = None):
        self.maildir = tmp / "maildir"
        args = [sys.executable, "-m", "tests.smtpserver", "--port", str(port), "--maildir", str(self.maildir)]
        if tls:
            args += ["--cert", tls[0], "--key", tls[1]]
        if login:
            args += ["--user", login[0], "--password", login[1]]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until the server says it listens (or the process ends)
        assert line.strip() == "ready", f"SMTP test server did not start: {line!r}"

    def messages(self) -> list[email.message.Message]:
        return [email.message_from_bytes(m.as_bytes()) for m in mailbox.Maildir(str(self.maildir), create=True)]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def plant_and_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("delivery")
    store = SqliteStore(tmp / "store.db")
    columns, _ = generate([M], FIRST, 28, LineSpec(process_s=60.0), seed=3, load_scale_after=(ROLLOUT, 0.5))
    for m, cols in columns.items():
        store.write_columns(m, cols)
    plant = open_plant(f"sqlite:///{tmp / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({"tenants": [{"slug": "acme", "name": "에이스 정밀", "rollout_date": ROLLOUT,
        "sites": [{"slug": "plant-1", "lines": [{"slug": "line-a", "name": "프레스 1라인",
                                                 "machines": [{"slug": "press-1", "ideal_cycle_s": 62.0}]}]}],
        "targets": [{"kpi": "material_input_s", "change_pct": -40}]}]}))
    analytics = AnalyticsSettings(default=Policy(default_ideal_cycle_s=62.0),
                                  rollouts=[RolloutDef(tenant="acme", line="line-a", date=ROLLOUT, commissioning_days=0)])
    yield plant, store, analytics, tmp
    store.close()
    plant.close()


def _mail(port: int, **kw) -> MailSettings:
    base = {"host": "127.0.0.1", "port": port, "security": "none", "sender": "Centre <reports@centre.test>",
            "retry_base_s": 60.0, "timeout_s": 20.0}
    return MailSettings(**{**base, **kw})


def test_weekly_report_is_sent_once_with_its_attachments_and_retried_after_a_failure(plant_and_store, tmp_path):
    plant, store, analytics, _ = plant_and_store
    port = free_port()
    sid = add_schedule(plant, "acme", "weekly", ["owner@acme.test", "centre@centre.test"], "ko", "line-a", 7, CREATED)
    d = delivery_for(_mail(port), analytics, store, plant, replicates=200)
    assert d.tick(CREATED) == []  # not due before 07:00
    (first,) = d.tick(DUE)  # no server yet: refused, recorded, retried later
    assert first["status"] == "pending" and first["attempts"] == 1 and "Connection" in first["error"]
    assert first["next_attempt_ms"] == DUE + 60_000
    server = SmtpServer(tmp_path, port)
    try:
        assert d.tick(DUE + 30_000) == []  # the backoff has not passed
        (second,) = d.tick(DUE + 60_000)
        assert second["status"] == "sent" and second["attempts"] == 2
        wait_until(lambda: len(server.messages()) == 1, 30, "the report e-mail")
        msg = server.messages()[0]
        assert "에이스 정밀" in str(email.header.make_header(email.header.decode_header(msg["Subject"])))
        assert msg["To"] == "owner@acme.test, centre@centre.test" and "reports@centre.test" in msg["From"]
        parts = {p.get_filename(): p.get_payload(decode=True) for p in msg.walk() if p.get_filename()}
        (pdf,) = [v for k, v in parts.items() if k.endswith(".pdf")]
        (xlsx,) = [v for k, v in parts.items() if k.endswith(".xlsx")]
        assert pdf.startswith(b"%PDF") and xlsx[:2] == b"PK"
        body = next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
        assert "자재 투입시간이" in body and "달성률" in body
        # again, and from a second worker: nothing more goes out
        other = delivery_for(_mail(port), analytics, store, plant, replicates=200)
        assert d.tick(DUE + 120_000) == [] and other.tick(DUE + 120_000) == []
        assert len(server.messages()) == 1
        (rec,) = [r for r in list_sends(plant, sid)]
        assert rec["status"] == "sent" and rec["key"] == "2026-W15" and rec["recipients"] == ["owner@acme.test",
                                                                                             "centre@centre.test"]
    finally:
        server.stop()


def test_attempts_run_out_and_an_interrupted_send_is_not_retried(plant_and_store):
    plant, store, analytics, _ = plant_and_store
    port = free_port()  # nothing listens
    sid = add_schedule(plant, "acme", "monthly", ["owner@acme.test"], "en", "line-a", 7, CREATED - 40 * 86_400_000)
    d = delivery_for(_mail(port, max_attempts=2, retry_base_s=1.0), analytics, store, plant, replicates=200)
    now = kst_ms(2026, 4, 1, 8)
    out = [r for r in d.tick(now) if r["schedule"] == sid]
    assert out[0]["status"] == "pending"
    out = [r for r in d.tick(now + 1_000) if r["schedule"] == sid]
    assert out[0]["status"] == "failed" and out[0]["attempts"] == 2
    assert [r for r in d.tick(now + 10_000_000) if r["schedule"] == sid] == []
    # a send claimed by a worker that died: after the timeout it is failed, never sent again
    with plant.session() as s, s.begin():
        s.add(ReportSend(schedule_id=sid, due_key="2026-03", status="sending", attempts=0, next_attempt_ms=0,
                         claimed_ms=now - 3_600_000, recipients="owner@acme.test", created_ms=now - 3_600_000))
    d.tick(now + 2_000)
    rec = next(r for r in list_sends(plant, sid) if r["key"] == "2026-03")
    assert rec["status"] == "failed" and "interrupted" in rec["error"]


def test_a_paused_schedule_sends_nothing_and_a_deleted_one_takes_its_records(plant_and_store):
    plant, store, analytics, _ = plant_and_store
    sid = add_schedule(plant, "acme", "monthly", ["owner@acme.test"], "en", "line-a", 7, CREATED - 40 * 86_400_000)
    d = delivery_for(_mail(free_port()), analytics, store, plant, replicates=200)
    update_schedule(plant, sid, active=False)
    assert [r for r in d.tick(kst_ms(2026, 4, 1, 8)) if r["schedule"] == sid] == []
    update_schedule(plant, sid, active=True)
    assert len([r for r in d.tick(kst_ms(2026, 4, 1, 8)) if r["schedule"] == sid]) == 1  # resumed: the month is due
    assert delete_schedule(plant, sid) == 1
    assert list_sends(plant, sid) == [] and sid not in {s["id"] for s in list_schedules(plant)}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return str(cert), str(key)


def test_starttls_and_login(plant_and_store, certificate, tmp_path, monkeypatch):
    plant, store, analytics, _ = plant_and_store
    port = free_port()
    server = SmtpServer(tmp_path, port, tls=certificate, login=("reports", "s3cret-pass"))
    try:
        sid = add_schedule(plant, "acme", "weekly", ["owner@acme.test"], "en", "line-a", 7, CREATED)
        monkeypatch.setenv("SF_TEST_SMTP_PASSWORD", "wrong")
        mail = _mail(port, security="starttls", ca_file=certificate[0], username="reports",
                     password_env="SF_TEST_SMTP_PASSWORD")
        d = delivery_for(mail, analytics, store, plant, replicates=200)
        r = d.send_now(sid, DUE)
        assert r["status"] == "pending" and "Authentication" in r["error"]
        monkeypatch.setenv("SF_TEST_SMTP_PASSWORD", "s3cret-pass")
        assert d.send_now(sid, DUE)["status"] == "sent"
        wait_until(lambda: len(server.messages()) == 1, 30, "the report e-mail over STARTTLS")
        untrusted = delivery_for(_mail(port, security="starttls", username="reports", password_env="SF_TEST_SMTP_PASSWORD"),
                                 analytics, store, plant, replicates=200)
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.send_now(sid, DUE)["error"]  # a self-signed server is not trusted
    finally:
        server.stop()


def test_cli_report_send_now(plant_and_store, tmp_path):
    from cli.main import cli

    plant, store, analytics, tmp = plant_and_store
    port = free_port()
    server = SmtpServer(tmp_path, port)
    try:
        cfg = tmp / "config.yaml"
        cfg.write_text(f"store: {{kind: sqlite, path: {tmp / 'store.db'}}}\napi: {{database_url: 'sqlite:///{tmp / 'plant.db'}'}}\n"
                       "analytics:\n  default: {default_ideal_cycle_s: 62.0}\n"
                       "  rollouts: [{tenant: acme, line: line-a, date: 2026-03-16, commissioning_days: 0}]\n"
                       f"mail: {{host: 127.0.0.1, port: {port}, security: none, sender: reports@centre.test}}\n")
        runner = CliRunner()
        r = runner.invoke(cli, ["report", "schedule", "-c", str(cfg), "--tenant", "acme", "--line", "line-a",
                                "--every", "weekly", "--to", "cli@acme.test", "--lang", "en"])
        assert r.exit_code == 0, r.output
        sid = int(r.output.split()[1].rstrip(":"))
        r = runner.invoke(cli, ["report", "send", "-c", str(cfg), "--now", "--schedule", str(sid)])
        assert r.exit_code == 0, r.output
        assert "sent to cli@acme.test" in r.output
        wait_until(lambda: len(server.messages()) == 1, 30, "the manual report e-mail")
        r = runner.invoke(cli, ["report", "schedules", "-c", str(cfg)])
        assert f"schedule {sid}: weekly acme/line-a" in r.output and "manual-" in r.output and "sent" in r.output
    finally:
        server.stop()

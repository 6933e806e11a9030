"""The plant model on a real PostgreSQL server (Debian's postgresql 15 in CI), not only on SQLite.

SQLite stores a 300-character name in a String(200) column and an out-of-range integer in an
Integer column; PostgreSQL refuses both. These tests run the Alembic migration on an empty
database, seed through the CLI, and drive logins, tokens, alarm rules, alarms and tenant
isolation through the FastAPI app with the plant database on PostgreSQL (the time-series
store is the embedded SQLite one: it is not what is under test here).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.access import PUBLIC
from api.app import create_app
from api.live import alarms_of
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import Alarm, AlarmRule, alembic_config, open_plant
from api.settings import ApiSettings
from plant import MachineRef
from tsstore import Point
from tsstore.sqlite import SqliteStore
from tests.servers import require_psycopg

require_psycopg()

pytestmark = pytest.mark.integration

A = MachineRef("acme", "changwon-1", "press-line-1", "press-1")
B = MachineRef("bravo", "busan-1", "line-b", "press-b")
PW = "correct-horse-1"
TABLES = {"centres", "tenants", "sites", "lines", "machines", "shifts", "users", "web_sessions", "api_tokens",
          "broker_accounts", "alarm_rules", "alarms", "orders", "login_throttle", "login_devices", "kpi_targets",
          "report_schedules", "report_sends"}
CLI = [sys.executable, "-m", "cli.main"]


def _head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


HEAD = _head()

SEED = {
    "centre": "경남 스마트공장 센터",
    "tenants": [
        {"slug": A.tenant, "name": "한일오토파츠", "timezone": "Asia/Seoul", "rollout_date": "2026-03-02",
         "sites": [{"slug": A.site, "name": "창원 1공장", "lines": [
             {"slug": A.line, "name": "프레스 라인 1",
              "shifts": [{"name": "주간", "start": "06:00", "end": "18:00", "weekdays": "01234"},
                         {"name": "야간", "start": "22:00", "end": "06:00"}],
              "machines": [{"slug": A.machine, "name": "프레스 1호기", "name_en": "Press 1", "ideal_cycle_s": 12.5,
                            "gateway": "gw-acme",
                            "rollout_date": "2026-03-16",
                            "alarms": [{"name": "fault > 30 s", "kind": "state_duration", "tag": "state",
                                        "state": 4, "duration_s": 30}]}]}]}]},
        {"slug": B.tenant, "name": "Bravo Metal", "timezone": "UTC",
         "sites": [{"slug": B.site, "lines": [{"slug": B.line, "machines": [
             {"slug": B.machine, "alarms": [{"name": "force high", "kind": "threshold", "tag": "force", "op": ">",
                                             "threshold": 0}]}]}]}]},
    ],
    "users": [
        {"username": "owner-a", "password": PW, "role": "sme_owner", "tenant": A.tenant},
        {"username": "operator-a", "password": PW, "role": "sme_operator", "tenant": A.tenant},
        {"username": "owner-b", "password": PW, "role": "sme_owner", "tenant": B.tenant, "language": "en"},
        {"username": "engineer", "password": PW, "role": "centre_engineer"},
    ],
    "broker_accounts": [
        {"username": "gw-acme", "password": PW, "tenant": A.tenant},
        {"username": "gw-bravo", "password": PW, "tenant": B.tenant},
        {"username": "collector-1", "password": PW, "kind": "collector"},
    ],
}


def _tables(postgres, database: str) -> set[str]:
    out = postgres.psql(database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return set(out.split()) if out else set()


def _schema(postgres, database: str) -> str:
    """Every column with its type, nullability and default: what 'no-op' has to leave alone."""
    return postgres.psql(database, "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, "
                                   "column_default FROM information_schema.columns WHERE table_schema = 'public' "
                                   "ORDER BY table_name, ordinal_position")


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


# -- the migration -------------------------------------------------------------------------------

def test_migration_builds_the_schema_on_an_empty_database_and_a_second_run_changes_nothing(postgres):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from plantmodel.db import Base

    url = postgres.create_database("migrate_once")
    assert _tables(postgres, "migrate_once") == set()
    plant = open_plant(url)
    try:
        assert _tables(postgres, "migrate_once") == TABLES | {"alembic_version"}
        assert postgres.psql("migrate_once", "SELECT version_num FROM alembic_version") == HEAD
        with plant.engine.connect() as conn:  # the models and the migration agree in PostgreSQL's types too
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        types = dict(line.split("|") for line in postgres.psql(
            "migrate_once", "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                            "WHERE table_schema = 'public'").splitlines())
        assert types["users.active"] == "boolean"
        assert types["web_sessions.expires_ms"] == types["alarms.raised_ms"] == "bigint"  # epoch ms exceed 2^31
        assert types["tenants.rollout_date"] == "date"

        apply_seed(plant, PlantSeed.model_validate({"tenants": [{"slug": "acme", "name": "한일"}]}))
        before = _schema(postgres, "migrate_once")
        open_plant(url).close()  # what every later start does
        assert _schema(postgres, "migrate_once") == before
        assert postgres.psql("migrate_once", "SELECT version_num FROM alembic_version") == HEAD
        assert postgres.psql("migrate_once", "SELECT slug || ' ' || name FROM tenants") == "acme 한일"
    finally:
        plant.close()


def test_upgrade_from_0001_then_downgrade_step_by_step_to_base_and_up_again(postgres):
    """What the unit tests check on SQLite, on PostgreSQL: old alarms get a cleared reason on the way up;
    on the way down a deleted rule goes with its alarms and the live ones stay; base drops every table."""
    from alembic import command
    from sqlalchemy import text

    url = postgres.create_database("migrate_steps")
    command.upgrade(alembic_config(url), "0001")
    postgres.psql("migrate_steps", """
        INSERT INTO centres (name) VALUES ('c');
        INSERT INTO tenants (centre_id, slug, name, timezone) VALUES (1, 'acme', 'A', 'UTC');
        INSERT INTO sites (tenant_id, slug, name) VALUES (1, 's1', 'S');
        INSERT INTO lines (site_id, slug, name) VALUES (1, 'l1', 'L');
        INSERT INTO machines (line_id, slug, name, ideal_cycle_s) VALUES (1, 'press-1', 'P', 10);
        INSERT INTO alarm_rules (machine_id, name, kind, tag, op, threshold) VALUES (1, 'hot', 'threshold', 'force', '>', 830);
        INSERT INTO alarms (rule_id, raised_ms, cleared_ms) VALUES (1, 1, 2), (1, 3, NULL);""")
    plant = open_plant(url)
    try:
        assert postgres.psql("migrate_steps", "SELECT version_num FROM alembic_version") == HEAD
        with plant.session() as s:
            assert [(a.status, a.cleared_reason) for a in s.scalars(select(Alarm).order_by(Alarm.id))] == [
                ("cleared", "condition_ended"), ("active", None)]
        assert [a["rule"] for a in alarms_of(plant, "acme")] == ["hot"]
        with plant.session() as s, s.begin():
            gone = AlarmRule(machine_id=1, name="gone", kind="threshold", tag="force", op=">", threshold=1, deleted_ms=5)
            s.add(gone)
            s.flush()
            s.add(Alarm(rule_id=gone.id, raised_ms=4, cleared_ms=5))
        command.downgrade(alembic_config(url, plant.engine), "0001")
        with plant.engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM alarm_rules")).scalars().all() == ["hot"]
            assert conn.execute(text("SELECT rule_id, cleared_ms FROM alarms ORDER BY id")).all() == [(1, 2), (1, None)]
        command.downgrade(alembic_config(url, plant.engine), "base")
        assert _tables(postgres, "migrate_steps") == {"alembic_version"}
        assert postgres.psql("migrate_steps", "SELECT count(*) FROM alembic_version") == "0"
    finally:
        plant.close()
    open_plant(url).close()
    assert _tables(postgres, "migrate_steps") == TABLES | {"alembic_version"}


def test_processes_starting_together_on_an_empty_database_all_come_up(postgres):
    """API replicas (or `plant seed` beside the API) upgrading at once used to collide creating the tables
    (a unique violation in 2 of 3 tries with four processes); the migration now serialises on a lock."""
    for attempt in range(2):
        database = f"race_{attempt}"
        url = postgres.create_database(database)
        code = f"from plantmodel.db import open_plant; open_plant({url!r}).close()"
        procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(4)]
        results = [(p.wait(120), p.stderr.read()) for p in procs]
        assert [rc for rc, _ in results] == [0, 0, 0, 0], [err[-600:] for rc, err in results if rc]
        assert _tables(postgres, database) == TABLES | {"alembic_version"}
        assert postgres.psql(database, "SELECT version_num FROM alembic_version") == HEAD


# -- the app on PostgreSQL -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def pg_app(postgres, tmp_path_factory):
    """Seeded through the CLI (`smartfactory plant seed`) into a fresh database; one app for the module
    (argon2 hashing is deliberately slow). Tests that change state say so."""
    tmp = tmp_path_factory.mktemp("pg_app")
    url = postgres.create_database("plant")
    config, seed = tmp / "smartfactory.yaml", tmp / "centre.yaml"
    config.write_text(yaml.safe_dump({"api": {"database_url": url}}))
    seed.write_text(yaml.safe_dump(SEED, allow_unicode=True), encoding="utf-8")
    assert "seeded 2 tenants, 4 users, 3 broker accounts" in _cli("plant", "seed", "-c", str(config), str(seed)).stdout
    plant = open_plant(url)
    with plant.session() as s, s.begin():  # an open alarm in tenant B, for the isolation checks
        rule = s.scalars(select(AlarmRule).filter_by(name="force high")).one()
        s.add(Alarm(rule_id=rule.id, raised_ms=int(time.time() * 1000), value=1.0))
    store = SqliteStore(tmp / "store.db")
    now = int(time.time() * 1000)
    store.write([Point(m, now - (5 - i) * 1000, {"state": 2, "force": 800.0, "good_count": i})
                 for m in (A, B) for i in range(5)])
    app = create_app(store, ApiSettings(), plant, run_alarms=False)
    app.state.test_config = config
    yield app
    plant.close()


def _login(app, username: str) -> TestClient:
    c = TestClient(app)
    r = c.post("/api/v1/auth/login", json={"username": username, "password": PW})
    assert r.status_code == 200, r.text
    return c


def test_seed_through_the_cli_reads_back_as_given_and_applies_again_without_duplicates(postgres, pg_app):
    tree = _login(pg_app, "engineer").get("/api/v1/tenants").json()
    assert [t["tenant"] for t in tree] == ["acme", "bravo"]
    acme = tree[0]
    assert (acme["name"], acme["timezone"], acme["rollout_date"]) == ("한일오토파츠", "Asia/Seoul", "2026-03-02")
    line = acme["sites"][0]["lines"][0]
    assert (acme["sites"][0]["name"], line["name"]) == ("창원 1공장", "프레스 라인 1")
    assert line["shifts"] == [{"name": "주간", "start": "06:00", "end": "18:00", "weekdays": "01234"},
                              {"name": "야간", "start": "22:00", "end": "06:00", "weekdays": "0123456"}]
    assert line["machines"] == [{"machine": "press-1", "name": "프레스 1호기", "name_en": "Press 1",
                                 "ideal_cycle_s": 12.5, "rollout_date": "2026-03-16", "gateway": "gw-acme"}]

    def counts() -> str:
        return postgres.psql("plant", "SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in sorted(TABLES)))

    before = counts()
    apply_seed(pg_app.state.services.plant, PlantSeed.model_validate(SEED))
    assert counts() == before


def test_logins_sessions_and_tokens(pg_app):
    c = _login(pg_app, "owner-a")
    me = c.get("/api/v1/me").json()
    assert (me["username"], me["role"], me["tenant"], me["language"]) == ("owner-a", "sme_owner", "acme", "ko")
    token = c.post("/api/v1/me/tokens", json={"name": "야간 내보내기"}).json()["token"]
    cli_token = _cli("plant", "token", "-c", str(pg_app.state.test_config), "owner-b", "--name", "nightly").stdout.strip()
    anonymous = TestClient(pg_app)
    assert anonymous.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()["username"] == "owner-a"
    assert anonymous.get("/api/v1/me", headers={"Authorization": f"Bearer {cli_token}"}).json()["username"] == "owner-b"
    assert anonymous.get("/api/v1/me", headers={"Authorization": "Bearer sf_not-a-token"}).status_code == 401
    # usernames compare exactly on PostgreSQL as on SQLite
    for username, password in (("OWNER-A", PW), ("owner-a", "wrong-password"), ("nobody", PW)):
        assert anonymous.post("/api/v1/auth/login", json={"username": username, "password": password}).status_code == 401
    c.post("/api/v1/auth/logout")
    assert c.get("/api/v1/me").status_code == 401


def test_alarm_rule_added_raised_acknowledged_cleared_changed_and_deleted(pg_app):
    """Adds a rule to tenant A (and deletes it again) and runs the alarm engine's evaluation by hand."""
    owner, operator = _login(pg_app, "owner-a"), _login(pg_app, "operator-a")
    rule = {"site": A.site, "line": A.line, "machine": A.machine, "name": "force > 830 kN", "kind": "threshold",
            "tag": "force", "op": ">", "threshold": 830}
    assert operator.post("/api/v1/alarm-rules/acme", json=rule).status_code == 403
    added = owner.post("/api/v1/alarm-rules/acme", json=rule)
    assert added.status_code == 201
    assert [r["name"] for r in owner.get("/api/v1/alarm-rules/acme").json()] == ["fault > 30 s", "force > 830 kN"]

    store, engine = pg_app.state.services.store, pg_app.state.services.alarms
    now = int(time.time() * 1000)
    store.write([Point(A, now, {"state": 2, "force": 850.0})])
    engine.tick(now)
    [alarm] = [a for a in operator.get("/api/v1/alarms/acme").json() if a["rule"] == "force > 830 kN"]
    assert (alarm["status"], alarm["raised_ms"], alarm["value"]) == ("active", now, 850.0)
    assert operator.post(f"/api/v1/alarms/acme/{alarm['id']}/ack").json() == {"id": alarm["id"],
                                                                               "status": "acknowledged"}
    store.write([Point(A, now + 1000, {"state": 2, "force": 800.0})])
    engine.tick(now + 1000)
    assert all(a["id"] != alarm["id"] for a in operator.get("/api/v1/alarms/acme").json())
    [cleared] = [a for a in operator.get("/api/v1/alarms/acme", params={"status": "cleared"}).json()
                 if a["id"] == alarm["id"]]
    assert (cleared["acknowledged_by"], cleared["cleared_ms"], cleared["cleared_reason"]) == (
        "operator-a", now + 1000, "condition_ended")
    # raised again, then the owner changes the rule's condition (its open alarm ends) and deletes it
    store.write([Point(A, now + 2000, {"state": 2, "force": 900.0})])
    engine.tick(now + 2000)
    rule_id = added.json()["id"]
    changed = owner.put(f"/api/v1/alarm-rules/acme/{rule_id}", json={**rule, "threshold": 950, "on_delay_s": 5,
                                                                        "deadband": 20, "off_delay_s": 10})
    assert (changed.status_code, changed.json()["cleared_alarms"]) == (200, 1)
    [listed] = [r for r in owner.get("/api/v1/alarm-rules/acme").json() if r["id"] == rule_id]
    assert (listed["on_delay_s"], listed["deadband"], listed["off_delay_s"]) == (5.0, 20.0, 10.0)  # migration 0008
    assert owner.delete(f"/api/v1/alarm-rules/acme/{rule_id}").json() == {"id": rule_id, "deleted": True,
                                                                          "cleared_alarms": 0}
    assert [r["name"] for r in owner.get("/api/v1/alarm-rules/acme").json()] == ["fault > 30 s"]
    history = [(a["cleared_reason"], a["cleared_by"]) for a in
               operator.get("/api/v1/alarms/acme", params={"status": "cleared"}).json() if a["rule"] == rule["name"]]
    assert history == [("rule_changed", "owner-a"), ("condition_ended", None)]  # newest first


def test_values_that_do_not_fit_the_columns_are_refused_with_a_clear_error(pg_app):
    """On SQLite these were stored; on PostgreSQL they were 500s (out of range, value too long)."""
    owner = _login(pg_app, "owner-a")
    rule = {"site": A.site, "line": A.line, "machine": A.machine, "name": "huge state", "kind": "state_duration",
            "tag": "state", "state": 2**40, "duration_s": 5}
    r = owner.post("/api/v1/alarm-rules/acme", json=rule)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "state"]
    r = owner.post(f"/api/v1/alarms/acme/{2**31}/ack")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "alarm_id"]
    r = owner.delete(f"/api/v1/alarm-rules/acme/{2**31}")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "rule_id"]
    with pytest.raises(ValueError, match="tenants.0.name"):
        PlantSeed.model_validate({"tenants": [{"slug": "long", "name": "x" * 201}]})
    with pytest.raises(ValueError, match="unknown time zone 'Asia/Changwon'"):
        PlantSeed.model_validate({"tenants": [{"slug": "tz", "timezone": "Asia/Changwon"}]})
    result = _cli("plant", "user", "-c", str(pg_app.state.test_config), "u" * 65, "--role", "centre_engineer",
                  "--password", PW, check=False)
    assert result.returncode == 2 and "username 'uuu" in result.stderr and "Traceback" not in result.stderr


#: tenant-scoped routes for centre roles only (the tenant's own owner gets 403): tests/unit/test_api_access.py
CENTRE_ONLY_SCOPED = {"/api/v1/centre/tenants/{tenant}"}


def test_owner_of_a_gets_404_for_every_route_of_b(pg_app):
    owner_a, owner_b = _login(pg_app, "owner-a"), _login(pg_app, "owner-b")
    with pg_app.state.services.plant.session() as s:
        b_alarm = s.scalars(select(Alarm).join(AlarmRule).where(AlarmRule.name == "force high")).first().id
    values = {"tenant": B.tenant, "site": B.site, "line": B.line, "machine": B.machine, "alarm_id": str(b_alarm)}
    bodies = {"/api/v1/alarm-rules/{tenant}": {"site": B.site, "line": B.line, "machine": B.machine, "name": "hot",
                                               "kind": "threshold", "tag": "force", "op": ">", "threshold": 1.0}}
    pg_app.openapi_schema = None
    scoped = [(method.upper(), path) for path, ops in pg_app.openapi()["paths"].items() for method, op in ops.items()
              if "{tenant}" in path and not op.get(PUBLIC)]
    assert len(scoped) >= 10  # dashboards, events, machines, history, export, alarms, ack, rules, tenant, reports
    for method, path in scoped:
        url = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)
        r = owner_a.request(method, url, params={"tag": "force"}, json=bodies.get(path))
        assert r.status_code == 404 and r.json() == {"detail": "not found"}, f"{method} {path}: {r.status_code}"
        if method == "GET" and not path.endswith("/events") and path not in CENTRE_ONLY_SCOPED:
            # the 404 above is isolation, not a bad URL (centre-only routes answer the owner 403 instead)
            ok = owner_b.request(method, url, params={"tag": "force"})
            isolated = ok.status_code == 404 and ok.json() == {"detail": "not found"}
            assert ok.status_code not in (401, 403, 500) and not isolated, (
                f"{method} {path} as owner-b: {ok.status_code} {ok.text[:200]}")
    assert [t["tenant"] for t in owner_a.get("/api/v1/tenants").json()] == ["acme"]
    assert owner_a.get("/api/v1/tenants/bravo").json() == owner_a.get("/api/v1/tenants/nobody").json()
    assert owner_a.get("/api/v1/tenants/ACME").status_code == 404  # slugs compare exactly: no other spelling


def test_concurrent_requests_while_the_alarm_engine_runs(pg_app):
    """More requests at once than the connection pool holds (5 + 10 overflow), each in its own session,
    while the alarm engine evaluates in another thread, like in the running API."""
    clients = [_login(pg_app, user) for user in ("owner-a", "operator-a", "owner-b", "engineer")]
    paths = {"owner-a": ["/api/v1/alarms/acme", "/api/v1/alarm-rules/acme",
                         f"/api/v1/lines/{A.tenant}/{A.site}/{A.line}/dashboard"],
             "operator-a": ["/api/v1/tenants/acme", "/api/v1/alarms/acme?status=cleared"],
             "owner-b": ["/api/v1/alarms/bravo", f"/api/v1/lines/{B.tenant}/{B.site}/{B.line}/dashboard"],
             "engineer": ["/api/v1/tenants", "/api/v1/centre/overview"]}
    jobs = [(c, path) for c in clients for path in paths[c.get("/api/v1/me").json()["username"]]] * 8
    stop, ticks, failures = threading.Event(), [], []

    def engine_loop() -> None:
        while not stop.is_set():
            try:
                pg_app.state.services.alarms.tick(int(time.time() * 1000))
                ticks.append(1)
            except Exception as exc:  # noqa: BLE001 - reported below
                failures.append(repr(exc))

    def tokens(c: TestClient) -> int:
        return c.post("/api/v1/me/tokens", json={"name": "parallel"}).status_code

    engine = threading.Thread(target=engine_loop)
    engine.start()
    try:
        with ThreadPoolExecutor(max_workers=24) as pool:
            statuses = list(pool.map(lambda job: job[0].get(job[1]).status_code, jobs))
            created = list(pool.map(tokens, clients * 4))
    finally:
        stop.set()
        engine.join(30)
    assert statuses == [200] * len(jobs) and created == [201] * len(created)
    assert ticks and not failures, failures[:3]


def test_requests_after_the_database_restarts_succeed(postgres, pg_app):
    """Pooled connections die with the server; the first request after a restart used to get a 500."""
    c = _login(pg_app, "engineer")
    assert c.get("/api/v1/tenants").status_code == 200
    postgres.restart()
    assert [c.get("/api/v1/tenants").status_code for _ in range(3)] == [200, 200, 200]
    assert _login(pg_app, "owner-a").get("/api/v1/alarms/acme").status_code == 200


def test_cli_error_names_the_database_without_its_password(postgres, tmp_path):
    wrong = postgres.url("plant").replace(f"@127.0.0.1:{postgres.port}", f"x@127.0.0.1:{postgres.port}")
    config = tmp_path / "smartfactory.yaml"
    config.write_text(yaml.safe_dump({"api": {"database_url": wrong}}))
    result = _cli("plant", "token", "-c", str(config), "owner-a", check=False)
    assert result.returncode == 2
    assert f"cannot open the plant database postgresql+psycopg://smartfactory:***@127.0.0.1:{postgres.port}/plant" \
        in result.stderr, result.stderr
    assert "password authentication failed" in result.stderr
    assert postgres.password not in result.stderr and quote(postgres.password, safe="") not in result.stderr
    assert "Traceback" not in result.stderr


def test_order_import_is_all_or_nothing_and_reads_back_on_postgresql(pg_app):
    c = _login(pg_app, "owner-a")
    good = "주문번호,수량,주문일,납기,완료일,라인\nPO-1,100,2026-03-02,2026-03-09,2026-03-08,press-line-1\nPO-2,50,2026-03-03,2026-03-10,,\n"
    r = c.post("/api/v1/orders/acme", content=good.encode("cp949"), headers={"Content-Type": "text/csv"})
    assert r.status_code == 200 and r.json()["imported"] == 2, r.text
    bad = "order_id,quantity,ordered,due\nPO-3,10,2026-03-04,2026-03-11\nPO-4,10,2026-03-05,not-a-date\n"
    r = c.post("/api/v1/orders/acme", content=bad, headers={"Content-Type": "text/csv"})
    assert r.status_code == 422 and [e["loc"] for e in r.json()["detail"]] == [["body", 3, "due"]]  # row 3 named
    listed = c.get("/api/v1/orders/acme").json()
    rows = listed["orders"] if isinstance(listed, dict) else listed
    assert sorted(o["order_id"] for o in rows) == ["PO-1", "PO-2"]  # nothing of the bad file was kept
    c.post("/api/v1/auth/logout")


# -- credentials that can be taken back, login throttling (issue #11) ----------------------------

def test_upgrade_to_0005_gives_tokens_from_before_an_expiry(postgres):
    from alembic import command

    url = postgres.create_database("migrate_tokens")
    command.upgrade(alembic_config(url), "0003")
    postgres.psql("migrate_tokens", """
        INSERT INTO users (username, password_hash, role, active) VALUES ('kim', 'x', 'centre_engineer', true);
        INSERT INTO api_tokens (token_hash, user_id, name, created_ms) VALUES ('abc', 1, 'old script', 1);""")
    before = int(time.time() * 1000)
    open_plant(url).close()
    expires = int(postgres.psql("migrate_tokens", "SELECT expires_ms FROM api_tokens"))
    assert before + 90 * 86_400_000 <= expires <= int(time.time() * 1000) + 90 * 86_400_000


def test_tokens_listed_revoked_and_ended_by_a_password_change(pg_app):
    owner = _login(pg_app, "owner-b")
    made = owner.post("/api/v1/me/tokens", json={"name": "weekly", "expires_in_days": 10}).json()
    anonymous = TestClient(pg_app)
    assert anonymous.get("/api/v1/me", headers={"Authorization": f"Bearer {made['token']}"}).status_code == 200
    listed = owner.get("/api/v1/me/tokens").json()
    assert "weekly" in [t["name"] for t in listed] and made["token"] not in str(listed)
    assert owner.delete(f"/api/v1/me/tokens/{made['id']}").status_code == 200
    assert anonymous.get("/api/v1/me", headers={"Authorization": f"Bearer {made['token']}"}).status_code == 401
    other = _login(pg_app, "owner-b")
    r = owner.post("/api/v1/me/password", json={"current_password": PW, "new_password": "password"})
    assert r.status_code == 422 and "common password" in r.json()["detail"][0]["msg"]
    new = "lathe-morning-cactus-47"
    r = owner.post("/api/v1/me/password", json={"current_password": PW, "new_password": new})
    assert r.status_code == 200 and r.json()["sessions_ended"] >= 2
    assert other.get("/api/v1/me").status_code == 401
    # and back, for the module's other tests
    assert owner.post("/api/v1/me/password", json={"current_password": new, "new_password": PW}).status_code == 200


def test_login_counts_from_concurrent_workers_add_up(pg_app):
    """Workers count failures with one atomic UPDATE each: none is lost when they collide (READ COMMITTED)."""
    from plantmodel.db import LoginThrottle
    from plantmodel.throttle import Throttle, ThrottlePolicy

    throttle = Throttle(pg_app.state.services.plant, ThrottlePolicy(free_per_address=1000, free_per_account=1000))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: throttle.failed("127.0.2.99", f"user-{i % 3}", None), range(24)))
    with pg_app.state.services.plant.session() as s:
        counts = {r.key: r.failures for r in s.scalars(select(LoginThrottle).where(LoginThrottle.key.like("%127.0.2.99%")
                                                                                   | LoginThrottle.key.like("user:user-%")))}
    assert counts == {"addr:127.0.2.99": 24, "user:user-0": 8, "user:user-1": 8, "user:user-2": 8}
    attacker = TestClient(pg_app, client=("127.0.2.99", 1))
    r = attacker.post("/api/v1/auth/login", json={"username": "owner-a", "password": "wrong-password"})
    assert r.status_code == 401  # the counter above wrote no wait (its policy allows 1000); this is the 25th failure
    r = attacker.post("/api/v1/auth/login", json={"username": "owner-a", "password": PW})
    # the app's policy (20 free per address) on the shared count: 2^(25-20) s
    assert r.status_code == 429 and "from this address" in r.json()["detail"] and int(r.headers["retry-after"]) >= 31

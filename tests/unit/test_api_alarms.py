"""Alarm rules (pure evaluation) and the engine's active → acknowledged → cleared life on real SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from api.alarms import AlarmEngine, RuleSpec, evaluate
from plantmodel.credentials import hash_password, mosquitto_hash, mosquitto_verify, verify_password
from plantmodel.brokerfiles import render
from api.live import alarms_of
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import Alarm, AlarmRule, alembic_config, open_plant
from plant import MachineRef
from plant.states import MachineState as S
from tsstore import Point
from tsstore.sqlite import SqliteStore

HOT = RuleSpec("threshold", "force", ">", 830.0)
FAULT_30S = RuleSpec("state_duration", "state", state=S.FAULT, duration_s=30)
M = MachineRef("acme", "s1", "l1", "press-1")
T0 = 1_795_000_000_000


@pytest.mark.parametrize("value, expected", [(831.0, True), (830.0, False), (10.0, False)])
def test_threshold(value, expected):
    assert evaluate(HOT, value, T0, None, T0 + 1000, stale_ms=10_000) is expected


def test_stale_or_missing_or_text_data_decides_nothing():
    assert evaluate(HOT, 900.0, T0, None, T0 + 60_000, stale_ms=10_000) is None
    assert evaluate(HOT, None, None, None, T0, stale_ms=10_000) is None
    assert evaluate(HOT, "n/a", T0, None, T0, stale_ms=10_000) is None


def test_state_duration():
    assert evaluate(FAULT_30S, 4.0, T0 + 40_000, T0, T0 + 40_000, 10_000) is True
    assert evaluate(FAULT_30S, 4.0, T0 + 20_000, T0, T0 + 20_000, 10_000) is False
    assert evaluate(FAULT_30S, 2.0, T0 + 40_000, T0, T0 + 40_000, 10_000) is False


@pytest.fixture
def engine(tmp_path):
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({"tenants": [{"slug": "acme", "sites": [{"slug": "s1", "lines": [
        {"slug": "l1", "machines": [{"slug": "press-1", "alarms": [
            {"name": "fault > 30 s", "kind": "state_duration", "tag": "state", "state": S.FAULT, "duration_s": 30},
            {"name": "force > 830", "kind": "threshold", "tag": "force", "op": ">", "threshold": 830}]}]}]}]}]}))
    store = SqliteStore(tmp_path / "store.db")
    return AlarmEngine(plant, store, stale_ms=10_000), store, plant


def _statuses(plant) -> dict[str, str]:
    return {a["rule"]: a["status"] for a in alarms_of(plant, "acme", ("active", "acknowledged", "cleared"))}


def test_alarm_life_raised_acknowledged_cleared(engine):
    eng, store, plant = engine
    # running, force normal: nothing
    store.write([Point(M, T0 + i * 1000, {"state": S.PROCESSING, "force": 800.0}) for i in range(5)])
    assert eng.tick(T0 + 4000) == 0 and _statuses(plant) == {}
    # force spikes: raised once, not again on the next tick
    store.write([Point(M, T0 + 5000, {"state": S.FAULT, "force": 850.0})])
    assert eng.tick(T0 + 5000) == 1
    assert eng.tick(T0 + 5500) == 0
    assert _statuses(plant) == {"force > 830": "active"}
    # fault held for 30 s (samples every second): the state-duration rule fires
    store.write([Point(M, T0 + 5000 + i * 1000, {"state": S.FAULT, "force": 850.0}) for i in range(1, 31)])
    assert eng.tick(T0 + 35_000) == 1
    assert _statuses(plant) == {"force > 830": "active", "fault > 30 s": "active"}
    # acknowledged by a person, then cleared when the condition ends
    with plant.session() as s, s.begin():
        alarm = next(a for a in s.scalars(select(Alarm)) if a.rule.name == "force > 830")
        alarm.acknowledged_ms, alarm.acknowledged_by = T0 + 36_000, "owner"
    assert _statuses(plant)["force > 830"] == "acknowledged"
    store.write([Point(M, T0 + 37_000, {"state": S.PROCESSING, "force": 800.0})])
    assert eng.tick(T0 + 37_000) == 2
    assert _statuses(plant) == {"force > 830": "cleared", "fault > 30 s": "cleared"}
    assert alarms_of(plant, "acme") == []  # the dashboard lists only active and acknowledged


def test_engine_learns_how_long_a_state_already_lasts_on_first_sight(engine):
    eng, store, plant = engine
    store.write([Point(M, T0 + i * 1000, {"state": S.FAULT, "force": 0.0}) for i in range(40)])
    assert eng.tick(T0 + 39_000) == 1  # the fault began 39 s ago: history, not the engine's start
    assert _statuses(plant) == {"fault > 30 s": "active"}


def test_passwords_are_argon2_and_broker_hashes_are_mosquitto_format():
    h = hash_password("long-enough-1")
    assert h.startswith("$argon2id$") and verify_password(h, "long-enough-1") and not verify_password(h, "nope-nope")
    with pytest.raises(ValueError, match="8 characters"):
        hash_password("short")
    m = mosquitto_hash("gw-secret-1", salt=b"\x00" * 12)
    assert m.startswith("$7$101$AAAAAAAAAAAAAAAA$") and mosquitto_verify(m, "gw-secret-1")
    assert not mosquitto_verify(m, "gw-secret-2")


def test_acl_confines_each_gateway_to_its_tenant():
    files = render([("gw-b", "gateway", "bravo", "$7$h"), ("gw-a", "gateway", "acme", "$7$g"),
                    ("collector-1", "collector", None, "$7$c")])
    assert files.passwords == "collector-1:$7$c\ngw-a:$7$g\ngw-b:$7$h\n"
    blocks = [b.strip().splitlines() for b in files.acl.split("\n\n")[1:] if b.strip()]
    assert blocks == [["user collector-1", "topic read sf/v1/#"], ["user gw-a", "topic write sf/v1/acme/#"],
                      ["user gw-b", "topic write sf/v1/bravo/#"]]
    with pytest.raises(ValueError):
        render([("gw x", "gateway", "acme", "$7$h")])  # a space would split the ACL line


def test_migrations_build_exactly_the_models_schema(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from plantmodel.db import Base

    plant = open_plant(f"sqlite:///{tmp_path / 'm.db'}")
    with plant.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config(plant.url)).get_heads() == ["0007"]  # one line of history
    open_plant(plant.url)  # upgrading a current database is a no-op


def test_upgrade_from_0001_keeps_rules_and_alarms(tmp_path):
    """A database from before rules could be edited: its rules stay live, its cleared alarms get a reason."""
    from alembic import command
    from sqlalchemy import create_engine, text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0001")
    with create_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO centres (id, name) VALUES (1, 'c')"))
        conn.execute(text("INSERT INTO tenants (id, centre_id, slug, name, timezone) VALUES (1, 1, 'acme', 'A', 'UTC')"))
        conn.execute(text("INSERT INTO sites (id, tenant_id, slug, name) VALUES (1, 1, 's1', 'S')"))
        conn.execute(text("INSERT INTO lines (id, site_id, slug, name) VALUES (1, 1, 'l1', 'L')"))
        conn.execute(text("INSERT INTO machines (id, line_id, slug, name, ideal_cycle_s) VALUES (1, 1, 'press-1', 'P', 10)"))
        conn.execute(text("INSERT INTO alarm_rules (id, machine_id, name, kind, tag, op, threshold) "
                          "VALUES (1, 1, 'hot', 'threshold', 'force', '>', 830)"))
        conn.execute(text("INSERT INTO alarms (rule_id, raised_ms, cleared_ms) VALUES (1, 1, 2), (1, 3, NULL)"))
    plant = open_plant(url)
    with plant.session() as s:
        assert [(a.status, a.cleared_reason) for a in s.scalars(select(Alarm).order_by(Alarm.id))] == [
            ("cleared", "condition_ended"), ("active", None)]
    assert [a["rule"] for a in alarms_of(plant, "acme")] == ["hot"]
    # and back: a deleted rule goes with its alarms, a live rule keeps them (SQLite must not recreate the table,
    # which would delete every alarm through the foreign key's cascade)
    with plant.session() as s, s.begin():
        s.add(AlarmRule(machine_id=1, name="gone", kind="threshold", tag="force", op=">", threshold=1, deleted_ms=5))
        s.flush()
        s.add(Alarm(rule_id=s.scalars(select(AlarmRule).filter_by(name="gone")).one().id, raised_ms=4, cleared_ms=5))
    command.downgrade(alembic_config(url, plant.engine), "0001")
    with plant.engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM alarm_rules")).scalars().all() == ["hot"]
        assert conn.execute(text("SELECT rule_id, cleared_ms FROM alarms ORDER BY id")).all() == [(1, 2), (1, None)]


def test_migrations_render_for_postgresql(tmp_path):
    """The migration rendered offline in PostgreSQL's dialect (what `alembic upgrade --sql` would hand a DBA),
    which catches SQLite-only constructs without a server; tests/integration/test_api_postgresql.py runs it live."""
    import io

    from alembic import command
    from alembic.config import Config

    from plantmodel.db import MIGRATIONS

    buf = io.StringIO()
    cfg = Config(output_buffer=buf)
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", "postgresql://user:pass@db.example/smartfactory")
    command.upgrade(cfg, "head", sql=True)
    ddl = buf.getvalue()
    for table in ("centres", "tenants", "sites", "lines", "machines", "shifts", "users", "web_sessions", "api_tokens",
                  "broker_accounts", "alarm_rules", "alarms", "orders"):
        assert f"CREATE TABLE {table} " in ddl, table
    assert "expires_ms BIGINT" in ddl and "PRAGMA" not in ddl
    assert "ALTER TABLE alarm_rules ADD COLUMN deleted_ms BIGINT" in ddl


def test_sqlite_plant_database_gets_its_directory(tmp_path):
    plant = open_plant(f"sqlite:///{tmp_path / 'api-data' / 'plant.db'}")
    assert (tmp_path / "api-data" / "plant.db").exists()
    plant.close()


def test_recent_answers_are_shared_until_stale_or_invalidated(monkeypatch):
    import api.live as live

    clock = [100.0]
    monkeypatch.setattr(live.time, "monotonic", lambda: clock[0])
    answers = live.RecentAnswers(ttl_s=0.5)
    body = answers.put(("acme", ("active",)), [{"id": 1, "rule": "온도 > 80"}])
    assert answers.fresh(("acme", ("active",))) == body and "온도".encode() in body
    clock[0] += 0.6
    assert answers.fresh(("acme", ("active",))) is None  # stale: the next caller reads the database
    answers.put(("acme", ("active",)), [])
    answers.put(("beta", ("active",)), [])
    answers.invalidate("acme")  # an acknowledgement in this worker shows at once
    assert answers.fresh(("acme", ("active",))) is None and answers.fresh(("beta", ("active",))) == b"[]"


def test_the_engine_runs_again_after_a_stop(engine):
    """A worker may lead, resign and lead again: a restarted engine raises alarms."""
    import time as _time

    from tests.waiting import wait_until

    eng, store, plant = engine
    eng.interval_s = 0.02
    eng.start()
    eng.stop()
    eng.start()
    try:
        now = int(_time.time() * 1000)
        store.write([Point(M, now, {"state": 2, "force": 900.0})])
        wait_until(lambda: _statuses(plant) == {"force > 830": "active"}, 20, "the restarted engine to raise")
    finally:
        eng.stop()

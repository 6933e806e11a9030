"""Alarm rules (pure evaluation) and the engine's active → acknowledged → cleared life on real SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from api.alarms import AlarmEngine, RuleSpec, clear_point, evaluate, held_since, step
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


# -- on-delay, off-delay and deadband: pure ----------------------------------------------------

@pytest.mark.parametrize("op, expected", [(">", 810.0), (">=", 810.0), ("<", 850.0), ("<=", 850.0), ("==", 830.0),
                                          ("!=", 830.0)])
def test_the_clear_point_is_the_threshold_moved_by_the_deadband_towards_normal(op, expected):
    assert clear_point(RuleSpec("threshold", "force", op, 830.0, deadband=20.0)) == expected


def test_held_since_finds_the_start_of_the_trailing_run_and_a_gap_ends_it():
    above = lambda v: v > 830  # noqa: E731
    assert held_since([(1000, 800.0), (2000, 850.0), (3000, 840.0)], above, 10_000) == 2000
    assert held_since([(1000, 850.0), (2000, 800.0)], above, 10_000) is None  # the newest does not hold
    assert held_since([], above, 10_000) is None
    assert held_since([(1000, 850.0), (30_000, 850.0)], above, 10_000) == 30_000  # 29 s of silence: no evidence
    assert held_since([(1000, 850.0), ((2000, "n/a")), (3000, 850.0)], above, 10_000) == 3000


def _run(rule: RuleSpec, samples: list[tuple[int, float]], until_s: int, stale_ms: int = 10_000,
         active: bool = False) -> list[tuple[int, str]]:
    """Tick once a second over the samples as the engine does: (second, "raise" | "clear") per transition."""
    moves = []
    for sec in range(until_s + 1):
        now = T0 + sec * 1000
        seen = [x for x in samples if x[0] <= now]
        ts, value = seen[-1] if seen else (None, None)
        move = step(rule, active, value, ts, None, now, stale_ms, lambda start: [x for x in seen if x[0] >= start])
        if move:
            moves.append((sec, move))
            active = move == "raise"
    return moves


def _signal(*values: float) -> list[tuple[int, float]]:
    return [(T0 + i * 1000, v) for i, v in enumerate(values)]


FLAPPING = _signal(*[800.0] * 5, *[833.0, 827.0] * 30, *[800.0] * 20)  # ±3 kN around 830 for a minute


def test_a_signal_flapping_around_the_threshold_raises_once_and_clears_once_with_a_deadband():
    assert len(_run(HOT, FLAPPING, 90)) == 60  # without a deadband: 30 raises, 30 clears
    banded = RuleSpec("threshold", "force", ">", 830.0, deadband=10.0)
    assert _run(banded, FLAPPING, 90) == [(5, "raise"), (65, "clear")]  # clears when back at or below 820


def test_a_spike_shorter_than_the_on_delay_never_raises_and_a_longer_one_raises_when_it_has_lasted():
    delayed = RuleSpec("threshold", "force", ">", 830.0, on_delay_s=5.0)
    spike = _signal(*[800.0] * 5, *[900.0] * 4, *[800.0] * 20)
    assert _run(HOT, spike, 30) == [(5, "raise"), (9, "clear")]
    assert _run(delayed, spike, 30) == []
    held = _signal(*[800.0] * 5, *[900.0] * 10, *[800.0] * 20)
    assert _run(delayed, held, 35) == [(10, "raise"), (15, "clear")]  # raised 5 s after the value crossed
    # the delay starts again when the value dips back, however briefly
    dipping = _signal(*[800.0] * 5, *[900.0] * 4, 800.0, *[900.0] * 4, *[800.0] * 10)
    assert _run(delayed, dipping, 25) == []


def test_an_off_delay_keeps_one_alarm_across_the_gaps_between_strokes():
    """The issue's `press_force > 100`: force is 0 between strokes, so without an off-delay every stroke
    raised and cleared. With an off-delay longer than the gap, the strokes are one alarm."""
    strokes = _signal(*([0.0] * 11 + [850.0] * 18) * 6, *[0.0] * 40)  # 6 strokes of a 29 s cycle, then a stop
    assert len(_run(RuleSpec("threshold", "force", ">", 100.0), strokes, 220)) == 12
    held = RuleSpec("threshold", "force", ">", 100.0, off_delay_s=30.0)
    assert _run(held, strokes, 220) == [(11, "raise"), (174 + 30, "clear")]


def test_stale_data_neither_raises_nor_clears_and_silence_restarts_a_delay():
    """A value holds until the next sample (gateways report on change), at most stale_ms."""
    delayed = RuleSpec("threshold", "force", ">", 830.0, on_delay_s=5.0, off_delay_s=5.0)
    assert _run(delayed, _signal(*[900.0] * 3), 60, stale_ms=10_000) == [(5, "raise")]  # 900 until told otherwise
    assert _run(delayed, _signal(*[900.0] * 3), 60, stale_ms=2000) == []  # stale at 5 s: no evidence, no raise
    assert _run(delayed, _signal(*[800.0] * 3), 60, stale_ms=2000, active=True) == []  # nor a clear
    slow = RuleSpec("threshold", "force", ">", 830.0, on_delay_s=15.0)
    resumed = [*_signal(*[900.0] * 3), *[(T0 + i * 1000, 900.0) for i in range(20, 40)]]
    assert _run(slow, resumed, 40, stale_ms=10_000) == [(35, "raise")]  # 18 s of silence: the delay starts anew


def test_a_state_duration_rule_clears_after_its_off_delay_out_of_the_state():
    fault = RuleSpec("state_duration", "state", state=S.FAULT, duration_s=30, off_delay_s=10.0)
    back = _signal(*[float(S.PROCESSING)] * 3, *[float(S.FAULT)] * 2, *[float(S.PROCESSING)] * 20)
    assert _run(fault, back, 25, active=True) == [(15, "clear")]  # left the fault at 5 s; 10 s later
    reset_failed = _signal(*[float(S.PROCESSING)] * 5, *[float(S.FAULT)] * 20)  # back in fault within 10 s
    assert _run(fault, reset_failed, 24, active=True) == []


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


def _delayed_engine(tmp_path):
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({"tenants": [{"slug": "acme", "sites": [{"slug": "s1", "lines": [
        {"slug": "l1", "machines": [{"slug": "press-1", "alarms": [
            {"name": "force > 830", "kind": "threshold", "tag": "force", "op": ">", "threshold": 830,
             "on_delay_s": 10, "off_delay_s": 5, "deadband": 20}]}]}]}]}]}))
    return plant, SqliteStore(tmp_path / "store.db")


def _at(store, seconds: range, force: float) -> None:
    store.write([Point(M, T0 + i * 1000, {"state": S.PROCESSING, "force": force}) for i in seconds])


def test_delays_and_deadband_hold_across_ticks_and_engine_restarts(tmp_path):
    """The engine keeps no memory of its own: each new engine (a restart, another worker leading) reads the
    pending delay back from the samples, so it raises and clears when one long-running engine would."""
    plant, store = _delayed_engine(tmp_path)
    new_engine = lambda: AlarmEngine(plant, store, stale_ms=10_000)  # noqa: E731
    _at(store, range(0, 5), 800.0)
    _at(store, range(5, 15), 900.0)  # over 830 from 5 s
    first = new_engine()
    assert [first.tick(T0 + i * 1000) for i in range(5, 10)] == [0] * 5  # on-delay running
    assert new_engine().tick(T0 + 14_000) == 0  # restarted: 9 s over, not yet
    assert new_engine().tick(T0 + 15_000) == 1  # restarted again: 10 s over since 5 s, raised
    assert _statuses(plant) == {"force > 830": "active"}
    _at(store, range(15, 31), 820.0)  # under 830 but inside the deadband (clears at 810)
    assert new_engine().tick(T0 + 30_000) == 0
    _at(store, range(31, 40), 805.0)  # back past 810 from 31 s: the off-delay runs
    assert new_engine().tick(T0 + 35_000) == 0
    assert new_engine().tick(T0 + 36_000) == 1
    assert _statuses(plant) == {"force > 830": "cleared"}


def _old_rule(conn, text) -> None:
    """One machine with one threshold rule 'hot', in the columns every schema version since 0001 has."""
    conn.execute(text("INSERT INTO centres (id, name) VALUES (1, 'c')"))
    conn.execute(text("INSERT INTO tenants (id, centre_id, slug, name, timezone) VALUES (1, 1, 'acme', 'A', 'UTC')"))
    conn.execute(text("INSERT INTO sites (id, tenant_id, slug, name) VALUES (1, 1, 's1', 'S')"))
    conn.execute(text("INSERT INTO lines (id, site_id, slug, name) VALUES (1, 1, 'l1', 'L')"))
    conn.execute(text("INSERT INTO machines (id, line_id, slug, name, ideal_cycle_s) VALUES (1, 1, 'press-1', 'P', 10)"))
    conn.execute(text("INSERT INTO alarm_rules (id, machine_id, name, kind, tag, op, threshold) "
                      "VALUES (1, 1, 'hot', 'threshold', 'force', '>', 830)"))


def test_upgrade_to_0008_keeps_existing_rules_as_they_behaved(tmp_path):
    """Rules from before the delays get 0 for each: raised and cleared at once, at the threshold."""
    from alembic import command
    from sqlalchemy import create_engine, text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0007")
    with create_engine(url).begin() as conn:
        _old_rule(conn, text)
        conn.execute(text("INSERT INTO alarms (rule_id, raised_ms) VALUES (1, 1)"))
    plant = open_plant(url)
    with plant.session() as s:
        rule = s.scalars(select(AlarmRule)).one()
        assert (rule.on_delay_s, rule.off_delay_s, rule.deadband) == (0.0, 0.0, 0.0)
    command.downgrade(alembic_config(url, plant.engine), "0007")
    with plant.engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM alarm_rules")).scalars().all() == ["hot"]
        assert conn.execute(text("SELECT count(*) FROM alarms")).scalar() == 1


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

    assert ScriptDirectory.from_config(alembic_config(plant.url)).get_heads() == ["0009"]  # one line of history
    open_plant(plant.url)  # upgrading a current database is a no-op


def test_upgrade_from_0001_keeps_rules_and_alarms(tmp_path):
    """A database from before rules could be edited: its rules stay live, its cleared alarms get a reason."""
    from alembic import command
    from sqlalchemy import create_engine, text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0001")
    with create_engine(url).begin() as conn:
        _old_rule(conn, text)
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
    assert "ALTER TABLE alarm_rules ADD COLUMN on_delay_s FLOAT DEFAULT '0' NOT NULL" in ddl


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

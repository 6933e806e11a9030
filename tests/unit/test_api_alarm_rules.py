"""Alarm rules managed through the API: checks with 422s that name the field, edits and deletes that
leave no orphan alarms, and the engine following the changes without a restart (real SQLite)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from analytics.settings import AnalyticsSettings
from api.alarmrules import MachineTags, RuleIn, check_rule
from api.app import create_app
from api.services import EffectiveAnalytics
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import Alarm, AlarmRule, open_plant
from api.settings import ApiSettings
from plant import MachineRef
from plant.states import MachineState as S
from tsstore import Point
from tsstore.sqlite import SqliteStore

PASSWORD = "correct-horse-1"
P1 = MachineRef("acme", "s1", "l1", "press-1")  # reports data
P2 = MachineRef("acme", "s1", "l1", "press-2")  # not connected yet: no data
B = MachineRef("bravo", "bs", "bl", "b-press")
T0 = 1_795_000_000_000
RULES = "/api/v1/alarm-rules"
STATES = {0: "idle", 2: "processing", 4: "fault"}


def _tenant(m: MachineRef, *machines: str, alarms=()) -> dict:
    return {"slug": m.tenant, "sites": [{"slug": m.site, "lines": [{"slug": m.line, "machines": [
        {"slug": x, "alarms": list(alarms) if x == m.machine else []} for x in machines]}]}]}


@pytest.fixture
def app(tmp_path):
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({
        "tenants": [_tenant(P1, "press-1", "press-2"),
                    _tenant(B, "b-press", alarms=[{"name": "b hot", "kind": "threshold", "tag": "force", "op": ">",
                                                   "threshold": 5000}])],
        "users": [{"username": "owner-a", "password": PASSWORD, "role": "sme_owner", "tenant": "acme"},
                  {"username": "operator-a", "password": PASSWORD, "role": "sme_operator", "tenant": "acme"}],
    }))
    store = SqliteStore(tmp_path / "store.db")
    store.write([Point(m, T0 + i * 1000, {"state": S.PROCESSING, "force": 800.0 + i, "note": "lot-7"})
                 for m in (P1, B) for i in range(5)])
    return create_app(store, ApiSettings(), plant, run_alarms=False)


def _login(app, user: str) -> TestClient:
    c = TestClient(app)
    assert c.post("/api/v1/auth/login", json={"username": user, "password": PASSWORD}).status_code == 200
    return c


@pytest.fixture
def owner(app) -> TestClient:
    return _login(app, "owner-a")


def _rule(**kw) -> dict:
    return {"site": P1.site, "line": P1.line, "machine": P1.machine, "name": "force high", "kind": "threshold",
            "tag": "force", "op": ">", "threshold": 850.0, **kw}


def _write(app, ts: int, force: float) -> None:
    app.state.services.store.write([Point(P1, ts, {"state": S.PROCESSING, "force": force})])


def _alarms(app, rule_id: int) -> list[Alarm]:
    with app.state.services.plant.session() as s:
        return s.query(Alarm).filter_by(rule_id=rule_id).order_by(Alarm.id).all()


def _fields(response) -> dict[str, str]:
    """field → message of a 422, in FastAPI's shape (what the web form reads)."""
    assert response.status_code == 422, response.text
    return {e["loc"][-1]: e["msg"] for e in response.json()["detail"]}


# -- the checks, pure ---------------------------------------------------------------------------

TAGS = MachineTags({"force": True, "state": True, "note": False})


@pytest.mark.parametrize("changes, field, fragment", [
    ({"op": None}, "op", "choose one of >, >=, <, <=, ==, !="),
    ({"threshold": None}, "threshold", "needs the number to compare"),
    ({"threshold": float("nan")}, "threshold", "finite number"),
    ({"tag": "temperature"}, "tag", "use one of: force, note, state"),
    ({"tag": "note"}, "tag", "carries text"),
    ({"name": "   "}, "name", "name is blank"),
    ({"name": "taken"}, "name", "already used by another rule of machine press-1"),
    ({"kind": "state_duration", "state": None, "duration_s": 30}, "state", "0 idle, 2 processing, 4 fault"),
    ({"kind": "state_duration", "state": 9, "duration_s": 30}, "state", "state 9 is not a state code"),
    ({"kind": "state_duration", "tag": "state", "state": S.FAULT, "duration_s": None}, "duration_s", "e.g. 300"),
    ({"kind": "state_duration", "tag": "state", "state": S.FAULT, "duration_s": -5}, "duration_s",
     "more than 0 seconds (got -5.0)"),
    ({"kind": "state_duration", "tag": "state", "state": S.FAULT, "duration_s": 0}, "duration_s", "more than 0 seconds"),
    ({"on_delay_s": -5}, "on_delay_s", "on_delay_s must be 0 or more seconds (got -5.0)"),
    ({"off_delay_s": -1}, "off_delay_s", "off_delay_s must be 0 or more seconds (got -1.0)"),
    ({"on_delay_s": float("nan")}, "on_delay_s", "0 or more seconds"),
    ({"on_delay_s": 7200}, "on_delay_s", "at most 3600 seconds, one hour (got 7200.0)"),
    ({"kind": "state_duration", "tag": "state", "state": S.FAULT, "duration_s": 30, "off_delay_s": 3601},
     "off_delay_s", "at most 3600 seconds"),
    ({"deadband": -2}, "deadband", "deadband must be 0 or more, in the tag's unit (got -2.0)"),
    ({"op": "==", "deadband": 1}, "deadband", "set deadband to 0 and use off_delay_s"),
    ({"deadband": 900}, "deadband", "would clear only at -50, beyond zero"),
    ({"op": "<", "threshold": 5, "deadband": 5}, "deadband", "would clear only at 10, beyond zero"),
])
def test_each_problem_names_its_field_and_how_to_fix_it(changes, field, fragment):
    errors, _ = check_rule(RuleIn(**_rule(**changes)), TAGS, STATES, taken={"taken"})
    assert [e["loc"] for e in errors] == [["body", field]]
    assert fragment in errors[0]["msg"]


def test_a_good_rule_passes_and_unknown_tags_are_a_warning_not_an_error():
    assert check_rule(RuleIn(**_rule()), TAGS, STATES, set()) == ([], [])
    damped = _rule(on_delay_s=3600, off_delay_s=0, deadband=16.9)
    assert check_rule(RuleIn(**damped), TAGS, STATES, set()) == ([], [])
    assert check_rule(RuleIn(**_rule(threshold=0, op="<", deadband=2)), TAGS, STATES, set()) == ([], [])  # < 0 °C
    state_rule = RuleIn(**_rule(kind="state_duration", tag="state", state=S.FAULT, duration_s=30, op=None, threshold=None))
    assert check_rule(state_rule, TAGS, STATES, set()) == ([], [])
    errors, warnings = check_rule(RuleIn(**_rule(tag="anything")), MachineTags(None, "machine press-2 has reported "
                                                                                    "no data yet"), STATES, set())
    assert errors == [] and warnings == ["tag 'anything' was not checked: machine press-2 has reported no data yet"]


# -- through the API ----------------------------------------------------------------------------

def test_add_lists_and_refuses_bad_rules_with_a_422_per_field(app, owner):
    r = owner.post(f"{RULES}/acme", json=_rule())
    assert r.status_code == 201, r.text
    added = r.json()
    assert added["warnings"] == [] and added["open_alarms"] == 0 and added["state"] is None
    fields = _fields(owner.post(f"{RULES}/acme", json=_rule(name="no op", op=None, threshold=None)))
    assert set(fields) == {"op", "threshold"}
    assert "does not report a tag 'temp'" in _fields(owner.post(f"{RULES}/acme", json=_rule(name="t", tag="temp")))["tag"]
    state = _fields(owner.post(f"{RULES}/acme", json=_rule(name="s", kind="state_duration", tag="state", state=42,
                                                           duration_s=10)))["state"]
    assert "state 42 is not a state code" in state and "4 fault" in state
    dur = _fields(owner.post(f"{RULES}/acme", json=_rule(name="d", kind="state_duration", tag="state", state=S.FAULT,
                                                         duration_s=-1)))
    assert "duration_s must be more than 0 seconds" in dur["duration_s"]
    assert "already used" in _fields(owner.post(f"{RULES}/acme", json=_rule()))["name"]
    # a type error comes in the same shape (FastAPI's), so the form reads both alike
    assert "threshold" in _fields(owner.post(f"{RULES}/acme", json=_rule(name="x", threshold="hot")))
    # kind-foreign fields are dropped, not stored
    r = owner.post(f"{RULES}/acme", json=_rule(name="stuck", kind="state_duration", tag="state", state=S.FAULT,
                                               duration_s=60))
    assert r.status_code == 201 and (r.json()["op"], r.json()["threshold"]) == (None, None)
    assert [x["name"] for x in owner.get(f"{RULES}/acme").json()] == ["force high", "stuck"]


def test_a_machine_without_data_takes_any_tag_with_a_warning(owner):
    r = owner.post(f"{RULES}/acme", json=_rule(machine=P2.machine, tag="spindle_temp"))
    assert r.status_code == 201
    assert r.json()["warnings"] == ["tag 'spindle_temp' was not checked: machine press-2 has reported no data yet"]


def test_choices_list_operators_states_and_each_machines_tags(app, owner):
    c = owner.get(f"{RULES}/acme/choices", params={"site": "s1", "line": "l1"}).json()
    assert c["ops"] == [">", ">=", "<", "<=", "==", "!="]
    assert {"code": S.FAULT, "name": "fault"} in c["states"] and len(c["states"]) == len(S)
    tags = {m["machine"]: m["tags"] for m in c["machines"]}
    assert tags == {"press-1": [{"tag": "force", "numeric": True}, {"tag": "note", "numeric": False},
                                {"tag": "state", "numeric": True}], "press-2": None}
    assert owner.get(f"{RULES}/acme/choices", params={"line": "other"}).json()["machines"] == []


def test_the_tenants_own_state_codes_are_the_valid_ones(app, owner):
    app.state.services.analytics = EffectiveAnalytics(AnalyticsSettings.model_validate({"tenants": {"acme": {"states": [
        {"code": 1, "name": "run", "kind": "run"}, {"code": 20, "name": "jam", "kind": "unplanned"}]}}}),
        app.state.services.plant)
    body = _rule(name="jam", kind="state_duration", tag="state", state=20, duration_s=5)
    assert owner.post(f"{RULES}/acme", json=body).status_code == 201
    assert "1 run, 20 jam" in _fields(owner.post(f"{RULES}/acme", json={**body, "name": "x", "state": 4}))["state"]


def test_edit_clears_alarms_of_the_old_condition_and_the_engine_follows_without_restart(app, owner):
    engine = app.state.services.alarms
    rule = owner.post(f"{RULES}/acme", json=_rule()).json()
    _write(app, T0 + 10_000, 900.0)
    assert engine.tick(T0 + 10_000) == 1
    assert [a.status for a in _alarms(app, rule["id"])] == ["active"]
    assert owner.get(f"{RULES}/acme").json()[0]["open_alarms"] == 1
    # a rename keeps the open alarm: it is still the same condition
    r = owner.put(f"{RULES}/acme/{rule['id']}", json=_rule(name="force very high"))
    assert r.status_code == 200 and r.json()["cleared_alarms"] == 0 and r.json()["open_alarms"] == 1
    # raising the threshold above the value ends the alarm at once, with the reason and who
    r = owner.put(f"{RULES}/acme/{rule['id']}", json=_rule(name="force very high", threshold=950.0))
    assert r.json()["cleared_alarms"] == 1 and r.json()["open_alarms"] == 0
    (old,) = _alarms(app, rule["id"])
    assert (old.status, old.cleared_reason, old.cleared_by) == ("cleared", "rule_changed", "owner-a")
    assert engine.tick(T0 + 11_000) == 0  # 900 is not > 950: nothing raised again
    # the engine evaluates the edited rule on its next tick: lowering it below the value raises a new alarm
    owner.put(f"{RULES}/acme/{rule['id']}", json=_rule(name="force very high", op=">=", threshold=900.0))
    assert engine.tick(T0 + 12_000) == 1
    assert [a.status for a in _alarms(app, rule["id"])] == ["cleared", "active"]
    active = owner.get("/api/v1/alarms/acme").json()
    assert [(a["rule_id"], a["rule"], a["status"]) for a in active] == [(rule["id"], "force very high", "active")]


def test_delete_clears_open_alarms_keeps_their_history_and_stops_evaluation(app, owner):
    engine = app.state.services.alarms
    rule = owner.post(f"{RULES}/acme", json=_rule()).json()
    _write(app, T0 + 10_000, 900.0)
    engine.tick(T0 + 10_000)
    r = owner.delete(f"{RULES}/acme/{rule['id']}")
    assert r.json() == {"id": rule["id"], "deleted": True, "cleared_alarms": 1}
    assert owner.get(f"{RULES}/acme").json() == []
    assert owner.get("/api/v1/alarms/acme").json() == []
    history = owner.get("/api/v1/alarms/acme", params={"status": "cleared"}).json()
    assert [(a["rule"], a["cleared_reason"], a["cleared_by"]) for a in history] == [("force high", "rule_deleted",
                                                                                      "owner-a")]
    assert engine.tick(T0 + 11_000) == 0  # still > 850, but the rule is gone
    assert owner.put(f"{RULES}/acme/{rule['id']}", json=_rule()).status_code == 404
    assert owner.delete(f"{RULES}/acme/{rule['id']}").status_code == 404
    # the name is free again
    assert owner.post(f"{RULES}/acme", json=_rule()).status_code == 201


def test_engine_clears_an_alarm_a_racing_tick_raised_for_a_deleted_rule(app, owner):
    rule = owner.post(f"{RULES}/acme", json=_rule()).json()
    owner.delete(f"{RULES}/acme/{rule['id']}")
    with app.state.services.plant.session() as s, s.begin():  # what a tick that read the rule before the delete writes
        s.add(Alarm(rule_id=rule["id"], raised_ms=T0, value=900.0))
    _write(app, T0 + 10_000, 900.0)
    assert app.state.services.alarms.tick(T0 + 10_000) == 1
    assert [(a.status, a.cleared_reason) for a in _alarms(app, rule["id"])] == [("cleared", "rule_deleted")]


def test_delays_and_deadband_are_stored_listed_and_dropped_where_they_do_not_apply(app, owner):
    r = owner.post(f"{RULES}/acme", json=_rule(on_delay_s=5, off_delay_s=30, deadband=10))
    assert r.status_code == 201, r.text
    assert (r.json()["on_delay_s"], r.json()["off_delay_s"], r.json()["deadband"]) == (5.0, 30.0, 10.0)
    (listed,) = owner.get(f"{RULES}/acme").json()
    assert (listed["on_delay_s"], listed["off_delay_s"], listed["deadband"]) == (5.0, 30.0, 10.0)
    # a body without them (a client from before) gets 0: raise and clear at once, at the threshold
    old = owner.post(f"{RULES}/acme", json=_rule(name="old client")).json()
    assert (old["on_delay_s"], old["off_delay_s"], old["deadband"]) == (0.0, 0.0, 0.0)
    # a state_duration rule's duration_s is its on-delay and it has no threshold to band: only off_delay_s stays
    st = owner.post(f"{RULES}/acme", json=_rule(name="stuck", kind="state_duration", tag="state", state=S.FAULT,
                                                duration_s=30, on_delay_s=5, off_delay_s=10, deadband=3)).json()
    assert (st["on_delay_s"], st["off_delay_s"], st["deadband"]) == (0.0, 10.0, 0.0)
    fields = _fields(owner.put(f"{RULES}/acme/{listed['id']}", json=_rule(on_delay_s=-1, deadband=-1)))
    assert set(fields) == {"on_delay_s", "deadband"}


def test_changing_only_the_delays_or_deadband_keeps_the_open_alarm(app, owner):
    """They change when an alarm is raised or cleared, not what it is about: the acknowledged alarm stays."""
    engine = app.state.services.alarms
    rule = owner.post(f"{RULES}/acme", json=_rule()).json()
    _write(app, T0 + 10_000, 900.0)
    assert engine.tick(T0 + 10_000) == 1
    r = owner.put(f"{RULES}/acme/{rule['id']}", json=_rule(on_delay_s=5, off_delay_s=20, deadband=60))
    assert r.json()["cleared_alarms"] == 0 and r.json()["open_alarms"] == 1
    _write(app, T0 + 11_000, 840.0)  # below 850, but not past 850 - 60 = 790: still open
    assert engine.tick(T0 + 12_000) == 0
    assert [a.status for a in _alarms(app, rule["id"])] == ["active"]


def test_operator_reads_rules_but_cannot_change_them(app, owner):
    rule = owner.post(f"{RULES}/acme", json=_rule()).json()
    op = _login(app, "operator-a")
    assert op.get("/api/v1/me").json()["permissions"] == ["alarms:ack"]
    assert owner.get("/api/v1/me").json()["permissions"] == ["alarm_rules:write", "alarms:ack", "orders:write"]
    assert [x["id"] for x in op.get(f"{RULES}/acme").json()] == [rule["id"]]
    assert op.put(f"{RULES}/acme/{rule['id']}", json=_rule(threshold=1)).status_code == 403
    assert op.delete(f"{RULES}/acme/{rule['id']}").status_code == 403
    assert owner.get(f"{RULES}/acme").json()[0]["threshold"] == 850.0


def test_another_tenants_rule_cannot_be_reached_through_the_own_tenant(app, owner):
    with app.state.services.plant.session() as s:
        b_rule = s.query(AlarmRule).filter_by(name="b hot").one().id
    assert owner.put(f"{RULES}/acme/{b_rule}", json=_rule()).status_code == 404
    assert owner.delete(f"{RULES}/acme/{b_rule}").status_code == 404
    assert owner.put(f"{RULES}/bravo/{b_rule}", json=_rule()).json() == {"detail": "not found"}
    # nor moved onto, or added to, a machine of the other tenant named in the body
    mine = owner.post(f"{RULES}/acme", json=_rule()).json()
    foreign = {"site": B.site, "line": B.line, "machine": B.machine}
    assert owner.put(f"{RULES}/acme/{mine['id']}", json=_rule(**foreign)).status_code == 404
    assert owner.post(f"{RULES}/acme", json=_rule(name="x", **foreign)).status_code == 404
    with app.state.services.plant.session() as s:
        b = s.get(AlarmRule, b_rule)
        assert (b.deleted_ms, b.threshold, b.machine.slug) == (None, 5000.0, B.machine)


def test_seed_creates_a_rule_anew_that_was_deleted_in_the_ui(app, owner):
    seeded = {"name": "seeded", "kind": "threshold", "tag": "force", "op": ">", "threshold": 5}
    apply_seed(app.state.services.plant, PlantSeed.model_validate({"tenants": [_tenant(P1, "press-1", alarms=[seeded])]}))
    (rule,) = owner.get(f"{RULES}/acme").json()
    owner.delete(f"{RULES}/acme/{rule['id']}")
    apply_seed(app.state.services.plant, PlantSeed.model_validate({"tenants": [_tenant(P1, "press-1", alarms=[seeded])]}))
    (again,) = owner.get(f"{RULES}/acme").json()
    assert again["name"] == "seeded" and again["id"] != rule["id"]


@pytest.mark.parametrize("changes, fragment", [
    ({"op": "==", "deadband": 1}, "set it to 0 and use 'off_delay_s'"),
    ({"deadband": 900}, "'deadband' 900 is as large as the threshold 830"),
    ({"on_delay_s": -1}, "greater than or equal to 0"),
    ({"off_delay_s": 7200}, "less than or equal to 3600"),
])
def test_a_seed_with_delays_or_a_deadband_that_make_no_sense_is_refused(changes, fragment):
    from pydantic import ValidationError

    rule = {"name": "hot", "kind": "threshold", "tag": "force", "op": ">", "threshold": 830, **changes}
    with pytest.raises(ValidationError, match=re.escape(fragment)):
        PlantSeed.model_validate({"tenants": [_tenant(P1, "press-1", alarms=[rule])]})
    fine = {"name": "hot", "kind": "threshold", "tag": "force", "op": ">", "threshold": 830, "on_delay_s": 2,
            "deadband": 10, "off_delay_s": 60}
    PlantSeed.model_validate({"tenants": [_tenant(P1, "press-1", alarms=[fine])]})


def test_every_check_has_a_korean_message_with_the_placeholders_the_server_sends():
    """The web form shows Korean users a Korean text for each alarm_rule.* 422; a new check without one,
    or a placeholder the server does not fill, would show English or a raw '{tag}'."""
    import inspect
    import re
    from pathlib import Path

    import api.alarmrules as rules

    source = inspect.getsource(rules)
    kinds = set(re.findall(r'_error\((?:"\w+"|field), "(\w+)"', source))
    assert len(kinds) == 16, kinds  # the enumeration itself works
    i18n = (Path(rules.__file__).parent / "static" / "i18n.js").read_text(encoding="utf-8")
    korean = dict(re.findall(r'"err\.alarm_rule\.(\w+)": "([^"]*)"', i18n))
    assert set(korean) == kinds
    # each placeholder is filled from ctx: collect ctx keys from real errors of each kind
    cases = [_rule(name=" "), _rule(name="taken"), _rule(op=None, threshold=None), _rule(threshold=float("inf")),
             _rule(tag="temp"), _rule(tag="note"),
             _rule(kind="state_duration", state=None, duration_s=None), _rule(kind="state_duration", state=9,
                                                                              duration_s=-1),
             _rule(on_delay_s=-1, deadband=-1), _rule(off_delay_s=4000, deadband=900), _rule(op="!=", deadband=1)]
    ctx: dict[str, set[str]] = {}
    for body in cases:
        for e in check_rule(RuleIn(**body), TAGS, STATES, {"taken"})[0]:
            ctx[e["type"].removeprefix("alarm_rule.")] = set(e["ctx"])
    assert set(ctx) == kinds
    for kind, text in korean.items():
        assert set(re.findall(r"\{(\w+)\}", text)) <= ctx[kind], kind

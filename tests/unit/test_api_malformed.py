"""Malformed bodies get a 4xx whose body is strict JSON, never a 500 (issue #11, item 9).

Python's JSON parser takes NaN and Infinity; FastAPI's 422 echoed them back and could not
encode them. Real SQLite plant database and store; no mocks.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from api.validation import encodable
from plant import MachineRef
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import open_plant
from tsstore import Point
from tsstore.sqlite import SqliteStore

PASSWORD = "correct-horse-1"
M = MachineRef("acme", "s1", "l1", "press-1")
JSON = {"content-type": "application/json"}
NOT_JSON_NUMBERS = ("NaN", "Infinity", "-Infinity", "1e999")  # 1e999 parses as inf


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("malformed")
    plant = open_plant(f"sqlite:///{tmp / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({
        "tenants": [{"slug": M.tenant, "sites": [{"slug": M.site, "lines": [{"slug": M.line, "machines": [
            {"slug": M.machine}]}]}]}],
        "users": [{"username": "owner-a", "password": PASSWORD, "role": "sme_owner", "tenant": "acme"}],
    }))
    store = SqliteStore(tmp / "store.db")
    store.write([Point(M, 1_795_000_000_000 + i, {"state": 2, "force": 800.0}) for i in range(3)])
    return create_app(store, ApiSettings(), plant, run_alarms=False)


@pytest.fixture
def owner(app) -> TestClient:
    c = TestClient(app, raise_server_exceptions=False)
    assert c.post("/api/v1/auth/login", json={"username": "owner-a", "password": PASSWORD}).status_code == 200
    return c


def _strict(r) -> dict:
    """The answer's body parsed as RFC 8259 JSON (no NaN/Infinity)."""
    def refuse(token: str):
        raise AssertionError(f"{token} in the answer: not JSON")
    return json.loads(r.content.decode("utf-8"), parse_constant=refuse)


@pytest.mark.parametrize("number", NOT_JSON_NUMBERS)
def test_login_with_a_non_json_number_is_a_422(app, number):
    c = TestClient(app, raise_server_exceptions=False)
    r = c.post("/api/v1/auth/login", content=f'{{"username": {number}, "password": "x"}}', headers=JSON)
    assert r.status_code == 422, r.text
    err = _strict(r)["detail"][0]
    assert err["loc"] == ["body", "username"] and isinstance(err["input"], str)


@pytest.mark.parametrize("number", NOT_JSON_NUMBERS)
def test_alarm_rule_numbers_that_are_not_finite_are_422s_naming_the_field(owner, number):
    rule = ('{"site": "s1", "line": "l1", "machine": "press-1", "name": "x", "kind": "%s", "tag": "force", '
            '"op": ">", "%s": %s, "state": 2}')
    for kind, field in (("threshold", "threshold"), ("state_duration", "duration_s")):
        r = owner.post("/api/v1/alarm-rules/acme", content=rule % (kind, field, number), headers=JSON)
        assert r.status_code == 422, r.text
        assert [e["loc"] for e in _strict(r)["detail"]] == [["body", field]]


@pytest.mark.parametrize("body", [
    '{"language": NaN}',
    '{"language": {"deep": [Infinity, -Infinity, NaN]}}',
    '{"language": "\\ud800"}',  # a lone surrogate: valid JSON text, not encodable as UTF-8
])
def test_other_routes_answer_422_with_strict_json(owner, body):
    for method, path in (("PATCH", "/api/v1/me"), ("POST", "/api/v1/me/tokens")):
        r = owner.request(method, path, content=body, headers=JSON)
        assert r.status_code == 422, (method, path, r.text)
        assert _strict(r)["detail"]


def test_a_put_with_nan_in_the_path_and_body_is_a_422(owner):
    r = owner.put("/api/v1/alarm-rules/acme/NaN", content='{"site": NaN}', headers=JSON)
    assert r.status_code == 422 and _strict(r)["detail"]


def test_encodable_keeps_what_json_can_hold_and_names_the_rest():
    value = {"a": [1, 2.5, True, None, "ok"], "b": float("nan"), "c": float("-inf"), "d": b"\xff", "e": object}
    out = encodable(value)
    assert out["a"] == [1, 2.5, True, None, "ok"]
    assert (out["b"], out["c"], out["d"]) == ("NaN", "-Infinity", "\\xff")
    assert out["e"].startswith("<class")
    json.dumps(out, allow_nan=False)

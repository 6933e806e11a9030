"""Authentication, roles and tenant isolation through every route of the app.

The routes are read from the app itself, so a route added later (reports, exports) is
covered without touching this file: it must either carry a ``{tenant}`` path parameter
(then an owner of another tenant gets 404) or be listed in TENANTLESS with its own check.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api.access import PUBLIC
from api.app import create_app
from plantmodel.admin import PlantSeed, apply_seed, create_token
from plantmodel.db import Alarm, AlarmRule, open_plant
from api.settings import ApiSettings
from plant import MachineRef
from plant.states import MachineState as S
from tsstore import Point
from tsstore.sqlite import SqliteStore

A = MachineRef("acme", "a-site", "a-line", "a-press")
B = MachineRef("bravo", "b-site", "b-line", "b-press")
PASSWORD = "correct-horse-1"
T0 = 1_795_000_000_000

# Routes without a tenant in the path; each is checked below for what it reveals.
TENANTLESS = {
    ("POST", "/api/v1/auth/logout"), ("GET", "/api/v1/me"), ("PATCH", "/api/v1/me"), ("POST", "/api/v1/me/tokens"),
    ("GET", "/api/v1/tenants"), ("GET", "/api/v1/machines"), ("GET", "/api/v1/centre/overview"),
    ("GET", "/api/v1/reports/portfolio"),  # centre roles only (api/routers/reports.py)
    ("GET", "/api/v1/centre/portfolio"),  # centre roles only (api/routers/centre.py)
    ("GET", "/api/v1/me/tokens"), ("DELETE", "/api/v1/me/tokens/{token_id}"),  # the caller's own (api/accounts.py)
    ("POST", "/api/v1/me/password"),
    # centre admins only (tests/unit/test_api_credentials.py)
    ("POST", "/api/v1/users"), ("PATCH", "/api/v1/users/{username}"), ("GET", "/api/v1/users/{username}/tokens"),
    ("DELETE", "/api/v1/users/{username}/tokens/{token_id}"),
    # centre roles only (api/routers/schedules.py): a schedule may mail the portfolio of every SME
    ("GET", "/api/v1/report-schedules"), ("POST", "/api/v1/report-schedules"), ("GET", "/api/v1/report-schedules/sends"),
    ("PATCH", "/api/v1/report-schedules/{schedule_id}"), ("DELETE", "/api/v1/report-schedules/{schedule_id}"),
}
CENTRE_ONLY = {"/api/v1/centre/overview", "/api/v1/reports/portfolio", "/api/v1/centre/portfolio", "/api/v1/report-schedules",
               "/api/v1/report-schedules/sends"}
#: tenant-scoped routes for centre roles only: the tenant's own owner gets 403 there, a centre engineer 200
CENTRE_ONLY_SCOPED = {"/api/v1/centre/tenants/{tenant}"}
ADMIN_ONLY = {("POST", "/api/v1/users"), ("PATCH", "/api/v1/users/owner-b"), ("GET", "/api/v1/users/owner-b/tokens"),
              ("DELETE", "/api/v1/users/owner-b/tokens/1")}
BODIES = {
    "/api/v1/alarm-rules/{tenant}": {"site": B.site, "line": B.line, "machine": B.machine, "name": "hot",
                                     "kind": "threshold", "tag": "force", "op": ">", "threshold": 1.0},
    "/api/v1/alarm-rules/{tenant}/{rule_id}": {"site": B.site, "line": B.line, "machine": B.machine, "name": "hot",
                                               "kind": "threshold", "tag": "force", "op": ">", "threshold": 1.0},
    "/api/v1/me": {"language": "en"},
    "/api/v1/me/tokens": {"name": "t"},
}


def _seed(tenant: MachineRef) -> dict:
    return {"slug": tenant.tenant, "name": tenant.tenant.upper(), "sites": [{"slug": tenant.site, "lines": [
        {"slug": tenant.line, "shifts": [{"name": "all", "start": "00:00", "end": "00:00"}],
         "machines": [{"slug": tenant.machine, "ideal_cycle_s": 10,
                       "alarms": [{"name": "force high", "kind": "threshold", "tag": "force", "op": ">",
                                   "threshold": 0}]}]}]}]}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One app for the module (argon2 hashing is deliberately slow); tests that change state say so."""
    tmp_path = tmp_path_factory.mktemp("access")
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({
        "tenants": [_seed(A), _seed(B)],
        "users": [
            {"username": "owner-a", "password": PASSWORD, "role": "sme_owner", "tenant": "acme"},
            {"username": "operator-a", "password": PASSWORD, "role": "sme_operator", "tenant": "acme"},
            {"username": "owner-b", "password": PASSWORD, "role": "sme_owner", "tenant": "bravo"},
            {"username": "engineer", "password": PASSWORD, "role": "centre_engineer"},
        ],
        "broker_accounts": [{"username": "gw-b", "password": PASSWORD, "tenant": "bravo"}],
    }))
    with plant.session() as s, s.begin():
        for rule in s.query(AlarmRule).all():
            s.add(Alarm(rule_id=rule.id, raised_ms=T0, value=1.0))
    store = SqliteStore(tmp_path / "store.db")
    store.write([Point(m, T0 + i * 1000, {"state": S.PROCESSING, "force": 1.0 + i, "good_count": i})
                 for m in (A, B) for i in range(5)])
    return create_app(store, ApiSettings(), plant, run_alarms=False)


def _client(app, username: str | None) -> TestClient:
    c = TestClient(app)
    if username:
        r = c.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
    return c


def _routes(app) -> list[tuple[str, str, dict]]:
    """Every non-public operation, read from the OpenAPI document: it lists the routes of every
    included router (FastAPI keeps those nested, not in app.routes)."""
    app.openapi_schema = None
    out = []
    for path, ops in app.openapi()["paths"].items():
        for method, op in ops.items():
            if not op.get(PUBLIC):
                out.append((method.upper(), path, op))
    assert out, "no routes found: the enumeration is broken"
    return sorted(out, key=lambda x: (x[1], x[0]))


def _b_alarm_id(app) -> int:
    with app.state.services.plant.session() as s:
        return next(a.id for a in s.query(Alarm).all() if a.rule.machine.line.site.tenant.slug == "bravo")


def _b_rule_id(app) -> int:
    with app.state.services.plant.session() as s:
        return next(r.id for r in s.query(AlarmRule).all() if r.machine.line.site.tenant.slug == "bravo")


def _url(app, path: str) -> str:
    values = {"tenant": B.tenant, "site": B.site, "line": B.line, "machine": B.machine,
              "alarm_id": str(_b_alarm_id(app)), "rule_id": str(_b_rule_id(app))}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)


def _call(c: TestClient, method: str, path: str, url: str, **params):
    return c.request(method, url, params={"tag": "force", **params}, json=BODIES.get(path))


def test_every_route_is_either_tenant_scoped_or_reviewed(app):
    for method, path, _ in _routes(app):
        assert "{tenant}" in path or (method, path) in TENANTLESS, (
            f"{method} {path} names no {{tenant}}: name the tenant path parameter 'tenant' so api.access isolates it, "
            "or add the route to TENANTLESS with a check of what it reveals")


def test_every_route_needs_a_login(app):
    anonymous = _client(app, None)
    for method, path, _ in _routes(app):
        r = _call(anonymous, method, path, _url(app, path))
        assert r.status_code == 401, f"{method} {path}: {r.status_code}"


def test_owner_of_a_gets_404_for_everything_of_b(app):
    owner_a, owner_b = _client(app, "owner-a"), _client(app, "owner-b")
    scoped = [(m, p) for m, p, _ in _routes(app) if "{tenant}" in p]
    assert len(scoped) >= 15  # dashboards, events, machines, history, export, alarms, ack, rules (list, choices,
    # add, edit, delete), tenant, orders (import, list)
    assert {("GET", "/api/v1/orders/{tenant}"), ("POST", "/api/v1/orders/{tenant}")} <= set(scoped)
    for method, path in scoped:
        url = _url(app, path)
        r = _call(owner_a, method, path, url)
        assert r.status_code == 404 and r.json() == {"detail": "not found"}, f"{method} {path}: {r.status_code}"
        # the same request gets past isolation for B's own owner: the 404 above is isolation, not a bad URL
        # (it may still be refused for other reasons, e.g. a report that needs a rollout date)
        if method == "GET" and not path.endswith("/events"):
            ok = _call(_client(app, "engineer") if path in CENTRE_ONLY_SCOPED else owner_b, method, path, url)
            assert ok.status_code not in (401, 403) and not (ok.status_code == 404 and ok.json() == {"detail": "not found"}), (
                f"{method} {path} as owner-b: {ok.status_code} {ok.text[:200]}")
    for path in CENTRE_ONLY_SCOPED:
        assert _call(owner_b, "GET", path, _url(app, path)).status_code == 403, path
    # the walk above sent PUT and DELETE for B's rule as owner-a: it is untouched
    assert [(r["name"], r["threshold"]) for r in owner_b.get("/api/v1/alarm-rules/bravo").json()] == [("force high", 0.0)]


def test_tenant_in_query_is_isolated_too(app):
    owner_a = _client(app, "owner-a")
    for method, path, _ in _routes(app):
        if method == "GET" and "{" not in path:
            r = owner_a.get(path, params={"tenant": "bravo"})
            assert r.status_code == 404, f"GET {path}?tenant=bravo: {r.status_code}"


def test_tenantless_routes_reveal_only_the_own_tenant(app):
    owner_a = _client(app, "owner-a")
    assert [t["tenant"] for t in owner_a.get("/api/v1/tenants").json()] == ["acme"]
    assert {m["tenant"] for m in owner_a.get("/api/v1/machines").json()} == {"acme"}
    assert owner_a.get("/api/v1/me").json()["tenant"] == "acme"
    for path in CENTRE_ONLY:
        assert owner_a.get(path).status_code == 403, path
    for method in ("PATCH", "DELETE"):  # a schedule of any SME, or the portfolio's: the centre's to change
        assert owner_a.request(method, "/api/v1/report-schedules/1", json={"active": False} if method == "PATCH"
                               else None).status_code == 403, method
    for method, path in ADMIN_ONLY:
        body = {"active": False} if method == "PATCH" else {"username": "x-1", "password": "lathe-morning-cactus-47",
                                                            "role": "sme_owner", "tenant": "bravo"}
        assert owner_a.request(method, path, json=body).status_code == 403, (method, path)
    for method, path in TENANTLESS:
        r = owner_a.request(method, path, json=BODIES.get(path))
        assert "bravo" not in r.text and "BRAVO" not in r.text, f"{method} {path} leaks tenant B"
    owner_a.patch("/api/v1/me", json={"language": "ko"})  # PATCH /me above switched it to English


def test_unknown_tenant_looks_the_same_as_a_foreign_one(app):
    owner_a = _client(app, "owner-a")
    foreign = owner_a.get("/api/v1/tenants/bravo")
    missing = owner_a.get("/api/v1/tenants/nobody")
    assert foreign.status_code == missing.status_code == 404 and foreign.json() == missing.json()


def test_centre_engineer_reads_every_tenant(app):
    eng = _client(app, "engineer")
    assert sorted(t["tenant"] for t in eng.get("/api/v1/tenants").json()) == ["acme", "bravo"]
    assert eng.get(f"/api/v1/lines/{B.tenant}/{B.site}/{B.line}/dashboard").status_code == 200
    overview = eng.get("/api/v1/centre/overview").json()["tenants"]
    assert [t["tenant"] for t in overview] == ["acme", "bravo"]
    gw = overview[1]["gateways"]
    assert gw == [{"gateway": "gw-b", "machines": 0, "last_data_ms": None, "online": False}]
    portfolio = {t["tenant"]: t for t in eng.get("/api/v1/centre/portfolio").json()["tenants"]}
    assert sorted(portfolio) == ["acme", "bravo"]
    assert [r["code"] for r in portfolio["bravo"]["attention"]] == ["no_data", "gateway_never"]
    sme = eng.get(f"/api/v1/centre/tenants/{B.tenant}").json()
    assert [m["machine"] for s in sme["sites"] for ln in s["lines"] for m in ln["machines"]] == [B.machine]


def test_operator_acknowledges_but_cannot_add_rules(app):
    op = _client(app, "operator-a")
    body = {**BODIES["/api/v1/alarm-rules/{tenant}"], "site": A.site, "line": A.line, "machine": A.machine}
    assert op.post("/api/v1/alarm-rules/acme", json=body).status_code == 403
    owner = _client(app, "owner-a")
    assert owner.post("/api/v1/alarm-rules/acme", json=body).status_code == 201
    alarm = op.get("/api/v1/alarms/acme").json()[0]
    assert alarm["status"] == "active"
    r = op.post(f"/api/v1/alarms/acme/{alarm['id']}/ack")
    assert r.json() == {"id": alarm["id"], "status": "acknowledged"}
    assert op.get("/api/v1/alarms/acme").json()[0]["acknowledged_by"] == "operator-a"


def test_api_token_for_scripts_and_wrong_credentials(app):
    token = create_token(app.state.services.plant, "owner-a", "nightly export")
    c = TestClient(app)
    assert c.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()["username"] == "owner-a"
    assert c.get("/api/v1/tenants/bravo", headers={"Authorization": f"Bearer {token}"}).status_code == 404
    assert c.get("/api/v1/me", headers={"Authorization": "Bearer sf_not-a-token"}).status_code == 401
    assert c.post("/api/v1/auth/login", json={"username": "owner-a", "password": "wrong-password"}).status_code == 401
    assert c.post("/api/v1/auth/login", json={"username": "nobody", "password": PASSWORD}).status_code == 401


def test_session_cookie_is_httponly_and_logout_ends_it(app):
    c = TestClient(app)
    r = c.post("/api/v1/auth/login", json={"username": "owner-a", "password": PASSWORD})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert c.get("/api/v1/me").status_code == 200
    c.post("/api/v1/auth/logout")
    assert c.get("/api/v1/me").status_code == 401


def test_language_defaults_by_role_and_is_remembered(app):
    assert _client(app, "operator-a").get("/api/v1/me").json()["language"] == "ko"  # never changed by a test
    assert _client(app, "engineer").get("/api/v1/me").json()["language"] == "en"
    c = _client(app, "owner-a")
    c.patch("/api/v1/me", json={"language": "en"})
    assert _client(app, "owner-a").get("/api/v1/me").json()["language"] == "en"
    c.patch("/api/v1/me", json={"language": "ko"})


def test_routers_mounted_later_are_isolated_too(app):
    """What the reports router will get: authorise runs for routers included after create_app."""
    from fastapi import APIRouter

    extra = APIRouter()

    @extra.get("/api/v1/reports/{tenant}/summary")
    def summary(tenant: str) -> dict:
        return {"tenant": tenant}

    app.include_router(extra)
    assert _client(app, "owner-a").get("/api/v1/reports/bravo/summary").status_code == 404
    assert _client(app, "owner-b").get("/api/v1/reports/bravo/summary").json() == {"tenant": "bravo"}
    assert _client(app, None).get("/api/v1/reports/bravo/summary").status_code == 401

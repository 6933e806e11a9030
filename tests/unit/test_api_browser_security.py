"""Browser-facing defences through the API (issue #11, items 4 and 11): the CSRF origin check,
upload content types, security headers on every response, and /docs served from this host.

Real SQLite plant database and store. The same attack in a real browser is in
tests/browser/test_csrf_browser.py.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from plantmodel.admin import PlantSeed, apply_seed, create_token
from plantmodel.db import open_plant
from tsstore.sqlite import SqliteStore

SEED = PlantSeed.model_validate({
    "tenants": [{"slug": "acme", "sites": [{"slug": "plant-1", "lines": [{"slug": "line-a", "machines": [
        {"slug": "press-1"}]}]}]}],
    "users": [{"username": "owner-a", "password": "owner-pass-1", "role": "sme_owner", "tenant": "acme"}],
})
ORDERS = "/api/v1/orders/acme"
CSV = b"order_id,line,product,quantity,ordered,due,completed\nSO-1,line-a,bracket,10,2026-03-02,2026-03-09,\n"
SAME = "http://testserver"  # the TestClient's own origin (Host: testserver)
FOREIGN = "http://testserver:8081"  # same host, another port: the same *site*, so SameSite=Strict lets the cookie by


def _app(tmp, **settings):
    plant = open_plant(f"sqlite:///{tmp / 'plant.db'}")
    apply_seed(plant, SEED)
    return create_app(SqliteStore(tmp / "store.db"), ApiSettings(**settings), plant, run_alarms=False), plant


@pytest.fixture
def env(tmp_path):
    return _app(tmp_path)


def _owner(app) -> TestClient:
    c = TestClient(app)
    assert c.post("/api/v1/auth/login", json={"username": "owner-a", "password": "owner-pass-1"}).status_code == 200
    return c


def _orders(c: TestClient) -> int:
    return c.get(ORDERS).json()["total"]


# -- CSRF ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    {"Origin": FOREIGN},
    {"Origin": "null"},  # sandboxed frames and no-referrer pages
    {"Origin": "http://evil.example"},
    {"Referer": FOREIGN + "/attack.html"},  # no Origin: the Referer decides
    {"Sec-Fetch-Site": "same-site"},  # what a browser sends for another port of the same host
    {"Sec-Fetch-Site": "cross-site", "Origin": SAME},
])
def test_cookie_requests_from_another_origin_are_refused_and_change_nothing(env, headers):
    app, _ = env
    c = _owner(app)
    r = c.post(ORDERS, content=CSV, headers={"Content-Type": "text/csv", **headers})
    assert r.status_code == 403, r.text
    assert "cross-site request refused" in r.json()["detail"] and "api.trusted_origins" in r.json()["detail"]
    rule = {"site": "plant-1", "line": "line-a", "machine": "press-1", "name": "x", "kind": "threshold",
            "tag": "force", "op": ">", "threshold": 1}
    assert c.post("/api/v1/alarm-rules/acme", json=rule, headers=headers).status_code == 403
    assert c.patch("/api/v1/me", json={"language": "en"}, headers=headers).status_code == 403
    assert c.post("/api/v1/auth/logout", headers=headers).status_code == 403
    assert _orders(c) == 0 and c.get("/api/v1/me").json()["language"] == "ko"


@pytest.mark.parametrize("headers", [
    {"Origin": SAME, "Sec-Fetch-Site": "same-origin"},  # what the dashboards' own fetch() sends
    {"Origin": "http://TESTSERVER:80"},  # the same origin, spelled otherwise
    {"Referer": SAME + "/"},
    {},  # no browser: curl, scripts, this test client
])
def test_same_origin_and_non_browser_requests_pass(env, headers):
    app, _ = env
    c = _owner(app)
    r = c.post(ORDERS, content=CSV, headers={"Content-Type": "text/csv", **headers})
    assert r.status_code == 200, r.text
    assert _orders(c) == 1


def test_bearer_token_requests_are_not_checked(env):
    app, plant = env
    token = create_token(plant, "owner-a", "script")
    c = TestClient(app)
    r = c.post(ORDERS, content=CSV, headers={"Content-Type": "text/csv", "Authorization": f"Bearer {token}",
                                             "Origin": FOREIGN, "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 200, r.text


def test_login_from_another_origin_is_refused(env):
    app, _ = env
    r = TestClient(app).post("/api/v1/auth/login", json={"username": "owner-a", "password": "owner-pass-1"},
                             headers={"Origin": FOREIGN})
    assert r.status_code == 403 and "sf_session" not in r.cookies


def test_trusted_origins_setting_admits_a_reverse_proxys_public_address(tmp_path):
    app, _ = _app(tmp_path, trusted_origins=["https://factory.example.org"])
    c = _owner(app)
    ok = c.post(ORDERS, content=CSV, headers={"Content-Type": "text/csv", "Origin": "https://factory.example.org"})
    assert ok.status_code == 200, ok.text
    assert c.post(ORDERS, content=CSV, headers={"Content-Type": "text/csv", "Origin": FOREIGN}).status_code == 403


# -- upload content types ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded", "application/octet-stream",
                                  "application/json", None])
def test_uploads_other_than_csv_or_a_form_file_are_415(env, kind):
    app, _ = env
    c = _owner(app)
    r = c.post(ORDERS, content=CSV, headers={"Content-Type": kind} if kind else {})
    assert r.status_code == 415 and "text/csv" in r.json()["detail"]
    assert _orders(c) == 0


def test_a_form_file_upload_imports(env):
    app, _ = env
    c = _owner(app)
    r = c.post(ORDERS, files={"file": ("orders.csv", CSV, "text/csv")})
    assert r.status_code == 200, r.text
    assert _orders(c) == 1
    missing = c.post(ORDERS, data={"other": "x"}, files={"not-file": ("a.csv", CSV, "text/csv")})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "file"]


# -- headers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/health", "/static/dashboard.js", "/api/v1/me", "/no-such-page", "/docs"])
def test_every_response_carries_the_security_headers(env, path):
    app, _ = env
    r = TestClient(app).get(path)
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in csp and "script-src 'self';" in csp and "unsafe" not in csp
    assert "object-src 'none'" in csp and "base-uri 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["x-frame-options"] == "SAMEORIGIN"
    assert "strict-transport-security" not in r.headers  # plain HTTP here


def test_a_refused_request_and_https_deployments_get_them_too(tmp_path):
    app, _ = _app(tmp_path, secure_cookies=True)
    r = TestClient(app).post(ORDERS, headers={"Origin": FOREIGN})
    assert r.status_code == 403 and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["strict-transport-security"].startswith("max-age=")


# -- /docs ---------------------------------------------------------------------------------------

def test_docs_load_nothing_from_other_hosts(env):
    app, _ = env
    c = TestClient(app)
    page = c.get("/docs")
    assert page.status_code == 200
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text), page.text
    assert "<script>" not in page.text  # no inline script: the CSP allows none
    for asset in re.findall(r"(?:src|href)=\"(/[^\"]+)\"", page.text):
        assert c.get(asset).status_code == 200, asset
    assert c.get("/openapi.json").json()["info"]["title"] == "smartfactory API"
    assert c.get("/redoc").status_code == 404  # FastAPI's ReDoc page is CDN-only


def test_docs_behind_login_when_configured(tmp_path):
    app, plant = _app(tmp_path, docs_public=False)
    anonymous = TestClient(app)
    assert anonymous.get("/docs").status_code == 401
    assert anonymous.get("/openapi.json").status_code == 401
    assert _owner(app).get("/openapi.json").status_code == 200
    token = create_token(plant, "owner-a", "docs")
    assert anonymous.get("/docs", headers={"Authorization": f"Bearer {token}"}).status_code == 200

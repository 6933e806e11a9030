"""Cross-site request forgery and the security headers in a real headless chromium (issue #11, items 4 and 11).

A real ``smartfactory api`` process serves the UI; an attacker's page is served from a second
loopback port of the same host, which is the same *site*, so the SameSite=Strict session
cookie goes along with its requests. The page auto-submits an order file three ways (a
``text/plain`` form, as found; a multipart form with a file; a ``no-cors`` fetch). No order
may be stored. The UI's own requests (login, an import by same-origin fetch) must pass, and
neither the dashboard nor /docs may trip the Content-Security-Policy.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import yaml

from plantmodel.admin import PlantSeed, apply_seed, create_token
from plantmodel.db import open_plant
from tests.browser.test_dashboard_browser import ARTIFACTS
from tests.processes import ApiProcess
from tests.servers import free_port

pytestmark = pytest.mark.integration

OWNER = ("owner-a", "owner-password-1")
CSV = "order_id,line,product,quantity,ordered,due,completed\\nSO-EVIL,line-a,x,1,2026-03-02,2026-03-09,\\n"


def _attacks(target: str) -> dict[str, str]:
    """The attacker's pages, each submitting an order file to ``target`` as soon as it loads."""
    form = '<form id="f" method="POST" action="{t}" enctype="{e}">{fields}</form>'
    plain = form.format(t=target, e="text/plain", fields=f'<input type="hidden" name="{CSV.split(",")[0]}" '
                                                          f'value=",{CSV.split(",", 1)[1]}">')
    multipart = form.format(t=target, e="multipart/form-data", fields='<input type="file" name="file" id="file">')
    return {
        "/plain.html": f"<html><body>{plain}<script>document.getElementById('f').submit()</script></body></html>",
        "/multipart.html": (
            f"<html><body>{multipart}<script>const dt = new DataTransfer();"
            f"dt.items.add(new File([\"{CSV}\"], 'orders.csv', {{type: 'text/csv'}}));"
            "document.getElementById('file').files = dt.files; document.getElementById('f').submit()</script>"
            "</body></html>"),
        "/fetch.html": (
            f"<html><body><script>fetch('{target}', {{method: 'POST', mode: 'no-cors', credentials: 'include', "
            f"body: new Blob([\"{CSV}\"], {{type: 'text/csv'}})}}).finally(() => document.title = 'sent')"
            "</script></body></html>"),
    }


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("csrf-browser")
    config = tmp / "smartfactory.yaml"
    config.write_text(yaml.safe_dump({"store": {"kind": "sqlite", "path": "store.db"},
                                      "api": {"database_url": "sqlite:///plant.db"}}))
    plant = open_plant(f"sqlite:///{tmp / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({
        "tenants": [{"slug": "acme", "sites": [{"slug": "plant-1", "lines": [{"slug": "line-a", "machines": [
            {"slug": "press-1"}]}]}]}],
        "users": [{"username": OWNER[0], "password": OWNER[1], "role": "sme_owner", "tenant": "acme"}]}))
    token = create_token(plant, OWNER[0], "test")
    plant.close()
    api = ApiProcess(config).start()
    yield api.url, token, api.log
    api.stop()


@pytest.fixture(scope="module")
def attacker(api):
    """The attacker's site: another port of the same host."""
    pages = _attacks(f"{api[0]}/api/v1/orders/acme")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            body = pages.get(self.path, "not found").encode()
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _orders(api) -> list[str]:
    url, token, _ = api
    r = httpx.get(f"{url}/api/v1/orders/acme", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    r.raise_for_status()
    return [o["order_id"] for o in r.json()["orders"]]


def test_a_page_on_another_port_cannot_import_orders_but_the_ui_can(api, attacker, browser):
    url, _, log = api
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context()
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        page.goto(url + "/")
        page.fill("input[name=username]", OWNER[0])
        page.fill("input[name=password]", OWNER[1])
        with page.expect_response(lambda r: r.url.endswith("/api/v1/auth/login")) as login:
            page.click("#login-form button[type=submit]")
        assert login.value.status == 200, login.value.text()  # the UI's own login passes the origin check
        assert any(c["name"] == "sf_session" for c in context.cookies())

        sent: list[dict] = []
        page.on("request", lambda r: sent.append(r.headers) if r.url.endswith("/api/v1/orders/acme") else None)
        for attack in ("/plain.html", "/multipart.html"):
            with page.expect_response(lambda r: r.url.endswith("/api/v1/orders/acme")) as answer:
                page.goto(attacker + attack)
            assert answer.value.status == 403, (attack, answer.value.status, answer.value.text())
            assert "cross-site request refused" in answer.value.text()
        page.goto(attacker + "/fetch.html")
        page.wait_for_function("document.title === 'sent'")
        page.screenshot(path=str(ARTIFACTS / "csrf-attacker-page.png"))
        assert len(sent) == 3
        assert _orders(api) == [], "a page of another origin imported orders"
        assert log.read_text().count("csrf_refused") == 3

        # the UI's own same-origin request still passes
        page.goto(url + "/")
        status = page.evaluate("async (csv) => (await fetch('/api/v1/orders/acme', {method: 'POST', "
                               "headers: {'Content-Type': 'text/csv'}, body: csv.replace('SO-EVIL', 'SO-OWN')})).status",
                               CSV.replace("\\n", "\n"))
        assert status == 200
        assert _orders(api) == ["SO-OWN"]
        assert violations == [], violations
    finally:
        context.close()


def test_docs_render_from_this_host_under_the_csp(api, browser):
    url, _, _ = api
    context = browser.new_context()
    page = context.new_page()
    violations: list[str] = []
    foreign: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(url) else None)
    try:
        page.goto(url + "/docs")
        page.wait_for_selector(".opblock", timeout=30_000)  # Swagger UI rendered the operations
        assert "/api/v1/auth/login" in page.inner_text("#swagger-ui")
        page.screenshot(path=str(ARTIFACTS / "docs-offline.png"))
        assert foreign == [] and violations == [], (foreign, violations)
    finally:
        context.close()

"""The account menu (api/static/account.js) in a real headless chromium against `smartfactory api`.

An owner lists, creates and revokes API tokens, sees a refused password explained in Korean, and
changes the password: the other browser's session ends, this one stays logged in.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import open_plant
from tests.processes import ApiProcess
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
OWNER, PASSWORD, NEW_PASSWORD = "kim-owner", "hanil-demo-1234", "lathe-morning-cactus-47"


@pytest.fixture(scope="module")
def api_url(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("account-ui")
    config = tmp / "smartfactory.yaml"
    config.write_text(yaml.safe_dump({"store": {"kind": "sqlite", "path": "store.db"},
                                      "api": {"database_url": "sqlite:///plant.db"}}))
    plant = open_plant(f"sqlite:///{tmp / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({"tenants": [{"slug": "acme"}], "users": [
        {"username": OWNER, "password": PASSWORD, "role": "sme_owner", "tenant": "acme"}]}))
    plant.close()
    api = ApiProcess(config).start()
    yield api.url
    api.stop()


def test_tokens_listed_created_revoked_and_password_changed_in_the_account_menu(api_url, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="ko-KR")
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())  # the revoke confirmation
    other = httpx.Client(base_url=api_url, timeout=5)  # the owner's other device
    assert other.post("/api/v1/auth/login", json={"username": OWNER, "password": PASSWORD}).status_code == 200
    try:
        page.goto(api_url + "/")
        page.fill("input[name=username]", OWNER)
        page.fill("input[name=password]", PASSWORD)
        page.click("#login-form button[type=submit]")
        menu = page.locator("[data-testid=account-menu]")
        menu.wait_for(state="visible")
        assert menu.inner_text() == "내 계정"
        menu.click()
        panel = page.locator("[data-testid=account-panel]")
        panel.get_by_text("발급한 토큰이 없습니다").wait_for()

        panel.locator("input[name=token-name]").fill("야간 내보내기")
        panel.locator("input[name=token-days]").fill("30")
        panel.get_by_role("button", name="발급").click()
        secret = panel.locator("[data-testid=token-secret]").inner_text()
        assert secret.startswith("sf_")
        assert httpx.get(api_url + "/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        menu.click()  # closed: the secret is gone for good
        menu.click()  # opened again: the list as it is now
        row = panel.locator("[data-testid=token-row]")
        row.wait_for()
        assert panel.locator("[data-testid=token-secret]").count() == 0 and secret not in panel.inner_text()
        cells = row.locator("td").all_inner_texts()
        assert cells[0] == "야간 내보내기" and cells[2] != "사용 안 함"  # last used: the request above
        page.screenshot(path=str(ARTIFACTS / "account-tokens.png"), full_page=True)
        row.locator("[data-testid=token-revoke]").click()
        panel.get_by_text("발급한 토큰이 없습니다").wait_for()
        assert httpx.get(api_url + "/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401

        panel.locator("input[name=current-password]").fill(PASSWORD)
        panel.locator("input[name=new-password]").fill("password")
        panel.locator("input[name=repeat-password]").fill("password")
        panel.get_by_role("button", name="변경").click()
        message = panel.locator("[data-testid=password-message]")
        message.get_by_text("추측하기 쉬운 비밀번호입니다", exact=False).wait_for()
        assert "흔히 쓰이는 비밀번호" in message.inner_text() and "서로 관계없는 단어" in message.inner_text()
        page.screenshot(path=str(ARTIFACTS / "account-weak-password.png"), full_page=True)
        assert other.get("/api/v1/me").status_code == 200  # nothing changed yet

        panel.locator("input[name=new-password]").fill(NEW_PASSWORD)
        panel.locator("input[name=repeat-password]").fill(NEW_PASSWORD)
        panel.get_by_role("button", name="변경").click()
        panel.locator("[data-testid=password-message]").get_by_text("비밀번호를 바꿨습니다", exact=False).wait_for()
        wait_until(lambda: other.get("/api/v1/me").status_code == 401, 15, "the other device's session to end")
        assert page.evaluate("fetch('/api/v1/me').then(r => r.status)") == 200  # this browser stays logged in
    finally:
        other.close()
        context.close()

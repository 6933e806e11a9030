"""Alarm rules in the web UI, in a real headless chromium against ``smartfactory demo`` running for real.

The owner opens the rules panel from the line dashboard (in Korean, then switches to English),
adds a threshold rule through the form — a hint of the form's own and a 422 of the server each
shown next to their field on the way, the 422 in Korean and then as the server wrote it — sees it listed and raised as an active alarm when
press-3's live press force crosses it, edits it so the alarm clears, and deletes it. An
operator sees the same rules read-only, and the API refuses the browser's session too.
Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from cli.demo import DEMO_OWNER, LINE, SITE, TENANT
from tests.browser.test_dashboard_browser import ARTIFACTS, _log_in, demo, demo_run, page  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration

MACHINE = "press-3"
RULE = "browser-test force below 400 kN"
OPERATOR = ("hanil-operator", "operator-demo-1234")
RULES_API = f"/api/v1/alarm-rules/{TENANT}"


def _open_rules(page) -> None:
    page.wait_for_selector(".tile[data-machine]")
    page.click("[data-testid=rules-toggle]")
    page.wait_for_selector("[data-testid=rules-table] tr[data-rule-id]")  # the demo seeds two rules per press


def _rule_call(method: str):
    """Matches the response of the form's POST (method POST) or of a PUT/DELETE on one rule."""
    def match(response) -> bool:
        path = response.url.split("?")[0]
        return response.request.method == method and (path.endswith(RULES_API) if method == "POST"
                                                      else f"{RULES_API}/" in path)
    return match


def _fetch_json(page, path: str):
    return page.evaluate("async (p) => (await fetch(p)).json()", path)


def test_owner_adds_edits_and_deletes_a_rule_that_fires_on_live_data(demo, page):
    from playwright.sync_api import expect

    _log_in(page, demo, DEMO_OWNER)
    _open_rules(page)
    # the owner's language is Korean: the panel is labelled in Korean
    assert page.evaluate("document.documentElement.lang") == "ko"
    assert page.inner_text("[data-testid=rules] h3") == "알람 규칙"
    assert page.inner_text("[data-testid=rules-toggle]") == "알람 규칙"
    assert "프레스 압력 830 kN 초과" in page.eval_on_selector_all("tr[data-rule-id]", "rs => rs.map(r => r.dataset.ruleName)")
    try:
        _add_edit_delete(page, expect)
    finally:  # the owner's language is stored with the user: leave it as the demo has it
        page.evaluate("() => fetch('/api/v1/me', {method: 'PATCH', headers: {'Content-Type': 'application/json'}, "
                      "body: JSON.stringify({language: 'ko'})})")


def _add_edit_delete(page, expect) -> None:
    form = page.locator("[data-testid=rule-form]")
    tag_error = form.locator("[data-error-for=tag]")
    page.click("[data-testid=rule-add]")
    expect(form).to_be_visible()
    form.locator("select[name=machine]").select_option(MACHINE)
    form.locator("input[name=name]").fill(RULE)
    form.locator("select[name=kind]").select_option("threshold")
    expect(form.locator("input[name=threshold]")).to_be_visible()
    expect(form.locator("select[name=state]")).to_be_hidden()  # kind-dependent fields
    form.locator("input[name=tag]").fill("press_forse")  # a typo only the server can tell
    form.locator("select[name=op]").select_option("<")

    # the form's own hint: a threshold rule needs a number; nothing is sent
    sent = []
    page.on("request", lambda r: sent.append(r.method) if f"{RULES_API}" in r.url and r.method != "GET" else None)
    page.click("[data-testid=rule-save]")
    expect(form.locator("[data-error-for=threshold]")).to_have_text(page.evaluate("TEXTS.ko['hint.threshold']"))
    assert sent == []

    # the server's 422 for the tag, next to the tag field: in Korean, from the error's type and ctx
    form.locator("input[name=threshold]").fill("400")
    with page.expect_response(_rule_call("POST")) as refused:
        page.click("[data-testid=rule-save]")
    assert refused.value.status == 422
    detail = next(d for d in refused.value.json()["detail"] if d["loc"][-1] == "tag")
    assert detail["type"] == "alarm_rule.tag_unknown"
    korean = page.evaluate("d => tf('err.' + d.type, d.ctx)", detail)
    assert "'press_forse' 태그를 보고하지 않습니다" in korean and "press_force" in korean
    expect(tag_error).to_have_text(korean)
    expect(form.locator("[data-error-for=threshold]")).to_have_text("")
    page.screenshot(path=str(ARTIFACTS / "rules-form-422-ko.png"), full_page=True)

    # switch to English once: the panel and the form follow without losing the input; sent again,
    # the 422 shows as the server wrote it
    page.click("[data-testid=lang-toggle]")
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert page.inner_text("[data-testid=rules] h3") == "Alarm rules"
    expect(form.locator("label[for=rule-tag] span")).to_have_text("Tag")
    expect(form.locator("input[name=name]")).to_have_value(RULE)
    with page.expect_response(_rule_call("POST")) as refused:
        page.click("[data-testid=rule-save]")
    msg = next(d["msg"] for d in refused.value.json()["detail"] if d["loc"][-1] == "tag")
    assert "press_forse" in msg and "press_force" in msg  # names the wrong tag and the ones to use
    expect(tag_error).to_have_text(msg)
    page.screenshot(path=str(ARTIFACTS / "rules-form-422-en.png"), full_page=True)

    form.locator("input[name=tag]").fill("press_force")
    with page.expect_response(_rule_call("POST")) as added:
        page.click("[data-testid=rule-save]")
    assert added.value.status == 201, added.value.text()
    rule_id = added.value.json()["id"]
    row = page.locator(f"tr[data-rule-id='{rule_id}']")
    expect(row).to_contain_text("press_force < 400")
    expect(form).to_be_hidden()

    # press-3 presses at about 800 kN and reads 0 between strokes and in stops, so the live value
    # goes below 400 within a cycle; the engine raises the alarm and the dashboard shows it
    active = page.locator(".alarm.active", has_text=RULE)
    active.wait_for(timeout=60_000)
    # the rules table counts it too, from the same live snapshot
    page.wait_for_function("id => document.querySelector(`tr[data-rule-id='${id}'] td[data-open]`).textContent === '1'",
                           arg=rule_id, timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "rules-alarm-active.png"), full_page=True)
    alarms = _fetch_json(page, f"/api/v1/alarms/{TENANT}?status=active&status=acknowledged&status=cleared")
    raised = [a for a in alarms if a["rule"] == RULE]
    assert raised and raised[-1]["machine"] == MACHINE and raised[-1]["value"] < 400

    # edit: below -1 kN never happens, so the alarm ends now and is not raised again
    row.locator("[data-action=edit]").click()
    expect(form.locator("input[name=threshold]")).to_have_value("400")
    expect(form.locator("input[name=name]")).to_have_value(RULE)
    form.locator("input[name=threshold]").fill("-1")
    with page.expect_response(_rule_call("PUT")) as edited:
        page.click("[data-testid=rule-save]")
    assert edited.value.status == 200
    expect(row).to_contain_text("press_force < -1")
    expect(page.locator(".alarm", has_text=RULE)).to_have_count(0, timeout=30_000)
    history = [a for a in _fetch_json(page, f"/api/v1/alarms/{TENANT}?status=active&status=acknowledged&status=cleared")
               if a["rule"] == RULE]
    assert history and all(a["status"] == "cleared" for a in history)
    assert {a["cleared_reason"] for a in history} <= {"condition_ended", "rule_changed"}
    page.screenshot(path=str(ARTIFACTS / "rules-edited.png"), full_page=True)

    # delete, after the browser's confirmation dialog
    page.once("dialog", lambda d: d.accept())
    with page.expect_response(_rule_call("DELETE")) as deleted:
        row.locator("[data-action=delete]").click()
    assert deleted.value.json()["deleted"] is True
    expect(row).to_have_count(0)
    expect(page.locator("[data-testid=rules-status]")).to_contain_text("Deleted")
    assert RULE not in [r["name"] for r in _fetch_json(page, RULES_API)]
    page.screenshot(path=str(ARTIFACTS / "rules-deleted.png"), full_page=True)


def test_operator_sees_rules_read_only(demo_run, page):
    from playwright.sync_api import expect

    # an operator login, made the way a centre would: the CLI against the demo's plant database
    subprocess.run([sys.executable, "-m", "cli.main", "plant", "user", "-c", str(demo_run.data_dir / "smartfactory.yaml"),
                    OPERATOR[0], "--role", "sme_operator", "--tenant", TENANT, "--password", OPERATOR[1]],
                   check=True, capture_output=True, timeout=60)
    _log_in(page, demo_run.url, OPERATOR)
    _open_rules(page)
    expect(page.locator("[data-testid=rules-readonly]")).to_have_text("읽기 전용: 규칙은 사업주 또는 센터 담당자가 변경할 수 있습니다")
    assert page.locator("[data-testid=rule-add], [data-action=edit], [data-action=delete], [data-testid=rule-form]").count() == 0
    page.screenshot(path=str(ARTIFACTS / "rules-operator-read-only.png"), full_page=True)
    # and the API refuses what the page does not offer, with the browser's own session
    rule = _fetch_json(page, f"{RULES_API}?site={SITE}&line={LINE}")[0]
    codes = page.evaluate("""async ([base, rule]) => [
        (await fetch(`${base}/${rule.id}`, {method: 'PUT', headers: {'Content-Type': 'application/json'},
                                            body: JSON.stringify({...rule, threshold: 1})})).status,
        (await fetch(`${base}/${rule.id}`, {method: 'DELETE'})).status]""", [RULES_API, rule])
    assert codes == [403, 403]
    unchanged = _fetch_json(page, RULES_API)[0]
    assert {k: v for k, v in unchanged.items() if k != "open_alarms"} == {k: v for k, v in rule.items()
                                                                         if k != "open_alarms"}

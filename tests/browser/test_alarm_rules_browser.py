"""Alarm rules in the web UI, in a real headless chromium against ``smartfactory demo`` running for real.

The owner opens the rules panel from the line dashboard (in Korean, then switches to English),
reads the seeded rules' on-delay, deadband and off-delay in the list, adds a threshold rule with
an on-delay and a deadband through the form — hints of the form's own and 422s of the server each
shown next to their field on the way, the 422s in Korean and then as the server wrote them — sees it
listed and raised as an active alarm when press-3's live press force has been past it for the
on-delay, edits it so the alarm clears, and deletes it. The form is looked at on a phone and a
wide screen. An
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
    # the server checks a rule's tag against what the machine has reported: on a fresh demo, wait until
    # press-3 has reported (its tile has a state), or the typo below is saved with a "not checked" warning
    page.wait_for_function("m => (document.querySelector(`.tile[data-machine='${m}']`)?.dataset.state ?? 'none') "
                           "!== 'none'", arg=MACHINE, timeout=60_000)
    _open_rules(page)
    # the owner's language is Korean: the panel is labelled in Korean
    assert page.evaluate("document.documentElement.lang") == "ko"
    assert page.inner_text("[data-testid=rules] h3") == "알람 규칙"
    assert page.inner_text("[data-testid=rules-toggle]") == "알람 규칙"
    assert "프레스 압력 830 kN 초과" in page.eval_on_selector_all("tr[data-rule-id]", "rs => rs.map(r => r.dataset.ruleName)")
    # the seeded rules' damping, in words (the demo gives them an on-delay, a deadband and off-delays)
    assert page.inner_text("[data-testid=rules-table] tr:first-child th:nth-child(4)") == "발생·해제"
    force = page.locator("tr[data-rule-name='프레스 압력 830 kN 초과'] [data-testid=rule-damping]").first
    assert force.inner_text() == "발생 지연 2초 · 불감대 10 kN (820 kN 이하에서 해제) · 해제 지연 60초"
    assert page.locator("tr[data-rule-name='고장 30초 이상'] [data-testid=rule-damping]").first.inner_text() == "해제 지연 15초"
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
    # the damping fields, labelled as a Korean engineer writes them, 0 (at once) for a new rule
    for name, label in (("on_delay_s", "발생 지연 (초)"), ("deadband", "해제 불감대"), ("off_delay_s", "해제 지연 (초)")):
        expect(form.locator(f"label[for=rule-{name}] span")).to_have_text(label)
        expect(form.locator(f"input[name={name}]")).to_have_value("0")
    form.locator("select[name=kind]").select_option("state_duration")  # its duration_s is its on-delay: no
    expect(form.locator("input[name=on_delay_s]")).to_be_hidden()      # on-delay and no threshold to band
    expect(form.locator("input[name=deadband]")).to_be_hidden()
    expect(form.locator("input[name=off_delay_s]")).to_be_visible()
    form.locator("select[name=kind]").select_option("threshold")
    form.locator("input[name=tag]").fill("press_forse")

    # the form's own hints: a threshold rule needs a number, a delay is not negative; nothing is sent
    sent = []
    page.on("request", lambda r: sent.append(r.method) if f"{RULES_API}" in r.url and r.method != "GET" else None)
    form.locator("input[name=off_delay_s]").fill("-5")
    page.click("[data-testid=rule-save]")
    expect(form.locator("[data-error-for=threshold]")).to_have_text("비교할 숫자를 입력하세요 (예: 830)")
    expect(form.locator("[data-error-for=off_delay_s]")).to_have_text("0~3600초 사이로 입력하세요 (0이면 즉시)")
    assert sent == []

    # the server's 422s for the tag and a deadband wider than the threshold, next to their fields: in
    # Korean, from each error's type and ctx
    form.locator("input[name=threshold]").fill("400")
    form.locator("input[name=off_delay_s]").fill("0")
    form.locator("input[name=deadband]").fill("500")
    with page.expect_response(_rule_call("POST")) as refused:
        page.click("[data-testid=rule-save]")
    assert refused.value.status == 422
    detail = next(d for d in refused.value.json()["detail"] if d["loc"][-1] == "tag")
    assert detail["type"] == "alarm_rule.tag_unknown"
    korean = page.evaluate("d => tf('err.' + d.type, d.ctx)", detail)
    assert "'press_forse' 태그를 보고하지 않습니다" in korean and "press_force" in korean
    expect(tag_error).to_have_text(korean)
    expect(form.locator("[data-error-for=deadband]")).to_have_text(
        "해제 불감대 500이(가) 기준값 400 이상이라 알람이 900에서야 해제됩니다(사실상 해제되지 않음): "
        "불감대는 보통 측정 범위의 1~5 %로 정합니다 (예: 8)")
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
    form.locator("input[name=deadband]").fill("50")
    form.locator("input[name=on_delay_s]").fill("3")
    with page.expect_response(_rule_call("POST")) as added:
        page.click("[data-testid=rule-save]")
    assert added.value.status == 201, added.value.text()
    rule_id = added.value.json()["id"]
    row = page.locator(f"tr[data-rule-id='{rule_id}']")
    expect(row).to_contain_text("press_force < 400")
    expect(row.locator("[data-testid=rule-damping]")).to_have_text("on-delay 3 s · deadband 50 kN (clears at 450 kN or above)")
    expect(form).to_be_hidden()

    # press-3 presses at about 800 kN and reads 0 for about 11 s between strokes and in stops, so the
    # live value stays below 400 for longer than the 3 s on-delay within a cycle; the engine raises
    # the alarm and the dashboard shows it
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
    expect(form.locator("input[name=on_delay_s]")).to_have_value("3")
    expect(form.locator("input[name=deadband]")).to_have_value("50")
    expect(form.locator("input[name=name]")).to_have_value(RULE)
    form.locator("input[name=threshold]").fill("-1")
    form.locator("input[name=deadband]").fill("0")  # 50 would be wider than the threshold's own size: a 422
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


@pytest.mark.parametrize("width, height", [(390, 844), (1440, 900)])
def test_the_rule_form_fits_a_phone_and_a_wide_screen(demo, browser, width, height):
    """The form with its damping fields and hint, looked at (screenshots) and without horizontal overflow."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": width, "height": height}, locale="ko-KR", bypass_csp=True)
    try:
        page = context.new_page()
        _log_in(page, demo, DEMO_OWNER)
        _open_rules(page)
        page.locator("tr[data-rule-name='프레스 압력 830 kN 초과'] [data-action=edit]").first.click()
        form = page.locator("[data-testid=rule-form]")
        expect(form.locator("input[name=deadband]")).to_have_value("10")
        expect(form.locator("label[for=rule-deadband] span")).to_have_text("해제 불감대")
        form.scroll_into_view_if_needed()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        # nor inside the rules list: on a phone each rule is a card whose cells say what they are
        assert page.evaluate("(l => l.scrollWidth <= l.clientWidth)(document.getElementById('rules-list'))")
        damping = page.locator("tr[data-rule-name='프레스 압력 830 kN 초과'] [data-testid=rule-damping]").first
        expect(damping).to_have_text("발생 지연 2초 · 불감대 10 kN (820 kN 이하에서 해제) · 해제 지연 60초")
        expect(page.locator("tr[data-rule-name='프레스 압력 830 kN 초과'] td[data-label='설비']").first).to_have_text("프레스 1호기")
        form.screenshot(path=str(ARTIFACTS / f"rules-form-{width}.png"))
        page.locator("[data-testid=rules]").screenshot(path=str(ARTIFACTS / f"rules-panel-{width}.png"))
    finally:
        context.close()


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

"""The centre engineer's workspace in a real headless chromium, against ``smartfactory demo``.

The demo has two SMEs: hanil-autoparts (a press line with its rollout and before/after report) and
daehan-metal (no gateway, no data), which the portfolio must flag with its reasons. At 1440×900 and
390×844, in English and Korean: no horizontal overflow, sort and filter, the reasons in words, the
gains in the report's words with the right sign, the distribution chart, and the drill-down
portfolio → SME → line (the owner's page). Screenshots go to test-artifacts/browser/.

Until the shell's router (api/static/dashboard.js, owned by the UI shell; on branch ui) is on this
branch, the page is mounted in a minimal shell served by the test (``SHELL``) that calls
``window.sfCentre.render`` the way that router does: the same static files, glossary and API.
"""

from __future__ import annotations

import re

import httpx
import pytest

from cli.demo import DEMO_ENGINEER, DEMO_OTHER_OWNER, LINE, MACHINES, OTHER_TENANT, SITE, TENANT
from tests.browser.test_dashboard_browser import ARTIFACTS, demo_run  # noqa: F401  (the module's demo fixture)
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

WIDE, PHONE = {"width": 1440, "height": 900}, {"width": 390, "height": 844}
SHELL_PATH = "/static/centre-test-shell.html"
SHELL = r"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>centre</title>
<link rel="stylesheet" href="/static/style.css"><link rel="stylesheet" href="/static/centre.css"></head>
<body><header><h1>smartfactory</h1><span id="where"></span>
<nav><button id="lang" type="button" data-testid="lang-toggle">한국어</button></nav></header>
<main id="view"></main>
<script src="/static/i18n.js"></script><script src="/static/centre.js"></script>
<script>
// called as the shell's router calls it (branch ui, dashboard.js openCentreRoute): a route object, lang as a function
let ME = null;
const api = (p) => fetch(p, {credentials: "same-origin"}).then((r) => {
  if (!r.ok) { const e = new Error(p + ": HTTP " + r.status); e.status = r.status; throw e; } return r.json(); });
async function go() {
  ME = ME || await api("/api/v1/me");
  LANG = localStorage.getItem("sf-lang") || ME.language || "en";
  document.documentElement.lang = LANG;
  document.getElementById("lang").textContent = t("switch");
  const parts = location.hash.replace(/^#\//, "").split("/").map(decodeURIComponent);
  if (parts[0] === "centre") sfCentre.render(document.getElementById("view"), {parts, tenant: parts[1] || null, hash: location.hash},
    {api, t, tf, me: ME, lang: () => LANG, setWhere: (x) => { document.getElementById("where").textContent = x; }});
  else document.getElementById("view").textContent = "owner page " + location.hash;
}
addEventListener("hashchange", go);
// the language switch as the shell does it: applyTexts() sets <html lang>; the page re-renders itself
document.getElementById("lang").onclick = () => {
  LANG = LANG === "ko" ? "en" : "ko"; localStorage.setItem("sf-lang", LANG);
  document.documentElement.lang = LANG; document.getElementById("lang").textContent = t("switch"); };
go();
</script></body></html>"""


@pytest.fixture(scope="module")
def demo(demo_run) -> str:  # noqa: F811
    return demo_run.url


def _page(browser, url: str, viewport: dict, user=DEMO_ENGINEER):
    # Playwright polls wait_for_function predicates with eval, which our CSP forbids; the CSP itself
    # is checked without bypass in tests/browser/test_csrf_browser.py
    context = browser.new_context(viewport=viewport, locale="en-GB", bypass_csp=True)
    context.route(url + SHELL_PATH, lambda route: route.fulfill(status=200, content_type="text/html", body=SHELL))
    r = context.request.post(url + "/api/v1/auth/login", data={"username": user[0], "password": user[1]})
    assert r.ok, r.text()
    return context, context.new_page()


def _portfolio(page, url: str, query: str = "") -> None:
    page.goto(f"{url}{SHELL_PATH}#/centre{query}")
    page.wait_for_selector("[data-testid=centre-portfolio] tr[data-tenant]")


def _no_horizontal_overflow(page) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide in a {widths[1]} px viewport"


def _shown(page) -> list[str]:
    return page.eval_on_selector_all("[data-testid=centre-portfolio] tbody tr", "rs => rs.map(r => r.dataset.tenant)")


def _expected_words(gain: dict, lang: str) -> str:
    """The words the page must print for a gain, built here from the API's numbers: sign as the value moved."""
    v = round(gain["change_pct"], 1)
    sign = "+" if v > 0 else "\u2212" if v < 0 else ""
    word = {"en": {"reduced": "reduced", "increased": "increased"}, "ko": {"reduced": "감소", "increased": "증가"}}[lang][gain["direction"]]
    return f"{gain['label'][lang]} {sign}{abs(v):.1f}% ({word}"


@pytest.fixture(scope="module")
def api_portfolio(demo) -> dict:
    """The portfolio once the demo's history is backfilled (until then the report fails and says why)."""
    with httpx.Client(base_url=demo, timeout=30) as c:
        c.post("/api/v1/auth/login", json={"username": DEMO_ENGINEER[0], "password": DEMO_ENGINEER[1]}).raise_for_status()
        answer = {}

        def reported() -> bool:
            answer.update({t["tenant"]: t for t in c.get("/api/v1/centre/portfolio").json()["tenants"]})
            return any(g["key"] == "material_input_s" for g in answer[TENANT]["gains"])

        wait_until(reported, 240, "the demo's before/after report in the centre portfolio")
        return answer


def test_portfolio_wide_in_english_flags_sorts_filters_and_drills_down(browser, demo, api_portfolio):
    context, page = _page(browser, demo, WIDE)
    _portfolio(page, demo)
    assert page.inner_text("[data-testid=centre-title]") == "SME portfolio"
    _no_horizontal_overflow(page)
    # the SME without gateway and data is flagged, with its reasons in words; names, not slugs
    daehan = page.locator(f"tr[data-tenant={OTHER_TENANT}]")
    assert daehan.locator("[data-testid=centre-sme-link]").inner_text() == "Daehan Metal"
    assert daehan.locator("[data-testid=centre-reasons] li").all_inner_texts() == [
        "No data in the last 24 h", "No gateway registered"]
    hanil = page.locator(f"tr[data-tenant={TENANT}]")
    assert hanil.locator("[data-testid=centre-sme-link]").inner_text() == "Hanil Autoparts"
    assert hanil.locator("[data-testid=centre-gateway]").inner_text() == "online"
    # gains in the report's words: a shorter material input time is "−x% (reduced)", never "+"
    gains = hanil.locator(".cx-gains li").all_inner_texts()
    material = next(g for g in api_portfolio[TENANT]["gains"] if g["key"] == "material_input_s")
    assert material["change_pct"] < 0 and material["better"] is True
    assert any(g.startswith(_expected_words(material, "en")) for g in gains), gains
    assert re.search(r"Material input time per part \u2212\d+\.\d% \(reduced\)", "\n".join(gains))
    assert not any("material_input_s" in g or "lead_time_days" in g for g in gains)
    # sort: the flagged SME first by default; by name both ways; by coverage, the lowest first
    assert _shown(page) == [OTHER_TENANT, TENANT]
    page.click("th button[data-sort=name]")
    assert _shown(page) == [OTHER_TENANT, TENANT]  # Daehan < Hanil
    page.click("th button[data-sort=name]")
    assert _shown(page) == [TENANT, OTHER_TENANT]
    assert page.get_attribute("th:has(button[data-sort=name])", "aria-sort") == "descending"
    page.select_option("[data-testid=centre-sort]", "coverage")
    assert _shown(page) == [OTHER_TENANT, TENANT]
    page.click("[data-testid=centre-sort-dir]")
    assert _shown(page) == [TENANT, OTHER_TENANT]
    # filter: needs attention only; search by Korean and English name
    page.check("[data-testid=centre-attention-only]")
    assert _shown(page) == [OTHER_TENANT]
    page.uncheck("[data-testid=centre-attention-only]")
    page.fill("[data-testid=centre-search]", "hanil")
    assert _shown(page) == [TENANT]
    page.fill("[data-testid=centre-search]", "대한")
    assert _shown(page) == [OTHER_TENANT]
    page.fill("[data-testid=centre-search]", "no such sme")
    assert _shown(page) == [] and page.is_visible("[data-testid=centre-empty]")
    page.fill("[data-testid=centre-search]", "")
    # the distribution chart: a dot per gain, an axis with its unit
    n = sum(1 for t in api_portfolio.values() for g in t["gains"] if g["improvement_pct"] is not None)
    assert page.locator("[data-testid=centre-distribution] circle").count() == n > 0
    assert "Improvement (%), positive is better" in page.text_content("[data-testid=centre-distribution]")
    page.screenshot(path=str(ARTIFACTS / "centre-portfolio-1440-en.png"), full_page=True)

    # drill-down by keyboard: the SME's link, then its line (the owner's page)
    page.focus(f"tr[data-tenant={TENANT}] [data-testid=centre-sme-link]")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=sme-title]")
    assert page.evaluate("location.hash") == f"#/centre/{TENANT}"
    assert page.inner_text("[data-testid=sme-title]") == "Hanil Autoparts"
    assert page.locator(".cx-line[data-line] tr[data-machine]").count() == len(MACHINES)  # the demo line's presses
    assert page.locator("[data-testid=sme-headline] li").count() >= 3
    _no_horizontal_overflow(page)
    page.screenshot(path=str(ARTIFACTS / "centre-sme-1440-en.png"), full_page=True)
    page.click("[data-testid=sme-line-link]")
    assert page.evaluate("location.hash") == f"#/line/{TENANT}/{SITE}/{LINE}"
    # the link ends on the owner's line page: open it in the real shell
    page.goto(f"{demo}/{page.evaluate('location.hash')}")
    page.wait_for_selector(".tile[data-machine]")
    assert "프레스 1라인" in page.inner_text("#where") or "Press Line 1" in page.inner_text("#where")
    context.close()


def test_portfolio_on_a_phone_is_cards_without_overflow_and_a_tap_opens_the_sme(browser, demo, api_portfolio):
    context, page = _page(browser, demo, PHONE)
    _portfolio(page, demo)
    _no_horizontal_overflow(page)
    boxes = page.eval_on_selector_all("[data-testid=centre-portfolio] tbody tr",
                                      "rs => rs.map(r => { const b = r.getBoundingClientRect(); return [b.left, b.right]; })")
    assert all(0 <= left and right <= PHONE["width"] for left, right in boxes), boxes
    assert page.evaluate("getComputedStyle(document.querySelector('.cx-table tr')).display") == "block"  # a card
    page.screenshot(path=str(ARTIFACTS / "centre-portfolio-390-en.png"), full_page=True)
    # a tap anywhere on the card opens the SME
    page.click(f"tr[data-tenant={OTHER_TENANT}] td[data-label='Active alarms']")
    page.wait_for_selector("[data-testid=sme-title]")
    assert page.evaluate("location.hash") == f"#/centre/{OTHER_TENANT}"
    assert page.inner_text("[data-testid=sme-title]") == "Daehan Metal"
    assert page.locator("[data-testid=sme-reasons] li").all_inner_texts() == [
        "No data in the last 24 h", "No gateway registered"]
    _no_horizontal_overflow(page)
    page.screenshot(path=str(ARTIFACTS / "centre-sme-390-en.png"), full_page=True)
    page.click("[data-testid=crumb-portfolio]")
    page.wait_for_selector("[data-testid=centre-portfolio]")
    assert page.evaluate("location.hash") == "#/centre"
    context.close()


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1440", "390"])
def test_portfolio_in_korean_uses_the_glossary_and_the_report_labels(browser, demo, api_portfolio, viewport):
    context, page = _page(browser, demo, viewport)
    _portfolio(page, demo)
    page.check("[data-testid=centre-attention-only]")
    page.click("[data-testid=lang-toggle]")  # the shell switches <html lang>; the page re-renders, keeping its filter
    page.wait_for_function("document.querySelector('[data-testid=centre-title]')?.innerText === '도입 기업 현황'")
    assert page.is_checked("[data-testid=centre-attention-only]") and _shown(page) == [OTHER_TENANT]
    page.uncheck("[data-testid=centre-attention-only]")
    daehan = page.locator(f"tr[data-tenant={OTHER_TENANT}]")
    assert daehan.locator("[data-testid=centre-sme-link]").inner_text() == "대한금속"
    assert daehan.locator("[data-testid=centre-reasons] li").all_inner_texts() == ["최근 24시간 데이터 없음", "게이트웨이 미등록"]
    assert page.locator(f"tr[data-tenant={TENANT}] [data-testid=centre-gateway]").inner_text() == "연결됨"
    gains = page.locator(f"tr[data-tenant={TENANT}] .cx-gains li").all_inner_texts()
    material = next(g for g in api_portfolio[TENANT]["gains"] if g["key"] == "material_input_s")
    assert any(g.startswith(_expected_words(material, "ko")) for g in gains), gains
    assert any(g.startswith("자재 투입시간 (개당) \u2212") and "(감소" in g for g in gains), gains
    assert "개선율 (%), 양수가 개선" in page.text_content("[data-testid=centre-distribution]")
    page.check("[data-testid=centre-attention-only]")
    assert _shown(page) == [OTHER_TENANT]
    _no_horizontal_overflow(page)
    page.screenshot(path=str(ARTIFACTS / f"centre-portfolio-{viewport['width']}-ko.png"), full_page=True)
    page.uncheck("[data-testid=centre-attention-only]")
    page.click(f"tr[data-tenant={TENANT}] [data-testid=centre-sme-link]")
    page.wait_for_selector("[data-testid=sme-title]")
    assert page.inner_text("[data-testid=sme-title]") == "한일오토파츠"
    assert page.inner_text(".cx-line h4 a") == "프레스 1라인"
    assert set(page.locator(".cx-machines thead th").all_inner_texts()) >= {"설비", "상태", "마지막 데이터"}
    _no_horizontal_overflow(page)
    page.screenshot(path=str(ARTIFACTS / f"centre-sme-{viewport['width']}-ko.png"), full_page=True)
    context.close()


def test_an_sme_owner_gets_no_portfolio(browser, demo):
    context, page = _page(browser, demo, PHONE, user=DEMO_OTHER_OWNER)
    page.goto(f"{demo}{SHELL_PATH}#/centre")
    page.wait_for_selector("[data-testid=centre-error]")
    assert page.inner_text("[data-testid=centre-error]") == "센터 담당자만 볼 수 있는 화면입니다"
    page.goto(f"{demo}{SHELL_PATH}#/centre/{TENANT}")  # another SME: looks like nothing there
    page.wait_for_function("document.querySelector('[data-testid=centre-error]')?.innerText === '찾을 수 없습니다'")
    context.close()


def test_every_reason_is_worded_in_both_languages(browser, demo, api_portfolio):
    """Reasons the demo does not produce, worded by the page from the API's data (api.centre.attention)."""
    from api.centre import attention, gain

    now = api_portfolio[TENANT]["last_seen_ms"]
    worse = gain({"key": "material_input_s", "before": 10.0, "after": 12.0, "change_pct": 20.0, "improvement_pct": -20.0,
                  "significant": True, "unit": "s"}, {"line": LINE})
    row = {"machines": 2, "coverage_24h": 0.42, "gateways": [
        {"gateway": "gw-9", "machines": 2, "last_data_ms": now - 3 * 3_600_000, "online": False}]}
    reasons = attention(row, [worse], [], 0.8, now)
    assert [r["code"] for r in reasons] == ["low_coverage", "gateway_offline", "kpi_worse"]
    context, page = _page(browser, demo, WIDE)
    _portfolio(page, demo)
    words = {lang: page.evaluate("([rs, lang]) => rs.map(r => sfCentre._words.reason(r, {lang, t: (k) => TEXTS[lang][k] ?? k}))",
                                 [reasons, lang]) for lang in ("en", "ko")}
    assert words["en"] == ["Data coverage 42% in 24 h, under the 80% threshold", "Gateway gw-9 offline, last seen 3 hours ago",
                           "Material input time per part got worse: +20.0% (increased)"]
    assert words["ko"] == ["24시간 데이터 수집률 42%, 기준 80% 미만", "게이트웨이 gw-9 연결 끊김, 마지막 수신 3시간 전",
                           "자재 투입시간 (개당) 악화: +20.0% (증가)"]
    context.close()


def test_computed_at_times_are_in_the_tenants_zone_not_the_browsers(browser, demo, api_portfolio):
    """A browser in Los Angeles looking at SMEs in Seoul: when the gains were computed, and when the line's
    figures were, is printed in Seoul time with the zone named, as the header clock and the reports do."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from playwright.sync_api import expect

    seoul = ZoneInfo("Asia/Seoul")
    context = browser.new_context(viewport=WIDE, locale="en-GB", timezone_id="America/Los_Angeles", bypass_csp=True)
    r = context.request.post(demo + "/api/v1/auth/login", data={"username": DEMO_ENGINEER[0], "password": DEMO_ENGINEER[1]})
    assert r.ok, r.text()
    page = context.new_page()
    answers: list[int] = []  # gains_as_of_ms of each portfolio the page fetched (the gains may be recomputed)
    page.on("response", lambda res: answers.append(res.json()["gains_as_of_ms"])
            if res.url.split("?")[0].endswith("/api/v1/centre/portfolio") and res.ok else None)

    def computed(ms: int) -> str:
        return f"{datetime.fromtimestamp(ms / 1000, seoul):%Y-%m-%d %H:%M} (Asia/Seoul)"

    try:
        page.goto(f"{demo}/#/centre")  # the real shell (dashboard.js), not the test's
        note = page.locator("[data-testid=centre-gains-as-of]")
        note.wait_for()
        assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "America/Los_Angeles"
        assert page.get_attribute("#clock", "data-tz") == "Asia/Seoul"
        assert note.inner_text() == f"Gains from the before/after reports computed {computed(answers[-1])}"
        page.click("[data-testid=lang-toggle]")
        page.wait_for_function("document.documentElement.lang === 'ko'")
        expect(note).to_contain_text("개선율: ")
        assert note.inner_text() == f"개선율: {computed(answers[-1])}에 계산한 도입 전후 보고서 기준"
        page.screenshot(path=str(ARTIFACTS / "centre-computed-at-seoul-from-la.png"), full_page=True)

        # the line page: when its live figures were computed, Seoul time, named
        page.goto(f"{demo}/#/line/{TENANT}/{SITE}/{LINE}")
        status = page.locator("#status")
        expect(status).to_contain_text("(Asia/Seoul)", timeout=30_000)
        shown = re.search(r"갱신 (\d\d):(\d\d):(\d\d) \(Asia/Seoul\)$", status.inner_text())
        assert shown, status.inner_text()
        now = datetime.now(seoul)
        drift = abs((int(shown[1]) * 3600 + int(shown[2]) * 60 + int(shown[3]))
                    - (now.hour * 3600 + now.minute * 60 + now.second)) % 86_400
        assert min(drift, 86_400 - drift) < 300  # Seoul's time of day; Los Angeles' is 17 hours off
    finally:
        page.evaluate("() => fetch('/api/v1/me', {method: 'PATCH', headers: {'Content-Type': 'application/json'}, "
                      "body: JSON.stringify({language: 'en'})})")
        context.close()


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1440", "390"])
def test_drill_down_from_the_portfolio_to_one_machine_in_the_real_shell(browser, demo, viewport):
    """Centre → SME → line → machine by clicks in the shell the engineer uses (dashboard.js), in English by
    default, ending on the owner's machine page; every step fits the screen."""
    context, page = _page(browser, demo, viewport)
    w = viewport["width"]
    try:
        page.goto(f"{demo}/#/centre")
        page.wait_for_selector("[data-testid=centre-portfolio] tr[data-tenant]")
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.inner_text("[data-testid=centre-title]") == "SME portfolio"
        _no_horizontal_overflow(page)
        page.screenshot(path=str(ARTIFACTS / f"drill-{w}-1-portfolio.png"), full_page=True)
        page.click(f"tr[data-tenant={TENANT}] [data-testid=centre-sme-link]")
        page.wait_for_selector("[data-testid=sme-title]")
        assert page.evaluate("location.hash") == f"#/centre/{TENANT}"
        assert page.inner_text("[data-testid=sme-title]") == "Hanil Autoparts"
        _no_horizontal_overflow(page)
        page.screenshot(path=str(ARTIFACTS / f"drill-{w}-2-sme.png"), full_page=True)
        page.click("[data-testid=sme-line-link]")
        page.wait_for_selector(".tile[data-machine]")
        assert page.evaluate("location.hash") == f"#/line/{TENANT}/{SITE}/{LINE}"
        assert page.inner_text("h2.page-title") == "Press Line 1"
        assert page.locator(".tile[data-machine]").count() == len(MACHINES)
        _no_horizontal_overflow(page)
        page.screenshot(path=str(ARTIFACTS / f"drill-{w}-3-line.png"), full_page=True)
        # live for the engineer too: a state or a count changes on the line without a reload
        before = page.evaluate("[...document.querySelectorAll('.tile')].map(t => t.dataset.state + '|' + "
                               "t.querySelector('[data-testid=count]').textContent)")
        page.wait_for_function("before => [...document.querySelectorAll('.tile')].map(t => t.dataset.state + '|' + "
                               "t.querySelector('[data-testid=count]').textContent).join() !== before.join()",
                               arg=before, timeout=60_000)
        page.click(".tile[data-machine=press-1]")
        page.wait_for_url(f"**/#/machine/{TENANT}/{SITE}/{LINE}/press-1")
        page.wait_for_selector("[data-testid=gantt] span", timeout=60_000)
        # the engineer works in English: the machine's English name from the plant model (name_en)
        assert page.inner_text("[data-testid=machine-title]") == "Press 1"
        page.locator("[data-testid=timeline] h3", has_text="State timeline").wait_for()
        _no_horizontal_overflow(page)
        page.screenshot(path=str(ARTIFACTS / f"drill-{w}-4-machine.png"), full_page=True)
    finally:
        context.close()

"""The machine page with a 30-day range in a real browser, on the demo: time until its panels are drawn.

Issue 17 asks that "a machine page with a 30-day range renders in under 1 s on the demo". This
starts ``smartfactory demo`` (three simulated presses, gateway, broker, collector, SQLite store,
API; 28 days backfilled) in a temporary directory on a free port, waits for the backfill, then
drives Debian's chromium through Playwright (launch arguments from tests/conftest.py):

- cold: the first view of the machine page after the demo started (the API's answer, trend,
  snapshot and credential caches empty; a new browser profile, so no HTTP cache either), in a
  browser that is already running (it drew one local page first, as a user's browser has);
- warm: the same page reloaded (three times, each figure listed);
- new browser, warm API: a second browser profile opening the page;
- range switch: on the open page, "today" then "30 days" clicked, to the new panels drawn;
- for comparison, a browser launched right before the view (its start-up included), API warm.

"Drawn" means: the live tile shows a state, the range panels are rendered for the range
(``data-loaded``), the state timeline has its segments and every trend box has its chart.
The figure is ``performance.now()`` at that moment: milliseconds since the navigation began
(for the range switch, since the click). The browser runs on the same 2 cores as the demo.

Run: python bench/page.py [--no-write]   (writes its section of bench/RESULTS.md)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results import publish, run_command  # noqa: E402
from cli.demo import DEMO_OWNER, LINE, SITE, TENANT  # noqa: E402
from tests.conftest import CHROMIUM_ARGS  # noqa: E402
from tests.servers import free_port  # noqa: E402

SECTION_TITLE = "## Machine page in the browser, 30 days, on the demo (bench/page.py)"
TARGET_MS = 1000.0
MACHINE = "press-1"
CHROMIUM = "/usr/bin/chromium"
#: What a running browser has drawn before (fonts, a canvas), asking the demo for nothing.
WARMUP_PAGE = ("<html lang=ko><body><p>스마트공장 가동률 · 성능가동률 · 양품률</p><canvas id=c width=200 height=80></canvas>"
               "<script>const g = document.getElementById('c').getContext('2d'); g.fillText('Press 1', 10, 40);"
               "</script></body></html>")
DRAWN = """() => {
  const body = document.querySelector('[data-testid=machine-body]');
  const boxes = [...document.querySelectorAll('[data-testid=trends] .trend-box')];
  return !!(body && body.dataset.loaded && document.querySelector('[data-testid=machine-live] [data-testid=state]')
    && document.querySelector('[data-testid=gantt] span') && document.querySelector('[data-testid=machine-kpis]')
    && (boxes.length ? boxes.every((b) => b.querySelector('canvas')) : document.querySelector('[data-testid=trends] p')));
}"""


class Demo:
    """``smartfactory demo`` as a child process group; its output is read for the backfill's end."""

    def __init__(self, data_dir: Path, port: int, extra: tuple[str, ...] = ()) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "cli.main", "--log-level", "WARNING", "demo", "--data-dir",
                                      str(data_dir), "--port", str(port), *extra], cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.backfilled = threading.Event()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line.rstrip())
            if "History backfilled" in line:
                self.backfilled.set()

    def wait_backfilled(self, timeout_s: float) -> float:
        t0 = time.monotonic()
        while not self.backfilled.wait(1):
            if self.proc.poll() is not None or time.monotonic() - t0 > timeout_s:
                raise SystemExit("the demo did not finish its backfill:\n" + "\n".join(self.output[-30:]))
        return time.monotonic() - t0

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def open_context(browser, url: str, range_key: str):
    """A new browser profile, logged in as the demo's owner, with the range picker set to ``range_key``."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="ko-KR")
    r = context.request.post(f"{url}/api/v1/auth/login", data=json.dumps({"username": DEMO_OWNER[0],
                                                                          "password": DEMO_OWNER[1]}),
                             headers={"Content-Type": "application/json", "Origin": url})
    if not r.ok:
        raise SystemExit(f"login as {DEMO_OWNER[0]} failed: {r.status} {r.text()[:300]}")
    context.add_init_script(f"sessionStorage.getItem('sf-range') || sessionStorage.setItem('sf-range', "
                            f"JSON.stringify({{key: '{range_key}'}}))")
    return context


def drawn_ms(page) -> float:
    page.wait_for_function(DRAWN, timeout=120_000)
    return float(page.evaluate("performance.now()"))


def switch_ms(page, button: str) -> float:
    """Click a range button; ms until the panels are drawn for the new range."""
    loaded = page.locator("[data-testid=machine-body]").get_attribute("data-loaded")
    page.evaluate("window.__t0 = performance.now()")
    page.get_by_role("button", name=button).click()
    page.wait_for_function("q => document.querySelector('[data-testid=machine-body]').dataset.loaded !== q",
                           arg=loaded, timeout=120_000)
    page.wait_for_function(DRAWN, timeout=120_000)
    return float(page.evaluate("performance.now() - window.__t0"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    date, machine, nproc = run_command(["date", "-u"], "?"), run_command(["uname", "-srm"], "?"), run_command(["nproc"], "?")
    chromium = run_command([CHROMIUM, "--version"], "chromium")
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench_page_"))
    demo = Demo(tmp / "demo-data", free_port())
    hash_ = f"#/machine/{TENANT}/{SITE}/{LINE}/{MACHINE}"
    try:
        backfill_s = demo.wait_backfilled(900)
        print(f"demo backfilled in {backfill_s:.0f} s", flush=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            # a user's browser is already running: its first page (renderer, fonts, a canvas) is drawn
            # before the measured one, on a page that asks the demo for nothing, so the API stays cold
            warmup = browser.new_context()
            warmup.new_page().set_content(WARMUP_PAGE)
            warmup.close()
            context = open_context(browser, demo.url, "30d")
            page = context.new_page()
            slow: list[tuple[float, str]] = []  # the cold view's API requests, by time to their answer
            began: list[tuple[float, float, str]] = []  # (start, end) in epoch ms of every request of the cold view
            page.on("requestfinished", lambda r: slow.append((r.timing["responseEnd"], r.url.split("?")[0]
                                                               .replace(demo.url, ""))) if "/api/" in r.url else None)
            page.on("requestfinished", lambda r: began.append((r.timing["startTime"], r.timing["responseEnd"],
                                                               r.url.replace(demo.url, "")[:90])))
            nav_ms = time.time() * 1000
            page.goto(f"{demo.url}/{hash_}")
            cold = drawn_ms(page)
            for start, took, u in sorted(began):
                print(f"  cold view request: +{start - nav_ms:6.0f} ms, {took:6.0f} ms  {u}", flush=True)
            cold_requests = sorted(slow, reverse=True)[:4]
            print("cold view's slowest API requests (ms):", cold_requests, flush=True)
            shown = page.locator("[data-testid=machine-counts] h3").inner_text()
            print(f"cold: {cold:.0f} ms ({shown})", flush=True)
            warm = []
            for _ in range(3):
                page.reload()
                warm.append(drawn_ms(page))
            print(f"warm (reload): {', '.join(f'{x:.0f}' for x in warm)} ms", flush=True)
            today = switch_ms(page, "오늘")
            month = switch_ms(page, "최근 30일")
            print(f"range switch: today {today:.0f} ms, then 30 days {month:.0f} ms", flush=True)
            page.screenshot(path=str(tmp / "machine-30d.png"), full_page=True)
            print(f"screenshot: {tmp / 'machine-30d.png'}", flush=True)
            context.close()
            other = open_context(browser, demo.url, "30d")
            page = other.new_page()
            page.goto(f"{demo.url}/{hash_}")
            fresh_browser = drawn_ms(page)
            print(f"new browser profile, warm API: {fresh_browser:.0f} ms", flush=True)
            other.close()
            browser.close()
            # for comparison: a browser started just now (its own start-up in the figure), the API warm
            launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = open_context(launched, demo.url, "30d").new_page()
            page.goto(f"{demo.url}/{hash_}")
            just_launched = drawn_ms(page)
            print(f"browser just launched, warm API: {just_launched:.0f} ms", flush=True)
            launched.close()
    finally:
        demo.stop()
    load_after = os.getloadavg()
    warm_med = statistics.median(warm)
    verdict = ("**met**" if max(cold, warm_med) < TARGET_MS else
               "**met** warm, **not met** cold" if warm_med < TARGET_MS else "**not met**")
    lines = [
        SECTION_TITLE, "",
        f"- date: {date}",
        f"- machine: {machine}, nproc {nproc}; {chromium} headless through Playwright, 1440x900; load average "
        f"(1/5/15 min) {'/'.join(f'{x:.1f}' for x in load_before)} before, "
        f"{'/'.join(f'{x:.1f}' for x in load_after)} after (shared machine)",
        f"- the demo: `smartfactory demo` (3 simulated presses, gateway, embedded broker, collector, SQLite, API, "
        f"28 days backfilled in {backfill_s:.0f} s while the live part runs); page `{hash_}` as `{DEMO_OWNER[0]}`, "
        "range '최근 30일' (30 days)",
        "- drawn: the live tile has its state, the range panels their data for the range, the state timeline its "
        "segments, every trend its chart; time = `performance.now()` then (since the navigation, or the click)",
        "",
        "| view | ms |",
        "|---|---:|",
        f"| cold: first view after the demo started (API caches empty; new browser profile in a running browser) "
        f"| {cold:.0f} |",
        f"| warm: the page reloaded (median of {', '.join(f'{x:.0f}' for x in warm)}) | {warm_med:.0f} |",
        f"| new browser profile, warm API | {fresh_browser:.0f} |",
        f"| range switch on the open page: to today | {today:.0f} |",
        f"| range switch on the open page: back to 30 days | {month:.0f} |",
        f"| for comparison: a browser launched just before the view (warm API) | {just_launched:.0f} |",
        "",
        "The cold view is what a user meets who opens the page in the browser they have running, right after "
        "the demo started: the browser had drawn one local page (Korean text and a canvas, nothing from the "
        "demo) before; the last row shows what a browser's own start adds to a view.",
        "",
        "Slowest API requests of the cold view (request start to last byte): " + "; ".join(
            f"`{u}` {ms:.0f} ms" for ms, u in cold_requests) + ".",
        "",
        f"Target: a machine page with a 30-day range renders in under {TARGET_MS:.0f} ms on the demo: {verdict} "
        "in this run.",
    ]
    publish(SECTION_TITLE, "\n".join(lines), write=not args.no_write)


if __name__ == "__main__":
    main()

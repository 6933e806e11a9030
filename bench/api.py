"""API latency: p95 of the dashboard's data endpoints at 50 concurrent clients.

Against a real ``smartfactory api`` process tree (uvicorn with 1, then 2 workers) over a SQLite
store holding 30 days of 10 machines (two tenants, two lines), with the plant model in SQLite.
50 concurrent connections, driven by wrk (Debian package ``wrk``), each authenticated with
its tenant owner's API token, call one scenario's endpoints in a closed loop for a fixed time;
the baseline is /health under the same load in the same run, so the ratio says what the
dashboard's work costs on top of serving any request at all.

Run: /tmp/sfvenv/bin/python bench/api.py [--quick]   (writes its section of bench/RESULTS.md)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plantmodel.admin import PlantSeed, apply_seed, create_token  # noqa: E402
from plantmodel.db import open_plant  # noqa: E402
from plant import MachineRef  # noqa: E402
from tsstore import Point  # noqa: E402
from tsstore.sqlite import SqliteStore  # noqa: E402

from bench.results import RESULTS_PATH, update_section  # noqa: E402

SECTION_TITLE = "## API: dashboard endpoints at 50 concurrent clients (bench/api.py)"
CLIENTS = 50
TAGS = ("state", "good_count", "scrap_count", "press_force", "material_input")
LINES = [("bench-a", "site-1", "line-1"), ("bench-b", "site-1", "line-1")]
MACHINES_PER_LINE = 5
TARGET_P95_MS = 100.0
CYCLE_S = 14  # idle 2, loading 6, processing 4, unloading 2


def machines() -> list[MachineRef]:
    return [MachineRef(t, s, ln, f"press-{i + 1}") for t, s, ln in LINES for i in range(MACHINES_PER_LINE)]


def timestamps(now_ms: int, days: int) -> np.ndarray:
    """One sample every 10 s for the older days, every second for the last 24 h (what dashboards read)."""
    day = 86_400_000
    old = np.arange(now_ms - days * day, now_ms - day, 10_000, dtype=np.int64)
    recent = np.arange(now_ms - day, now_ms, 1000, dtype=np.int64)
    return np.concatenate([old, recent])


def signals(ts: np.ndarray, offset_s: int) -> dict[str, np.ndarray]:
    t = ts // 1000 + offset_s
    phase = t % CYCLE_S
    state = np.select([phase < 2, phase < 8, phase < 12], [0, 1, 2], default=3)
    cycles = t // CYCLE_S
    rng = np.random.default_rng(offset_s)
    force = np.where(state == 2, 800 + rng.normal(0, 12, ts.size), 0.0)
    return {"state": state.astype(float), "good_count": ((cycles - cycles // 33) % 65536).astype(float),
            "scrap_count": ((cycles // 33) % 65536).astype(float), "press_force": force,
            "material_input": (state == 1).astype(float)}


def build_store(path: Path, now_ms: int, days: int) -> int:
    """Fill the store's own schema in bulk (the collector's write path is benchmarked elsewhere)."""
    store = SqliteStore(path)
    ms = machines()
    store.write([Point(m, now_ms - days * 86_400_000 - 1000, {t: 0.0 for t in TAGS}) for m in ms])  # series ids
    store.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    ids = {(r[0], r[1], r[2], r[3], r[4]): r[5] for r in
           db.execute("SELECT tenant, site, line, machine, tag, id FROM series")}
    ts = timestamps(now_ms, days)
    rows = 0
    for k, m in enumerate(ms):
        sig = signals(ts, offset_s=k * 3)
        for tag in TAGS:
            sid = ids[(m.tenant, m.site, m.line, m.machine, tag)]
            db.executemany("INSERT OR REPLACE INTO samples (series_id, ts, num, txt) VALUES (?, ?, ?, NULL)",
                           zip([sid] * ts.size, ts.tolist(), sig[tag].tolist()))
            rows += ts.size
        db.commit()
    db.execute("ANALYZE")
    db.close()
    return rows


def seed_plant(url: str) -> dict[str, str]:
    plant = open_plant(url)
    tenants = []
    for t, s, ln in LINES:
        tenants.append({"slug": t, "sites": [{"slug": s, "lines": [{
            "slug": ln, "shifts": [{"name": "day", "start": "06:00", "end": "18:00"},
                                   {"name": "night", "start": "18:00", "end": "06:00"}],
            "machines": [{"slug": f"press-{i + 1}", "ideal_cycle_s": 12.0, "alarms": [
                {"name": "fault > 60 s", "kind": "state_duration", "tag": "state", "state": 4, "duration_s": 60},
                {"name": "force > 840", "kind": "threshold", "tag": "press_force", "op": ">", "threshold": 840}]}
                for i in range(MACHINES_PER_LINE)]}]}]})
    apply_seed(plant, PlantSeed.model_validate({
        "tenants": tenants,
        "users": [{"username": f"owner-{t}", "password": "bench-password", "role": "sme_owner", "tenant": t}
                  for t, _, _ in LINES]}))
    tokens = {t: create_token(plant, f"owner-{t}", "bench") for t, _, _ in LINES}
    plant.close()
    return tokens


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WRK_SCRIPT = r"""
-- smartfactory bench: each request takes the next (token, path) pair given after '--'
local reqs, counter = {}, 0
init = function(args)
  for i = 1, #args, 2 do
    reqs[#reqs + 1] = wrk.format("GET", args[i + 1], {["Authorization"] = "Bearer " .. args[i]})
  end
end
request = function()
  counter = counter + 1
  return reqs[(counter % #reqs) + 1]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"n": %d, "non2xx": %d, "socket_errors": %d, "duration_us": %d, '
    .. '"p50": %.3f, "p95": %.3f, "p99": %.3f}\n', summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
    summary.duration, latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def load(url: str, paths: list[tuple[str, str]], seconds: float, clients: int, script: Path) -> dict:
    """``clients`` connections kept busy by wrk (C, one thread), cycling through the (token, path) pairs.

    wrk, not a Python client: a Python load generator took about a core of this 2-core
    machine away from the server it measured.
    """
    args = [a for token, path in paths for a in (token, path)]
    out = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script), url,
                          "--", *args], capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    r = json.loads(line.removeprefix("RESULT "))
    r["rps"] = r["n"] / (r["duration_us"] / 1e6)
    r["errors"] = {k: r[k] for k in ("non2xx", "socket_errors") if r[k]}
    return r


def machine_info() -> dict:
    def cmd(args: list[str], fallback: str) -> str:
        try:
            return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return fallback

    import fastapi
    import sqlalchemy
    import uvicorn

    return {"date": cmd(["date", "-u"], time.strftime("%c UTC", time.gmtime())),
            "machine": cmd(["uname", "-srm"], platform.platform()), "nproc": cmd(["nproc"], str(os.cpu_count())),
            "python": platform.python_version(),
            "libs": f"fastapi {fastapi.__version__}, uvicorn {uvicorn.__version__}, SQLAlchemy {sqlalchemy.__version__}, "
                    f"SQLite {sqlite3.sqlite_version}, httpx {httpx.__version__}"}


def update_results(section: str) -> None:
    update_section(SECTION_TITLE, section)


def start_server(tmp: Path, port: int, workers: int) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "--log-level", "WARNING", "api", "-c",
                               str(tmp / "smartfactory.yaml"), "--port", str(port), "--workers", str(workers)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(tmp / f"api-{workers}.log", "w"),
                              start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit(f"API did not start: {(tmp / f'api-{workers}.log').read_text()[-2000:]}")
        time.sleep(0.2)


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 days instead of 30, 5 s per endpoint instead of 20")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    args = parser.parse_args()
    if subprocess.run(["sh", "-c", "command -v wrk"], capture_output=True).returncode:
        raise SystemExit("bench/api.py drives the load with wrk: sudo apt-get install -y wrk")
    days, seconds = (3, 5.0) if args.quick else (30, 20.0)
    info = machine_info()
    print(f"{info['date']} | {info['machine']} | nproc {info['nproc']} | Python {info['python']} | {info['libs']}")
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench_api_"))
    script = tmp / "bench.lua"
    script.write_text(WRK_SCRIPT)
    now_ms = int(time.time() * 1000)
    t0 = time.perf_counter()
    rows = build_store(tmp / "telemetry.db", now_ms, days)
    build_s = time.perf_counter() - t0
    print(f"store: {rows:,} samples ({days} days x {len(machines())} machines x {len(TAGS)} tags) in {build_s:.0f} s, "
          f"{(tmp / 'telemetry.db').stat().st_size / 1e6:.0f} MB")
    tokens = seed_plant(f"sqlite:///{tmp / 'plant.db'}")
    (tmp / "smartfactory.yaml").write_text(yaml.safe_dump({
        "store": {"kind": "sqlite", "path": "telemetry.db"},
        "api": {"host": "127.0.0.1", "database_url": "sqlite:///plant.db"}}))
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_ms / 1000))
    hour_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_ms / 1000 - 3600))
    day_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_ms / 1000 - 86400))
    per_line = [(tokens[t], f"/api/v1/lines/{t}/{s}/{ln}") for t, s, ln in LINES]
    per_machine = [(tokens[m.tenant], f"/api/v1/machines/{m.tenant}/{m.site}/{m.line}/{m.machine}")
                   for m in machines()]
    per_machine_history = [(tokens[m.tenant], f"/api/v1/history/{m.tenant}/{m.site}/{m.line}/{m.machine}")
                           for m in machines()]
    month_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_ms / 1000 - days * 86400))
    page = ([(tok, p + "/dashboard") for tok, p in per_line] + [(tokens[t], f"/api/v1/alarms/{t}") for t, _, _ in LINES]
            + [(tokens[LINES[0][0]], "/api/v1/me"), (tokens[LINES[1][0]], "/api/v1/tenants")])
    scenarios = [  # (name, pairs, what the dashboard page calls)
        ("baseline: GET /health", [(tokens[LINES[0][0]], "/health")], False),
        ("line dashboard snapshot (tiles, counts, shift OEE, input trend, alarms)",
         [(tok, p + "/dashboard") for tok, p in per_line], True),
        ("active alarms of the tenant", [(tokens[t], f"/api/v1/alarms/{t}") for t, _, _ in LINES], True),
        ("mixed: what an open dashboard page loads (snapshot, alarms, me, tenants)", page, True),
        ("latest values of a machine (API)", [(tok, p + "/latest") for tok, p in per_machine], False),
        ("trend: 1 h of press_force at 1 min (API)",
         [(tok, p + f"/history?tag=press_force&every=1m&start={hour_ago}&end={end}") for tok, p in per_machine], False),
        ("trend: 24 h of press_force at 10 min (API)",
         [(tok, p + f"/history?tag=press_force&every=10m&start={day_ago}&end={end}") for tok, p in per_machine], False),
        # the machine page and the range picker (api/routers/history.py): rollups for states and counters,
        # settled trend buckets kept per worker
        (f"machine page, {days} days: timeline, KPIs, counts, Pareto, alarms",
         [(tok, p + f"?start={month_ago}&end={end}") for tok, p in per_machine_history], True),
        (f"machine page, {days} days: press_force trend",
         [(tok, p + f"/trend?tag=press_force&start={month_ago}&end={end}") for tok, p in per_machine_history], True),
        (f"line range panels, {days} days", [(tokens[t], f"/api/v1/history/{t}/{s}/{ln}?start={month_ago}&end={end}")
                                             for t, s, ln in LINES], True),
    ]
    runs: dict[int, list[dict]] = {}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    for workers in (1, 2):
        server = start_server(tmp, port, workers)
        try:
            load(url, scenarios[1][1], 2.0, 10, script)  # warm-up: imports, caches, connections in every worker
            # the machine pages once each, in turn: what the rollup maintainer would have tallied already
            for tok, p in per_machine_history:
                httpx.get(f"{url}{p}?start={month_ago}&end={end}", headers={"Authorization": f"Bearer {tok}"}, timeout=300)
            runs[workers] = []
            for name, paths, _ in scenarios:
                res = load(url, paths, seconds, CLIENTS, script)
                runs[workers].append(res)
                print(f"{workers} worker(s) {name:74s} n={res['n']:6d} {res['rps']:6.0f}/s p50 {res['p50']:6.1f} "
                      f"p95 {res['p95']:6.1f} p99 {res['p99']:6.1f} ms errors={res['errors']}", flush=True)
        finally:
            stop_server(server)
    # what a snapshot with a full read of its window costs (first view of a line, then every 5 minutes)
    from analytics.settings import AnalyticsSettings
    from api.live import build_snapshot, load_line
    from plantmodel.policy import effective_settings
    plant = open_plant(f"sqlite:///{tmp / 'plant.db'}")
    store = SqliteStore(tmp / "telemetry.db")
    model = load_line(plant, *LINES[0])
    policy = effective_settings(AnalyticsSettings(), plant).policy(model.tenant).model_copy(update={"stale_s": 10.0})
    times = []
    for _ in range(5):
        t1 = time.perf_counter()
        build_snapshot(model, store, [], int(time.time() * 1000), policy)
        times.append((time.perf_counter() - t1) * 1000)
    uncached_ms = float(np.median(times))
    print(f"one uncached line snapshot ({MACHINES_PER_LINE} machines), median of 5: {uncached_ms:.0f} ms")

    load_after = os.getloadavg()
    lines = [
        SECTION_TITLE, "",
        f"- date: {info['date']}",
        f"- machine: {info['machine']}, nproc {info['nproc']}, Python {info['python']}; load average (1/5/15 min) "
        f"{'/'.join(f'{x:.1f}' for x in load_before)} before, {'/'.join(f'{x:.1f}' for x in load_after)} after "
        "(the machine is shared)",
        f"- libraries: {info['libs']}; load generator: wrk 4.1 (one thread)",
        f"- store: SQLite (`tsstore.sqlite`), {rows:,} samples: {days} days x {len(machines())} machines "
        f"({len(LINES)} tenants, one line of {MACHINES_PER_LINE} presses each) x {len(TAGS)} tags; one sample every "
        "10 s for the older days and every second for the last 24 h (what the dashboards read), built in "
        f"{build_s:.0f} s. Plant model and tokens in SQLite.",
        f"- server: `smartfactory api --workers N` (uvicorn; the alarm engine and the rollup maintainer in the leader "
        f"worker only) on loopback. Load: {CLIENTS} concurrent connections, each sending its next request as soon as "
        f"the previous one is answered (closed loop, no think time: the heaviest load 50 clients can make), cycling "
        f"through the tenants' owner tokens and the scenario's paths; {seconds:.0f} s per scenario after a 2 s warm-up, "
        "on the same 2 cores as the server",
        "- the dashboard snapshot is computed at most twice a second per line, serialised once and shared by every "
        "viewer of the line (`api.live.SnapshotCache`, per worker); in between, machines are topped up from their "
        f"newest values. A snapshot with a full read of its window (a line's first view, then every 5 minutes) costs "
        f"{uncached_ms:.0f} ms (median of 5, in-process); meanwhile viewers get the previous snapshot",
        "",
        f"| endpoint | dashboard page uses it | 1 worker: req/s | p50 ms | p95 ms | 2 workers: req/s | p50 ms | p95 ms "
        f"| p99 ms | p95 / baseline p95 (2 workers) | p95 < {TARGET_P95_MS:.0f} ms (2 workers) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    base = runs[2][0]["p95"]
    for k, (name, _, dash) in enumerate(scenarios):
        one, two = runs[1][k], runs[2][k]
        err = "".join(f" (errors, {w} worker(s): {r['errors']})" for w, r in ((1, one), (2, two)) if r["errors"])
        ok = "yes" if two["p95"] < TARGET_P95_MS else "**no**"
        lines.append(f"| {name}{err} | {'yes' if dash else 'no'} | {one['rps']:.0f} | {one['p50']:.1f} | {one['p95']:.1f} "
                     f"| {two['rps']:.0f} | {two['p50']:.1f} | {two['p95']:.1f} | {two['p99']:.1f} "
                     f"| {two['p95'] / base:.1f} | {ok} |")
    dash_rows = [(name, runs[2][k]) for k, (name, _, dash) in enumerate(scenarios) if dash]
    met = all(r["p95"] < TARGET_P95_MS for _, r in dash_rows)
    lines += ["", f"Target p95 < {TARGET_P95_MS:.0f} ms at {CLIENTS} concurrent clients for the dashboard's data "
              "endpoints: " + ("**met** by each of them with 2 workers in this run." if met else
                               "**not met** by: " + ", ".join(n for n, r in dash_rows if r["p95"] >= TARGET_P95_MS) + ".")
              + " With no think time the latency is mostly queueing (mean ≈ clients / throughput), so throughput per "
              "core is what moves p95; the second worker uses the second core. The API-only rows (no dashboard uses "
              "them) show what scripts pay: a trend is a range aggregation in the store per request, not cached.", ""]
    section = "\n".join(lines)
    print()
    print(section)
    if not args.no_write:
        update_results(section)
        print(f"updated {RESULTS_PATH.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

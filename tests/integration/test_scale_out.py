"""Scale-out on one machine: every part a real process, loopback only (issue 16's multi-host test).

One PostgreSQL plant database, two influxd shards (tenant ``bravo`` on ``east``, every other
tenant on the default ``west``), one mosquitto, two ``smartfactory collector`` processes in one
shared-subscription group, and two ``smartfactory api`` processes with working directories of
their own (their own config file, logs and lock-file path; nothing on disk in common). A
publisher sends, in the wire format, 15 days of a synthetic press line for two machines of each
tenant, ending at the newest hour the rollup cache may keep (``settle_ms`` before now).

- (a) every value is in its tenant's shard, counted exactly, and none in the other;
- (b) both collectors took part of the load (the broker split the shared subscription);
- (c) the first API process leads and tallies the history; SIGKILL of it hands leadership to the
  other, whose maintainer tallies the last hours published after the kill. Each machine's
  rollup rows then cover every hour from its first data to its last, once, and each row equals
  a recomputation from the raw data in its shard;
- (d) the centre overview and a before/after report answered by each API process (the killed
  one restarted, as a standby) equal those of a single-node run: one API process on a SQLite
  plant database and a SQLite store holding the same samples.
"""

from __future__ import annotations

import math
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import yaml
from sqlalchemy import create_engine, select

from analytics.rollup import _key, _pack, machine_buckets
from analytics.rollup_pg import BUCKETS
from analytics.settings import AnalyticsSettings
from analytics.synthetic import LineSpec, generate
from plant import MachineRef
from plantmodel.admin import PlantSeed, apply_seed, create_token
from plantmodel.db import open_plant
from tests.integration.collector_helpers import publish_samples, samples_of
from tests.processes import ApiProcess, CollectorProcess
from tests.waiting import wait_until
from tsstore.influx import InfluxStore
from tsstore.sqlite import SqliteStore
from tests.servers import require_psycopg

require_psycopg()

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000
SETTLE_MS = 2 * HOUR_MS  # the rollup cache keeps an hour once it ended this long ago (analytics.rollup)
ZONE = ZoneInfo("Asia/Seoul")
MACHINES = [MachineRef("acme", "plant-1", "line-a", "press-1"), MachineRef("acme", "plant-1", "line-a", "press-2"),
            MachineRef("bravo", "busan-1", "line-b", "cnc-1")]
LINES = [MACHINES[0], MACHINES[2]]  # a machine of each line (one line per tenant)
SHARD_OF = {"acme": "west", "bravo": "east"}
TAGS = ("state", "material_input", "good_count", "scrap_count", "energy_wh")
DAYS = 16  # generated from 15 local days ago to the end of today; cut at the newest settled hour


def _analytics(rollout: date) -> dict:
    return {"default": {"default_ideal_cycle_s": 30},
            "rollouts": [{"tenant": m.tenant, "line": m.line, "date": rollout.isoformat(), "commissioning_days": 0,
                          "days": 7} for m in LINES],
            # the 12 hours published after the kill lie beyond the quick recheck (the last 2 h): they reach the
            # rollups with each machine's full recheck, here once a minute (the shortest period allowed)
            "rollup_interval_s": 10, "rollup_full_recheck_s": 60}


def _seed() -> PlantSeed:
    tenants: dict[str, dict] = {}
    for m in MACHINES:
        t = tenants.setdefault(m.tenant, {"slug": m.tenant, "name": f"{m.tenant} 정밀", "timezone": "Asia/Seoul",
                                          "sites": [{"slug": m.site, "lines": [{"slug": m.line, "machines": []}]}]})
        t["sites"][0]["lines"][0]["machines"].append({"slug": m.machine})
    return PlantSeed.model_validate({"tenants": list(tenants.values()), "users": [
        {"username": "engineer", "password": "engineer-password-1", "role": "centre_engineer"}]})


def _count(store, machine: MachineRef, tag: str, start: int, end: int) -> int:
    """How many raw values of ``tag`` the store holds (a count per day, summed: not every point fetched)."""
    return int(sum(n for _, n in store.history(machine, tag, start, end, 86_400_000, "count")))


def test_two_api_hosts_two_collectors_two_shards_equal_one_node(postgres, influxd_shards, mosquitto, tmp_path):
    now_ms = int(time.time() * 1000)
    final_ms = (now_ms - SETTLE_MS) // HOUR_MS * HOUR_MS  # the newest hour the cache may keep starts before this
    cut_ms = final_ms - 12 * HOUR_MS  # published after the leader's SIGKILL: [cut, final)
    today = datetime.fromtimestamp(now_ms / 1000, ZONE).date()
    first_day, rollout = today - timedelta(days=DAYS - 1), today - timedelta(days=8)
    # baseline [rollout - 7, rollout) and post [rollout, rollout + 7): whole local days, all before the cut
    assert int(datetime.combine(rollout + timedelta(days=7), datetime.min.time(), ZONE).timestamp() * 1000) <= cut_ms
    columns, _ = generate(MACHINES, first_day, DAYS, LineSpec(process_s=120.0), seed=16,
                          load_scale_after=(rollout, 0.6))
    data = {m: {tag: (ts[ts < final_ms], v[ts < final_ms]) for tag, (ts, v) in cols.items()}
            for m, cols in columns.items()}
    start_ms = min(int(c["state"][0][0]) for c in data.values())
    assert start_ms % HOUR_MS == 0  # local midnight in Seoul is a whole UTC hour: the first hour is whole

    database = "scale_out"
    url = postgres.create_database(database)
    plant = open_plant(url)
    apply_seed(plant, _seed())
    token = create_token(plant, "engineer", "test")
    plant.close()
    west, east = influxd_shards["west"], influxd_shards["east"]
    store_cfg = {"kind": "sharded", "default": "west", "tenants": {"bravo": "east"}, "shards": {
        "west": {"kind": "influxdb", "url": west.url, "database": "telemetry"},
        "east": {"kind": "influxdb", "url": east.url, "database": "telemetry"}}}
    analytics_cfg = _analytics(rollout)

    def host(name: str, **sections) -> Path:
        """A working directory of its own, with its own config file (a host of the deployment)."""
        workdir = tmp_path / name
        workdir.mkdir()
        config = workdir / "smartfactory.yaml"
        config.write_text(yaml.safe_dump({"store": store_cfg, "api": {"database_url": url}, **sections}))
        return config

    collectors = [CollectorProcess(host(name, mqtt={"url": mosquitto.url}, collector={
        "client_id": name, "shared_group": "collectors", "batch_interval_s": 0.2, "data_dir": "spool",
        "metrics_port": 0}), name) for name in ("collector-1", "collector-2")]
    api_section = {"database_url": url, "leader_lease_s": 4, "leader_retry_s": 0.5, "alarm_interval_s": 1,
                   "housekeeping_interval_s": 3600}
    apis = [ApiProcess(host(name, api=api_section, analytics=analytics_cfg), cwd=tmp_path / name)
            for name in ("api-a", "api-b")]
    a, b = apis

    # the single node: one API process, SQLite plant database and store, the same samples written directly
    single_dir = tmp_path / "single"
    single_dir.mkdir()
    single_cfg = single_dir / "smartfactory.yaml"
    single_cfg.write_text(yaml.safe_dump({"store": {"kind": "sqlite", "path": "store.db"},
                                          "api": {"database_url": "sqlite:///plant.db"},
                                          "analytics": {**analytics_cfg, "maintain_rollups": False}}))
    single_plant = open_plant(f"sqlite:///{single_dir / 'plant.db'}")
    apply_seed(single_plant, _seed())
    single_token = create_token(single_plant, "engineer", "test")
    single_plant.close()
    single_store = SqliteStore(single_dir / "store.db")
    for m, cols in data.items():
        single_store.write_columns(m, cols)
    single_store.close()
    single = ApiProcess(single_cfg, cwd=single_dir)

    # a long timeout: the recomputation below reads 15 days at once on a busy machine
    direct = {name: InfluxStore(s.url, "telemetry", timeout=120) for name, s in influxd_shards.items()}
    engine = create_engine(url)
    running: list[ApiProcess | CollectorProcess] = []
    try:
        running.append(single.launch())  # its start-up overlaps the publishing
        for c in collectors:
            running.append(c.start())

        def publish(lo: int, hi: int) -> int:
            sent = 0
            for m, cols in data.items():
                part = {tag: (ts[(ts >= lo) & (ts < hi)], v[(ts >= lo) & (ts < hi)]) for tag, (ts, v) in cols.items()}
                sent += publish_samples(mosquitto.port, m, samples_of(part))
            return sent

        def all_stored(hi: int) -> bool:
            return all(_count(direct[SHARD_OF[m.tenant]], m, tag, start_ms, final_ms)
                       == int((data[m][tag][0] < hi).sum()) for m in MACHINES for tag in TAGS)

        messages = publish(start_ms, cut_ms)
        wait_until(lambda: all_stored(cut_ms), 120, "the history before the cut stored in the shards")

        # (c) the first host leads and tallies the history into the rollup cache in PostgreSQL
        running.append(a.start())
        wait_until(lambda: a.count("leader_elected") == 1, 30, "host a to lead")
        running.append(b.start())
        wait_until(lambda: b.count("leader_standby") == 1, 30, "host b to stand by")
        wait_until(lambda: a.count("rollup_pass") >= 1, 90, "host a's first rollup pass")
        single.wait_up()
        assert b.count("leader_elected") == 0 and b.count("rollup_pass") == 0

        a.kill()  # SIGKILL of the leader host's process group: no clean-up runs
        wait_until(lambda: b.count("leader_elected") == 1, 30, "host b to take over leadership")
        # the killed host comes back (as a standby: b leads now) while b tallies what follows
        restarted = ApiProcess(a.config, cwd=a.cwd, log=a.log.with_name("api-restarted.log"))
        running.append(restarted.launch())
        messages += publish(cut_ms, final_ms)
        wait_until(lambda: all_stored(final_ms), 120, "the hours published after the kill stored in the shards")

        # (a) each value in its tenant's shard, exactly, and nothing of it in the other shard
        for m in MACHINES:
            home = SHARD_OF[m.tenant]
            other = "east" if home == "west" else "west"
            for tag in TAGS:
                assert _count(direct[home], m, tag, start_ms, final_ms) == len(data[m][tag][0]) > 1000, (m, tag)
                assert _count(direct[other], m, tag, start_ms, final_ms) == 0, (m, tag, other)
        assert direct["west"].machines() == [m for m in MACHINES if m.tenant == "acme"]
        assert direct["east"].machines() == [m for m in MACHINES if m.tenant == "bravo"]

        # (b) the broker split the shared subscription between the two collectors
        received = [c.metric("collector_messages_received_total") for c in collectors]
        assert all(r > 0 for r in received), f"both collectors took part: {received}"
        assert sum(received) >= messages  # at least once: a redelivery may count twice, never zero times

        # (c) the new leader's maintainer tallied the hours published after the kill, every hour once
        settings = AnalyticsSettings.model_validate(analytics_cfg)
        hours = list(range(start_ms, final_ms, HOUR_MS))

        def rows(m: MachineRef) -> dict[int, np.ndarray]:
            with engine.connect() as c:
                got = c.execute(select(BUCKETS.c.shape, BUCKETS.c.bucket, BUCKETS.c.v).where(
                    BUCKETS.c.machine == _key(m))).all()
            assert len({shape for shape, _, _ in got}) == 1, "one row shape per machine"
            return {int(bucket): np.frombuffer(v, dtype=np.float64) for _, bucket, v in got}

        truth = {}
        for m in MACHINES:
            policy = settings.policy(m.tenant)
            raw = machine_buckets(direct[SHARD_OF[m.tenant]], m, policy, start_ms, final_ms)
            codes = [s.code for s in policy.states]
            truth[m] = {h: _pack(raw, j, codes) for j, h in enumerate(hours)}

        def tallied_once_each(m: MachineRef) -> bool:
            have = rows(m)
            return sorted(have) == hours and all(np.array_equal(have[h], truth[m][h], equal_nan=True) for h in hours)

        wait_until(lambda: all(tallied_once_each(m) for m in MACHINES), 240,
                   "the new leader's rollups of every hour equal to a recomputation from the raw data")
        assert b.count("rollup_pass") >= 1
        assert all(int(data[m]["state"][0][-1]) >= final_ms - HOUR_MS for m in MACHINES)  # the last hour has data
        for m in MACHINES:  # the counters' increments over the rows are the raw counter's, neither lost nor doubled
            good = data[m]["good_count"][1]
            assert sum(float(rows(m)[h][2 * len(codes)]) for h in hours) == float(good[-1] - good[0]) > 0

        # (d) both hosts answer as the single node does
        restarted.wait_up()
        wait_until(lambda: restarted.count("leader_standby") == 1, 30, "the restarted host to stand by")
        answers = {}
        for name, proc, tok in (("b", b, token), ("a", restarted, token), ("single", single, single_token)):
            with proc.client(tok, timeout=120) as client:
                overview = client.get("/api/v1/centre/overview")
                assert overview.status_code == 200, overview.text
                reports = {}
                for m in LINES:
                    r = client.get(f"/api/v1/reports/{m.tenant}/{m.site}/{m.line}/before-after",
                                   params={"replicates": 500})
                    assert r.status_code == 200, r.text
                    reports[m.tenant] = r.json()
                answers[name] = (overview.json()["tenants"], reports)
        assert restarted.count("leader_elected") == 0  # one leader: b
        # the reports read the maintainer's rows: they added no rows of another shape (cli/apiserver.py)
        assert all(rows(m) for m in MACHINES)

        expected_overview, expected_reports = answers["single"]
        assert [t["tenant"] for t in expected_overview] == ["acme", "bravo"]
        assert [t["machines"] for t in expected_overview] == [2, 1]
        assert all(t["coverage_24h"] > 0.5 for t in expected_overview)
        for tenant, report in expected_reports.items():
            kpis = {k["key"]: k for k in report["kpis"]}
            assert report["windows"]["rollout"] == rollout.isoformat() and report["windows"]["days_each"] == 7
            assert kpis["material_input_s"]["after"] < kpis["material_input_s"]["before"], tenant  # loading x 0.6
        for name in ("a", "b"):
            got_overview, got_reports = answers[name]
            assert _without_coverage(got_overview) == _without_coverage(expected_overview), name
            for got, want in zip(got_overview, expected_overview):
                # the window is the 24 h before now to the minute: answers a minute apart differ by 1/1440
                assert math.isclose(got["coverage_24h"], want["coverage_24h"], rel_tol=1 / 1440, abs_tol=1e-4), name
            assert _comparable(got_reports) == _comparable(expected_reports), name
    finally:
        for p in reversed(running):
            p.stop()
        for s in direct.values():
            s.close()
        engine.dispose()


def _without_coverage(tenants: list[dict]) -> list[dict]:
    return [{k: v for k, v in t.items() if k != "coverage_24h"} for t in tenants]


def _comparable(reports: dict) -> dict:
    """The reports without when and where they were made."""
    return {t: {k: v for k, v in r.items() if k not in ("generated_at", "elapsed_s")}
            for t, r in reports.items()}

"""The machine page's and the range picker's history endpoints (api/routers/history.py).

Real SQLite store and plant model; the rollup cache is the one the reports use, so the test
can tell that a repeated range is read from it rather than recomputed from the store.
"""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from analytics.rollup import RollupCache
from api.app import create_app
from api.routers.history import ANSWERS, DAY, HOUR, MINUTE, Answers, dominant_segments, nice_step, window
from api.services import services_of
from api.settings import ApiSettings
from plant import MachineRef
from plantmodel.admin import PlantSeed, apply_seed
from plantmodel.db import open_plant
from tsstore import Point
from tsstore.sqlite import SqliteStore

M = MachineRef("acme", "a-site", "a-line", "press-1")
PASSWORD = "correct-horse-1"
T0 = 1_795_000_000_000 // DAY * DAY  # a UTC midnight (09:00 in Seoul)


def iso(ms: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("history")
    plant = open_plant(f"sqlite:///{tmp / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({
        "tenants": [{"slug": "acme", "name": "에이크미", "sites": [{"slug": "a-site", "lines": [
            {"slug": "a-line", "name": "프레스 1라인", "shifts": [{"name": "all", "start": "00:00", "end": "00:00"}],
             "machines": [{"slug": "press-1", "name": "프레스 1호기", "ideal_cycle_s": 10}]}]}]},
            {"slug": "bravo", "sites": [{"slug": "b-site", "lines": [
                {"slug": "b-line", "machines": [{"slug": "press-1", "ideal_cycle_s": 10}]}]}]}],
        "users": [{"username": "owner-a", "password": PASSWORD, "role": "sme_owner", "tenant": "acme"}],
    }))
    store = SqliteStore(tmp / "store.db")
    # two hours processing (a part every 10 s, force rising), then one hour in fault
    pts = []
    for i in range(0, 3 * 360):
        ts = T0 + i * 10_000
        faulted = i >= 720
        pts.append(Point(M, ts, {"state": 4 if faulted else 2, "good_count": min(i, 720), "scrap_count": 0,
                                 "press_force": 800.0 + (i % 10)}))
    store.write(pts)
    cache = RollupCache(tmp / "rollups.db", settle_ms=0)
    app = create_app(store, ApiSettings(), plant, run_alarms=False, rollup_cache=cache)
    c = TestClient(app)
    assert c.post("/api/v1/auth/login", json={"username": "owner-a", "password": PASSWORD}).status_code == 200
    c.cache = cache
    return c


def test_nice_step_gives_round_buckets_within_the_point_budget():
    assert nice_step(DAY, 600) == 5 * MINUTE  # 288 buckets
    assert nice_step(30 * DAY, 600) == 2 * HOUR  # 360
    assert nice_step(60_000, 600) == 1000
    assert 400 * DAY // nice_step(400 * DAY, 600) <= 600


def test_dominant_segments_merge_runs_and_mark_gaps():
    held = {0: {2: 50}, 60: {2: 60}, 120: {4: 10}, 180: {4: 40, 2: 20}}
    segs = dominant_segments([0, 60, 120, 180], held, 60, 0, 240)
    assert segs == [{"start_ms": 0, "end_ms": 120, "state": 2}, {"start_ms": 120, "end_ms": 180, "state": None},
                    {"start_ms": 180, "end_ms": 240, "state": 4}]


def test_machine_history_gives_timeline_counts_pareto_and_names(client):
    r = client.get(f"/api/v1/history/acme/a-site/a-line/press-1?start={iso(T0)}&end={iso(T0 + 3 * HOUR)}")
    assert r.status_code == 200, r.text
    h = r.json()
    assert h["name"] == "프레스 1호기" and h["line_name"] == "프레스 1라인"
    segs = [(s["state"], s["end_ms"] - s["start_ms"]) for s in h["timeline"]["segments"]]
    assert segs[0] == (2, 2 * HOUR) and segs[-1][0] == 4
    assert h["counts"]["good"] == 720 and len(h["counts"]["series"]) == 3
    assert h["pareto"][0]["code"] == 4 and h["pareto"][0]["hours"] == pytest.approx(1.0, abs=0.01)
    assert h["kpis"]["availability"] == pytest.approx(2 / 3, abs=0.01)
    assert h["kpis"]["scrap_rate"] == 0.0
    assert "press_force" in h["tags"]


def test_a_long_range_is_read_from_the_rollups(client):
    """The second time a settled range is asked for, its hours come from the cache, not the store."""
    q = f"start={iso(T0 - 29 * DAY)}&end={iso(T0 + DAY)}"
    first = client.get(f"/api/v1/history/acme/a-site/a-line/press-1?{q}")
    assert first.status_code == 200
    hits = client.cache.hits
    ANSWERS._entries.clear()  # past the shared answer and the machine's 15 s tallies, down to the rollups
    services_of(client.app).range_tails.drop_where(lambda key: True)
    again = client.get(f"/api/v1/history/acme/a-site/a-line/press-1?{q}").json()
    assert client.cache.hits - hits >= 3  # the three hours with data
    assert again["timeline"]["step_ms"] == HOUR and again["counts"]["every_ms"] == DAY
    assert again["counts"]["good"] == 720
    # days are the tenant's (Asia/Seoul): T0 is 09:00 there, so the three hours fall on the day that began at T0 - 9 h
    days = [p for p in again["counts"]["series"] if p["good"]]
    assert [p["ts"] for p in days] == [T0 - 9 * HOUR] and days[0]["good"] == 720


def test_trend_has_axes_worth_of_points(client):
    r = client.get(f"/api/v1/history/acme/a-site/a-line/press-1/trend?tag=press_force&start={iso(T0)}"
                   f"&end={iso(T0 + 3 * HOUR)}")
    assert r.status_code == 200
    t = r.json()
    assert t["every_ms"] == 30_000 and len(t["points"]) == 360
    assert all(p["min"] <= p["mean"] <= p["max"] for p in t["points"])


def test_trends_give_every_numeric_tag_but_state_and_counters_in_one_answer_as_trend_does(client):
    q = f"start={iso(T0)}&end={iso(T0 + 3 * HOUR)}"
    r = client.get(f"/api/v1/history/acme/a-site/a-line/press-1/trends?{q}")
    assert r.status_code == 200
    t = r.json()
    assert [x["tag"] for x in t["trends"]] == ["press_force"]  # state, good_count and scrap_count are left out
    one = client.get(f"/api/v1/history/acme/a-site/a-line/press-1/trend?tag=press_force&{q}").json()
    assert t["every_ms"] == one["every_ms"] == 30_000 and t["trends"][0]["points"] == one["points"]
    assert client.get(f"/api/v1/history/bravo/b-site/b-line/press-1/trends?{q}").status_code == 404  # hidden
    assert client.get(f"/api/v1/history/acme/a-site/a-line/nope/trends?{q}").status_code == 404


def test_line_history_pools_the_machines(client):
    h = client.get(f"/api/v1/history/acme/a-site/a-line?start={iso(T0)}&end={iso(T0 + 3 * HOUR)}").json()
    assert h["name"] == "프레스 1라인" and [m["name"] for m in h["machines"]] == ["프레스 1호기"]
    assert h["counts"]["good"] == 720
    # per hour: the first reading (0) is the baseline, so hour one counts 359; the reading 720 falls in hour three
    assert [p["good"] for p in h["counts"]["series"]] == [359, 360, 1]
    assert [p["input_s"] for p in h["counts"]["series"]] == [0.0, 0.0, 0.0]  # no material-input signal written


@pytest.mark.parametrize("query, words", [
    (f"start={iso(T0)}&end={iso(T0)}", "must be before end"),
    (f"start={iso(T0 - 401 * DAY)}&end={iso(T0)}", "at most 400 days"),
    ("start=yesterday", "datetime"),
])
def test_bad_ranges_are_422_with_the_fix(client, query, words):
    r = client.get(f"/api/v1/history/acme/a-site/a-line/press-1?{query}")
    assert r.status_code == 422 and words in r.text


def test_unknown_machine_is_404_and_other_tenants_are_hidden(client):
    assert client.get("/api/v1/history/acme/a-site/a-line/press-9").status_code == 404
    assert client.get("/api/v1/history/bravo/b-site/b-line/press-1").status_code == 404


def test_glossary_serves_the_report_labels(client):
    g = TestClient(client.app).get("/api/v1/glossary").json()  # no login needed
    assert g["ko"]["availability"] == "시간가동률" and g["ko"]["performance"] == "성능가동률"
    assert g["ko"]["quality"] == "양품률" and g["en"]["scrap_rate"] == "In-process defect rate"


def test_trend_cache_reads_only_the_newest_buckets_again(tmp_path):
    """Settled buckets come from the cache; the tail and anything after the ttl come from the store."""
    from api.routers.history import TrendCache

    store = SqliteStore(tmp_path / "s.db")
    store.write([Point(M, T0 + i * 60_000, {"force": float(i)}) for i in range(6 * 60)])
    calls = []
    real = store.value_buckets

    def counting(ref, tag, a, z, every):
        calls.append((a, z))
        return real(ref, tag, a, z, every)

    store.value_buckets = counting  # type: ignore[method-assign]
    cache = TrendCache(settle_ms=HOUR)
    now = T0 + 6 * HOUR
    first = cache.points(store, M, "force", T0, now, 30 * MINUTE, now)
    assert [p["ts"] for p in first] == [T0 + k * 30 * MINUTE for k in range(12)]
    assert first[0]["min"] == 0.0 and first[0]["max"] == 29.0
    calls.clear()
    again = cache.points(store, M, "force", T0, now, 30 * MINUTE, now)
    assert again == first
    assert calls and all(a >= now - HOUR for a, _ in calls)  # only the unsettled last hour was read
    cache.ttl_s = 0  # expired: read it all again (late history is picked up)
    calls.clear()
    assert cache.points(store, M, "force", T0, now, 30 * MINUTE, now) == first
    assert any(a == T0 for a, _ in calls)


def test_viewers_of_the_same_range_share_one_computation():
    """Concurrent callers with one key await one computation; a later key computes anew."""
    import threading

    answers, calls, gate = Answers(ttl_s=60), [], threading.Event()

    def compute():
        calls.append(1)
        gate.wait(5)
        return {"n": len(calls)}

    async def viewers():
        waiting = [asyncio.ensure_future(answers.get(("k",), compute)) for _ in range(8)]
        await asyncio.sleep(0)
        gate.set()
        return await asyncio.gather(*waiting), await answers.get(("other",), compute)

    out, other = asyncio.run(viewers())
    assert len(calls) == 2 and out == [b'{"n":1}'] * 8
    assert other == b'{"n":2}'


def test_a_live_range_serves_the_previous_half_minute_while_the_next_is_computed():
    """A range ending now moves to a new key every 30 s: its last answer stands in, and one refresh runs."""
    import threading

    answers, gate = Answers(ttl_s=60), threading.Event()

    def slow():
        gate.wait(5)
        return {"v": "new"}

    async def run():
        first = await answers.get(("k", 30_000), lambda: {"v": "old"})
        served = await answers.get(("k", 60_000), slow, live=True)
        gate.set()
        # without a stand-in, a caller joins the refresh that is running (or finds its answer)
        return first, served, await answers.get(("k", 60_000), lambda: {"v": "a second computation"})

    first, served, later = asyncio.run(run())
    assert first == served == b'{"v":"old"}'
    assert later == b'{"v":"new"}'


def test_a_live_range_nobody_viewed_for_minutes_is_served_its_last_answer_while_recomputed():
    """Reopened three quanta later, the page gets the answer of minutes ago at once (under stale_s), the
    refresh runs, and the next caller has the new one; a fixed range never borrows another end's answer."""
    import threading

    answers, gate = Answers(ttl_s=60), threading.Event()

    def slow():
        gate.wait(5)
        return {"v": "new"}

    async def run():
        await answers.get(("k", 0, 30_000), lambda: {"v": "old"})
        served = await answers.get(("k", 0, 120_000), slow, live=True)
        fixed = await answers.get(("k", 0, 150_000), lambda: {"v": "own"})  # not live: computed, not borrowed
        gate.set()
        return served, fixed, await answers.get(("k", 0, 120_000), lambda: {"v": "a second computation"})

    served, fixed, later = asyncio.run(run())
    assert served == b'{"v":"old"}' and fixed == b'{"v":"own"}'
    assert later == b'{"v":"new"}'


def test_a_live_stand_in_older_than_stale_s_is_not_served():
    answers = Answers(ttl_s=60, stale_s=0.0)

    async def run():
        await answers.get(("k", 0, 30_000), lambda: {"v": "old"})
        return await answers.get(("k", 0, 60_000), lambda: {"v": "new"}, live=True)

    assert asyncio.run(run()) == b'{"v":"new"}'


def test_a_full_cache_drops_its_oldest_answers_not_all_of_them():
    answers = Answers(ttl_s=60, max_entries=8)

    async def run():
        for i in range(9):
            await answers.get(("k", i), lambda i=i: {"i": i})

    asyncio.run(run())
    kept = [i for i in range(9) if answers.fresh(("k", i)) is not None]
    assert kept == [2, 3, 4, 5, 6, 7, 8]


def test_range_ends_are_rounded_to_the_half_minute(client):
    h = client.get(f"/api/v1/history/acme/a-site/a-line/press-1?start={iso(T0)}&end={iso(T0 + HOUR + 1000)}").json()
    assert h["end_ms"] == T0 + HOUR + 30_000


def test_a_long_range_ends_on_two_minutes_and_its_answer_stays_fresh_that_long():
    """A 30-day page moves by thousandths in two minutes: its key and its answer last that long, so the
    workers' range threads recompute it a quarter as often; ranges up to three days keep 30 s."""
    from datetime import datetime, timezone

    now = T0 + 10 * HOUR + 5_000
    at = lambda ms: datetime.fromtimestamp(ms / 1000, timezone.utc)  # noqa: E731
    a, z = window(at(now - 30 * DAY), None, now)
    assert z % 120_000 == 0 and now <= z < now + 120_000 and a == now - 30 * DAY
    _, z1 = window(at(now - DAY), None, now)
    assert z1 % 30_000 == 0 and now <= z1 < now + 30_000

    answers, calls = Answers(ttl_s=0.0), []

    def compute():
        calls.append(1)
        return {"n": len(calls)}

    async def run():
        first = await answers.get(("long",), compute, ttl_s=120.0)
        again = await answers.get(("long",), compute, ttl_s=120.0)  # fresh for 120 s, not the cache's 0 s
        return first, again

    assert asyncio.run(run()) == (b'{"n":1}', b'{"n":1}') and len(calls) == 1


def test_trends_of_several_tags_read_side_by_side_keep_each_tags_own_points_in_tag_order(tmp_path):
    """``/trends`` reads its tags in parallel threads: each tag's points must still be its own, in tag order."""
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({
        "tenants": [{"slug": "acme", "sites": [{"slug": "a-site", "lines": [
            {"slug": "a-line", "machines": [{"slug": "press-1", "ideal_cycle_s": 10}]}]}]}],
        "users": [{"username": "owner-a", "password": PASSWORD, "role": "sme_owner", "tenant": "acme"}],
    }))
    store = SqliteStore(tmp_path / "store.db")
    tags = {"press_force": 800.0, "oil_temp": 40.0, "hydraulic_pressure": 19.0, "motor_current": 12.0}
    store.write([Point(M, T0 + i * 10_000, {"state": 2, **{t: base + i for t, base in tags.items()}})
                 for i in range(360)])
    c = TestClient(create_app(store, ApiSettings(), plant, run_alarms=False,
                              rollup_cache=RollupCache(tmp_path / "rollups.db", settle_ms=0)))
    assert c.post("/api/v1/auth/login", json={"username": "owner-a", "password": PASSWORD}).status_code == 200
    q = f"start={iso(T0)}&end={iso(T0 + HOUR)}"
    t = c.get(f"/api/v1/history/acme/a-site/a-line/press-1/trends?{q}").json()
    assert [x["tag"] for x in t["trends"]] == sorted(tags)
    for x in t["trends"]:
        one = c.get(f"/api/v1/history/acme/a-site/a-line/press-1/trend?tag={x['tag']}&{q}").json()
        assert x["points"] == one["points"] and len(x["points"]) == HOUR // t["every_ms"]
        assert x["points"][0]["min"] == tags[x["tag"]]  # the tag's own values, not a neighbour's

"""Both store backends keep the same contract: the collector and the API cannot tell them apart.

The InfluxDB cases run against a real influxd; the SQLite cases against a real file. The
sharded cases run the same contract through a ``ShardedStore`` that sends tenant ``acme`` (M1)
to one shard and every other tenant (M2) to the default: two SQLite files, or a SQLite
default with an influxd shard for ``acme``.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator

import pytest

from plant import MachineRef
from tsstore import LatestValue, Point, StoreRejected, StoreUnavailable
from tsstore.influx import InfluxStore, PartialWrite
from tsstore.sharded import ShardedStore
from tsstore.sqlite import SqliteStore

pytestmark = pytest.mark.integration

M1 = MachineRef("acme", "plant-1", "line-a", "press-1")
M2 = MachineRef("beta", "plant-9", "line-z", "cnc-7")
T0 = 1_795_000_020_000  # ms, on a whole minute
assert T0 % 60_000 == 0


@pytest.fixture(params=["sqlite", "influxdb", "sharded-sqlite", "sharded-mixed"])
def store(request, tmp_path) -> Iterator:
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "ts.db")
    elif request.param == "influxdb":
        server = request.getfixturevalue("influxd")
        s = InfluxStore(server.url, "contract")
    else:
        other = (SqliteStore(tmp_path / "acme.db") if request.param == "sharded-sqlite"
                 else InfluxStore(request.getfixturevalue("influxd").url, "contract"))
        s = ShardedStore({"main": SqliteStore(tmp_path / "main.db"), "other": other}, "main", {M1.tenant: "other"})
    yield s
    s.close()


def test_machines_lists_what_was_written(store):
    assert store.machines() == []
    store.write([Point(M1, T0, {"a": 1}), Point(M2, T0, {"a": 2})])
    assert store.machines() == sorted([M1, M2])


def test_latest_gives_each_tag_its_own_timestamp(store):
    store.write([Point(M1, T0, {"a": 1, "b": 10}), Point(M1, T0 + 1000, {"a": 2}), Point(M2, T0 + 5000, {"a": 99})])
    assert store.latest(M1) == {"a": LatestValue(T0 + 1000, 2.0), "b": LatestValue(T0, 10.0)}


def test_types_numbers_and_booleans_are_floats_text_stays_text(store):
    store.write([Point(M1, T0, {"i": 7, "f": 2.5, "on": True, "off": False, "txt": 'say "hi", ok'})])
    latest = store.latest(M1)
    assert {k: v.value for k, v in latest.items()} == {"i": 7.0, "f": 2.5, "on": 1.0, "off": 0.0, "txt": 'say "hi", ok'}
    assert all(isinstance(latest[k].value, float) for k in ("i", "f", "on", "off"))


def test_text_with_newlines_quotes_and_backslashes_survives(store):
    tricky = 'line 1\nline 2 "quoted" back\\slash \\n not a newline'
    store.write([Point(M1, T0, {"txt": tricky, "n": 1})])
    assert store.latest(M1)["txt"].value == tricky
    assert store.latest(M1)["n"].value == 1.0


def test_rewriting_a_timestamp_overwrites_instead_of_duplicating(store):
    store.write([Point(M1, T0, {"a": 1})])
    store.write([Point(M1, T0, {"a": 5})])
    assert store.history(M1, "a", T0 - 1000, T0 + 1000, 0) == [(T0, 5.0)]


def test_raw_history_is_half_open_and_per_machine(store):
    store.write([Point(M1, T0 + i * 1000, {"a": i}) for i in range(5)] + [Point(M2, T0 + 1000, {"a": 42})])
    assert store.history(M1, "a", T0 + 1000, T0 + 4000, 0) == [(T0 + 1000, 1.0), (T0 + 2000, 2.0), (T0 + 3000, 3.0)]


def test_downsampling_aligns_buckets_to_the_epoch_and_skips_empty_ones(store):
    # 0..5 in the first minute, nothing in the second, 100 and 200 in the third
    points = [Point(M1, T0 + i * 10_000, {"a": i}) for i in range(6)]
    points += [Point(M1, T0 + 120_000, {"a": 100}), Point(M1, T0 + 150_000, {"a": 200})]
    store.write(points)
    window = (T0 - 60_000, T0 + 180_000)
    assert store.history(M1, "a", *window, 60_000, "mean") == [(T0, 2.5), (T0 + 120_000, 150.0)]
    assert store.history(M1, "a", *window, 60_000, "min") == [(T0, 0.0), (T0 + 120_000, 100.0)]
    assert store.history(M1, "a", *window, 60_000, "max") == [(T0, 5.0), (T0 + 120_000, 200.0)]
    assert store.history(M1, "a", *window, 60_000, "last") == [(T0, 5.0), (T0 + 120_000, 200.0)]


def test_text_tags_support_last_but_not_mean(store):
    store.write([Point(M1, T0, {"s": "A"}), Point(M1, T0 + 1000, {"s": "B"})])
    assert store.history(M1, "s", T0, T0 + 60_000, 60_000, "last") == [(T0, "B")]
    with pytest.raises(StoreRejected):
        store.history(M1, "s", T0, T0 + 60_000, 60_000, "mean")


def test_unknown_machine_or_tag_is_empty_not_an_error(store):
    store.write([Point(M1, T0, {"a": 1})])
    assert store.latest(M2) == {}
    assert store.history(M1, "nope", T0, T0 + 1000, 0) == []


def test_ping_answers(store):
    store.ping()


# -- InfluxDB specifics ------------------------------------------------------------------
def test_influx_creates_its_database_on_first_write(influxd):
    store = InfluxStore(influxd.url, "fresh_db")
    store.write([Point(M1, T0, {"a": 1})])
    assert store.latest(M1) == {"a": LatestValue(T0, 1.0)}


def test_influx_field_type_conflict_is_a_rejection_not_an_outage(influxd):
    store = InfluxStore(influxd.url, "conflict")
    store.write([Point(M1, T0, {"a": 1.5})])
    with pytest.raises(StoreRejected, match="field type conflict"):
        store.write([Point(M1, T0 + 1000, {"a": "text now"})])


def test_influx_partial_write_keeps_the_good_points_and_says_how_many_were_dropped(influxd):
    store = InfluxStore(influxd.url, "partial")
    store.write([Point(M1, T0, {"a": 1.5})])
    with pytest.raises(PartialWrite, match="partial write") as caught:
        store.write([Point(M1, T0 + 1000, {"a": 2.0}), Point(M1, T0 + 2000, {"a": "text"}),
                     Point(M1, T0 + 3000, {"a": 4.0})])
    assert caught.value.dropped == 1
    assert store.history(M1, "a", T0, T0 + 10_000, 0) == [(T0, 1.5), (T0 + 1000, 2.0), (T0 + 3000, 4.0)]


def test_influx_encoded_write_stores_what_write_stores(influxd):
    store = InfluxStore(influxd.url, "encoded")
    points = [Point(M1, T0 + i, {"a": i, "s": "x"}) for i in range(3)]
    encoded = store.encode(points)
    assert encoded is not None and encoded.lines == 3
    assert encoded.body[:2] == b"\x1f\x8b"  # gzip
    store.write_encoded(encoded)
    assert store.history(M1, "a", T0, T0 + 10, 0) == [(T0 + i, float(i)) for i in range(3)]
    assert store.encode([]) is None


def test_influx_down_is_unavailable_and_recovers_after_restart(influxd):
    store = InfluxStore(influxd.url, "outage", timeout=2)
    store.write([Point(M1, T0, {"a": 1})])
    influxd.stop()
    with pytest.raises(StoreUnavailable, match="unreachable"):
        store.write([Point(M1, T0 + 1000, {"a": 2})])
    with pytest.raises(StoreUnavailable):
        store.ping()
    influxd.start()
    store.write([Point(M1, T0 + 1000, {"a": 2})])
    assert store.history(M1, "a", T0, T0 + 2000, 0) == [(T0, 1.0), (T0 + 1000, 2.0)]


# -- SQLite specifics --------------------------------------------------------------------
def _read_in_other_process(path, queue) -> None:
    reader = SqliteStore(path)
    queue.put(len(reader.history(M1, "a", T0, T0 + 10_000_000, 0)))


def test_sqlite_is_readable_from_another_process_while_a_writer_holds_it(tmp_path):
    writer = SqliteStore(tmp_path / "shared.db")
    writer.write([Point(M1, T0 + i, {"a": i}) for i in range(100)])
    queue: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
    proc = multiprocessing.get_context("spawn").Process(target=_read_in_other_process, args=(tmp_path / "shared.db", queue))
    proc.start()
    writer.write([Point(M1, T0 + 100 + i, {"a": i}) for i in range(100)])  # writer keeps writing meanwhile
    assert queue.get(timeout=30) in (100, 200)
    proc.join(30)
    assert proc.exitcode == 0
    writer.close()


def test_state_durations_hold_each_value_until_the_next_sample_computed_in_the_store(store):
    # one sample a second: state 4 at 2-4 s, 7 s, 9-10 s, 12 s; the last sample (13 s) has no successor.
    # The first sample starts no run: nothing before it is known.
    states = [0, 0, 4, 4, 4, 0, 0, 4, 0, 4, 4, 0, 4, 0]
    store.write([Point(M1, T0 + i * 1000, {"state": s}) for i, s in enumerate(states)] + [Point(M2, T0, {"state": 4})])
    got = store.state_durations(M1, "state", T0, T0 + 60_000, 5000, [4, 0, 7], stale_ms=1500)
    # holds are booked to the bucket they end in, (a, a+5 s]: the hold 4 s -> 5 s belongs to the first bucket
    assert [(c.bucket_ms - T0, c.value, c.held_ms, c.runs) for c in got] == [
        (0, 0.0, 2000, 0), (0, 4.0, 3000, 1),
        (5000, 0.0, 3000, 2), (5000, 4.0, 2000, 2),
        (10_000, 0.0, 1000, 2), (10_000, 4.0, 2000, 1),
    ]


def test_state_durations_cap_a_hold_at_the_staleness_limit_and_heartbeats_are_not_runs(store):
    # report-on-change with a heartbeat: 2 at 0 s (heartbeats at 60 s, 120 s), 5 at 130 s, then nothing until 400 s
    t0 = T0 - T0 % 600_000  # windows start on a bucket boundary
    store.write([Point(M1, t0 + t * 1000, {"state": v}) for t, v in ((0, 2), (60, 2), (120, 2), (130, 5), (400, 2))])
    got = store.state_durations(M1, "state", t0, t0 + 600_000, 600_000, [2, 5], stale_ms=90_000)
    assert [(c.value, c.held_ms, c.runs) for c in got] == [(2.0, 130_000, 1), (5.0, 90_000, 1)]
    assert store.state_durations(M1, "nope", T0, T0 + 60_000, 60_000, [2], stale_ms=1500) == []


def test_state_runs_fold_samples_into_runs_split_by_value_and_by_gaps_over_the_staleness_limit(store):
    # 0 s-2 s state 1; 3 s state 2; 4 s state 2 again; a gap of 10 s (over the 5 s limit) then 2 again;
    # the half-open end leaves 30 s out
    samples = [(0, 1), (1, 1), (2, 1), (3, 2), (4, 2), (14, 2), (15, 1.0), (17, 1), (30, 3)]
    store.write([Point(M1, T0 + t * 1000, {"state": v}) for t, v in samples] + [Point(M2, T0, {"state": 9})])
    got = store.state_runs(M1, "state", T0, T0 + 30_000, 5000)
    assert [(a - T0, b - T0, v) for a, b, v in got] == [
        (0, 2000, 1), (3000, 4000, 2), (14_000, 14_000, 2), (15_000, 17_000, 1)]
    assert store.state_runs(M1, "state", T0 + 3000, T0 + 4001, 5000) == [(T0 + 3000, T0 + 4000, 2)]
    assert store.state_runs(M1, "nope", T0, T0 + 30_000, 5000) == []


def test_count_aggregate_counts_samples_per_bucket(store):
    store.write([Point(M1, T0 + i * 10_000, {"a": i}) for i in range(8)])
    assert store.history(M1, "a", T0, T0 + 120_000, 60_000, "count") == [(T0, 6.0), (T0 + 60_000, 2.0)]


def test_counter_buckets_give_last_max_and_min_per_bucket_in_one_pass(store):
    # bucket 0: rises, wraps to 3, rises to 9 (last 9, max 65534, min 3); bucket 1: empty; bucket 2: one reading
    values = [65530, 65534, 3, 9]
    store.write([Point(M1, T0 + i * 10_000, {"c": v, "other": 1}) for i, v in enumerate(values)])
    store.write([Point(M1, T0 + 125_000, {"c": 12})])
    store.write([Point(M2, T0, {"c": 99})])  # another machine's counter of the same name
    got = store.counter_buckets(M1, "c", T0, T0 + 180_000, 60_000)
    assert got == [(T0, 9.0, 65534.0, 3.0), (T0 + 120_000, 12.0, 12.0, 12.0)]
    # the same figures as three history() calls
    for agg, k in (("last", 1), ("max", 2), ("min", 3)):
        assert [(row[0], row[k]) for row in got] == store.history(M1, "c", T0, T0 + 180_000, 60_000, agg)
    assert store.counter_buckets(M1, "missing", T0, T0 + 180_000, 60_000) == []
    assert store.counter_buckets(M1, "c", T0 + 60_000, T0 + 120_000, 60_000) == []  # half-open, empty range


def test_value_buckets_give_mean_min_and_max_per_bucket_in_one_pass(store):
    # 0..5 in the first minute, nothing in the second, 100 and 200 in the third; another machine's tag of the same name
    store.write([Point(M1, T0 + i * 10_000, {"a": i}) for i in range(6)]
                + [Point(M1, T0 + 120_000, {"a": 100}), Point(M1, T0 + 150_000, {"a": 200}), Point(M2, T0, {"a": 7})])
    window = (T0 - 60_000, T0 + 180_000)
    got = store.value_buckets(M1, "a", *window, 60_000)
    assert got == [(T0, 2.5, 0.0, 5.0), (T0 + 120_000, 150.0, 100.0, 200.0)]
    for agg, k in (("mean", 1), ("min", 2), ("max", 3)):  # the same figures as three history() calls
        assert [(row[0], row[k]) for row in got] == store.history(M1, "a", *window, 60_000, agg)
    assert store.value_buckets(M1, "missing", *window, 60_000) == []
    store.write([Point(M1, T0, {"s": "A"})])
    with pytest.raises(StoreRejected):
        store.value_buckets(M1, "s", *window, 60_000)


def test_edge_samples_give_the_readings_around_each_edge_with_their_own_times(store):
    store.write([Point(M1, T0 - 70_000, {"s": 4}), Point(M1, T0 - 20_000, {"s": 2}), Point(M1, T0 + 30_000, {"s": 3}),
                 Point(M1, T0 + 60_000, {"s": 1}), Point(M1, T0 + 60_000, {"t": "text"})])
    edges = [T0, T0 + 60_000, T0 + 200_000]
    assert store.edge_samples(M1, "s", edges, 90_000) == [
        ((T0 - 20_000, 2.0), T0 + 30_000),  # last before, first at or after, within the staleness limit
        ((T0 + 30_000, 3.0), T0 + 60_000),  # a sample right on the edge
        (None, None),  # nothing within 90 s either side
    ]
    assert store.edge_samples(M2, "s", [T0], 90_000) == [(None, None)]

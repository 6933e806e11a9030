"""/history's settled buckets (``api.routers.machines.settled_history``): the same rows as the store, fewer reads."""

from __future__ import annotations

import time

import numpy as np
import pytest

from api.routers import machines as machines_router
from api.caches import SettledBuckets
from plant import MachineRef
from tsstore import Point
from tsstore.sqlite import SqliteStore

M = MachineRef("acme", "p", "l", "m1")
MIN, HOUR = 60_000, 3_600_000


class Counting:
    """The store, with the ranges /history asked it for."""

    def __init__(self, store: SqliteStore) -> None:
        self.store, self.reads = store, []

    def history(self, machine, tag, start_ms, end_ms, every_ms, agg="mean"):
        self.reads.append((start_ms, end_ms))
        return self.store.history(machine, tag, start_ms, end_ms, every_ms, agg)


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setattr(machines_router, "HISTORY_BUCKETS", SettledBuckets())
    now = int(time.time() * 1000)
    store = SqliteStore(tmp_path / "t.db")
    ts = np.arange(now - 6 * HOUR, now, 5_000, dtype=np.int64)
    values = np.random.default_rng(7).normal(400.0, 20.0, len(ts))
    store.write_columns(M, {"force": (ts.tolist(), values.tolist())})
    yield store, now
    store.close()


@pytest.mark.parametrize("agg", ["mean", "max", "count", "last"])
@pytest.mark.parametrize("offset_ms", [0, 37_000])  # a start on a bucket edge, and one inside a bucket
def test_the_rows_equal_the_stores_own_and_a_second_call_reads_only_the_newest_buckets(data, agg, offset_ms):
    store, now = data
    every = 10 * MIN
    start = (now - 5 * HOUR) // every * every + offset_ms
    counting = Counting(store)
    first = machines_router.settled_history(counting, M, "force", start, now, every, agg)
    assert first == store.history(M, "force", start, now, every, agg)
    assert len(first) >= 30
    counting.reads.clear()
    later = int(time.time() * 1000)
    again = machines_router.settled_history(counting, M, "force", start, later, every, agg)
    assert again == store.history(M, "force", start, later, every, agg)
    whole = -(-start // every) * every
    # besides the part of the first bucket before its edge, nothing older than the settle margin is read again
    settled = (later - 2 * HOUR) // every * every - every  # a bucket of slack: the clock moved on since
    assert all(lo >= settled or (lo, hi) == (start, whole) for lo, hi in counting.reads), counting.reads


def test_a_start_that_moves_within_a_bucket_reuses_the_kept_buckets(data):
    store, now = data
    every = 10 * MIN
    start = (now - 5 * HOUR) // every * every + 1_000
    machines_router.settled_history(Counting(store), M, "force", start, now, every, "mean")
    counting = Counting(store)
    moved = start + 60_000  # a script asking for "the last 5 h" a minute later
    rows = machines_router.settled_history(counting, M, "force", moved, now, every, "mean")
    assert rows == store.history(M, "force", moved, now, every, "mean")
    assert counting.reads[0] == (moved, -(-moved // every) * every)
    assert all(lo >= (now - 2 * HOUR) // every * every - every for lo, _ in counting.reads[1:]), counting.reads


def test_late_data_in_a_kept_bucket_shows_once_the_kept_buckets_expire(data, monkeypatch):
    store, now = data
    every = 10 * MIN
    start = (now - 5 * HOUR) // every * every
    bucket = start + 3 * every
    before = machines_router.settled_history(store, M, "force", start, now, every, "max")
    store.write([Point(M, bucket + 1_000, {"force": 9_999.0})])  # a replay into a settled bucket
    kept = machines_router.settled_history(store, M, "force", start, now, every, "max")
    assert dict(kept)[bucket] == dict(before)[bucket] != 9_999.0  # kept for the cache's ttl_s (600 s)
    monkeypatch.setattr(machines_router.HISTORY_BUCKETS, "ttl_s", 0.0)
    fresh = machines_router.settled_history(store, M, "force", start, now, every, "max")
    assert dict(fresh)[bucket] == 9_999.0
    assert fresh == store.history(M, "force", start, now, every, "max")


def test_a_range_within_one_bucket_is_read_whole(data):
    store, now = data
    every = HOUR
    start = (now - 3 * HOUR) // every * every + 5 * MIN
    end = start + 20 * MIN
    assert machines_router.settled_history(store, M, "force", start, end, every, "mean") == \
        store.history(M, "force", start, end, every, "mean")


def test_an_answer_of_more_buckets_than_are_kept_is_read_from_the_store_each_time(data):
    store, now = data
    every = 10_000
    start = now - 5 * HOUR  # 1,800 buckets of 10 s
    counting = Counting(store)
    for _ in range(2):
        assert machines_router.settled_history(counting, M, "force", start, now, every, "mean") == \
            store.history(M, "force", start, now, every, "mean")
    assert counting.reads == [(start, now)] * 2

"""Finding the points a store refuses, and retry timing: pure, no servers."""

from __future__ import annotations

import math

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.policy import Backoff, isolate_rejects
from tsstore import StoreRejected, StoreUnavailable
from tsstore.influx import InfluxStore, PartialWrite, RetryLater, parse_retry_after


class FakeStore:
    """Refuses any write containing a bad item, keeps the good ones (like a partial write)."""

    def __init__(self, bad: set[int]) -> None:
        self.bad = bad
        self.stored: set[int] = set()
        self.calls = 0

    def write(self, items) -> None:
        self.calls += 1
        self.stored.update(i for i in items if i not in self.bad)
        dropped = [i for i in items if i in self.bad]
        if dropped:
            raise StoreRejected(f"partial write: bad {dropped[0]} dropped={len(dropped)}")


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 300), data=st.data())
def test_every_good_point_is_stored_and_exactly_the_bad_ones_are_returned(n, data):
    bad = set(data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n)))
    store = FakeStore(bad)
    rejected = isolate_rejects(store.write, list(range(n)))
    assert sorted(p for p, _ in rejected) == sorted(bad)
    assert store.stored == set(range(n)) - bad
    # bounded: never more than about two requests per point, so a poison batch ends
    assert store.calls <= 2 * n + 1


def test_reasons_are_the_stores_own_messages():
    rejected = isolate_rejects(FakeStore({3}).write, list(range(10)))
    assert rejected == [(3, "partial write: bad 3 dropped=1")]


def test_one_bad_point_in_a_large_batch_costs_logarithmically_many_requests():
    store = FakeStore({777})
    isolate_rejects(store.write, list(range(5000)))
    assert store.calls <= 2 * math.ceil(math.log2(5000)) + 16


def test_an_outage_in_the_middle_propagates_so_the_caller_keeps_the_whole_batch():
    calls = []

    def write(items):
        calls.append(list(items))
        if len(calls) == 1:
            raise StoreRejected("partial write: dropped=1")
        raise StoreUnavailable("connection refused")

    with pytest.raises(StoreUnavailable):
        isolate_rejects(write, list(range(100)))


def test_empty_batch_writes_nothing():
    store = FakeStore(set())
    assert isolate_rejects(store.write, []) == []
    assert store.calls == 0


def test_backoff_doubles_up_to_the_cap_and_resets():
    b = Backoff(initial_s=0.5, max_s=4)
    assert [b.failed(0.0) for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    assert not b.ready(3.9) and b.ready(4.0)
    b.succeeded()
    assert b.ready(0.0) and b.failed(10.0) == 0.5


def test_backoff_honours_retry_after_but_not_beyond_ten_caps():
    b = Backoff(initial_s=0.5, max_s=4)
    assert b.failed(0.0, retry_after_s=7) == 7
    assert b.retry_at == 7
    assert b.failed(0.0, retry_after_s=3600) == 40
    assert b.failed(0.0, retry_after_s=0.1) == 2  # third failure: never sooner than our own backoff


def test_parse_retry_after_seconds_and_http_date():
    assert parse_retry_after("120") == 120
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0


def _store_answering(status: int, headers: dict | None = None, body: str = "") -> InfluxStore:
    store = InfluxStore("http://influx.invalid:8086", "db")
    store._database_ready = True
    store._client = httpx.Client(base_url=store.url, transport=httpx.MockTransport(
        lambda request: httpx.Response(status, headers=headers or {}, text=body)))
    return store


def test_influx_503_with_retry_after_is_retry_later_carrying_the_delay():
    store = _store_answering(503, {"Retry-After": "17"}, "busy")
    with pytest.raises(RetryLater) as caught:
        store.write([_point()])
    assert caught.value.retry_after_s == 17
    assert isinstance(caught.value, StoreUnavailable)


def test_influx_partial_write_is_a_rejection_with_the_dropped_count():
    store = _store_answering(400, body='{"error":"partial write: field type conflict: ... dropped=3"}')
    with pytest.raises(PartialWrite) as caught:
        store.write([_point()])
    assert caught.value.dropped == 3
    assert isinstance(caught.value, StoreRejected)


def _point():
    from plant import MachineRef
    from tsstore import Point

    return Point(MachineRef("t", "s", "l", "m"), 1_795_000_000_000, {"a": 1.0})

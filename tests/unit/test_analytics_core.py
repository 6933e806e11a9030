"""Counter corrections and state intervals: the two pitfalls that break every KPI above them."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.counters import Correction, counter_deltas
from analytics.states import UNKNOWN, Interval, coverage, state_intervals, time_in_state


def test_plain_increments():
    d = counter_deltas([10, 12, 12, 15])
    assert d.deltas.tolist() == [2, 0, 3] and d.corrections == []


def test_uint16_wrap_counts_the_parts_across_the_top():
    d = counter_deltas([65533, 65535, 1, 3], bits=16)
    assert d.deltas.tolist() == [2, 2, 2]  # 65535 → 0 → 1 is two parts
    assert d.corrections == [(1, Correction.WRAP)]
    assert d.total == 6


def test_drop_far_from_the_top_is_a_reset():
    d = counter_deltas([500, 510, 3, 7], bits=16)
    assert d.deltas.tolist() == [10, 3, 4]
    assert d.corrections == [(1, Correction.RESET)]


def test_unknown_width_treats_every_drop_as_reset():
    d = counter_deltas([65530, 2], bits=None)
    assert d.deltas.tolist() == [2] and d.corrections == [(0, Correction.RESET)]


@given(st.integers(0, 65535), st.lists(st.integers(0, 50), min_size=1, max_size=200))
def test_wrapping_counter_total_equals_true_increments(start, increments):
    raw = np.cumsum([start, *increments]) % 65536
    assert counter_deltas(raw, bits=16).total == sum(increments)


def test_state_lasts_until_next_sample():
    iv = state_intervals([0, 1000, 3000], [2, 2, 4], window=(0, 4000), stale_ms=5000)
    assert iv == [Interval(0, 3000, 2), Interval(3000, 4000, 4)]


def test_gap_longer_than_staleness_is_unknown_never_running():
    iv = state_intervals([0, 10_000], [2, 2], window=(0, 12_000), stale_ms=3000)
    assert iv == [Interval(0, 3000, 2), Interval(3000, 10_000, UNKNOWN), Interval(10_000, 12_000, 2)]
    assert time_in_state(iv) == {2: 5000, UNKNOWN: 7000}
    assert coverage(iv) == 5000 / 12_000


def test_last_state_closes_at_window_end_and_no_data_before_first_sample_is_unknown():
    iv = state_intervals([5000], [1], window=(0, 8000), stale_ms=60_000)
    assert iv == [Interval(0, 5000, UNKNOWN), Interval(5000, 8000, 1)]


def test_sample_before_window_carries_in():
    iv = state_intervals([-1000, 2000], [3, 0], window=(0, 4000), stale_ms=10_000)
    assert iv == [Interval(0, 2000, 3), Interval(2000, 4000, 0)]


@given(st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 5)), max_size=50), st.integers(1, 3000))
def test_intervals_tile_the_window_exactly(samples, stale):
    samples.sort()
    ts = [t for t, _ in samples]
    states = [s for _, s in samples]
    iv = state_intervals(ts, states, window=(1000, 4000), stale_ms=stale)
    assert iv[0].start_ms == 1000 and iv[-1].end_ms == 4000
    assert all(a.end_ms == b.start_ms for a, b in zip(iv, iv[1:]))
    assert sum(i.duration_ms for i in iv) == 3000


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.integers(0, 3)), max_size=25), st.integers(0, 3000),
       st.integers(1, 3000), st.integers(1, 600))
def test_state_intervals_follow_the_rule_millisecond_by_millisecond(steps, start, span, stale):
    """Each ms holds the state of the last sample at or before it, if that sample is under stale_ms old."""
    ts, states, t = [], [], 0
    for gap, s in steps:
        t += gap
        ts.append(t)
        states.append(s)
    got = state_intervals(ts, states, (start, start + span), stale)
    assert got[0].start_ms == start and got[-1].end_ms == start + span
    assert all(a.end_ms == b.start_ms and a.state != b.state for a, b in zip(got, got[1:]))
    for ms in range(start, start + span):
        i = max((k for k, x in enumerate(ts) if x <= ms), default=None)
        want = states[i] if i is not None and ms < ts[i] + stale else UNKNOWN
        assert next(iv.state for iv in got if iv.start_ms <= ms < iv.end_ms) == want, ms

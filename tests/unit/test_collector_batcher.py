"""The batcher's pure rule: when a batch is due, with the clock passed in (group commit at light load)."""

from __future__ import annotations

from collector.batcher import Batch
from collector.ledger import DeadLetter
from plant import MachineRef
from tsstore import Point

M = MachineRef("acme", "plant-1", "line-a", "press-1")
#: the defaults: 5000 points, 1 s, 100 messages; group commit after 0.02 s quiet, at most 0.2 s old
LIMITS = dict(max_points=5000, max_age_s=1.0, max_messages=100)
LINGER = dict(linger_s=0.02, linger_max_s=0.2)


def batch_at(*times: float) -> Batch:
    """One message per time (seconds on the batcher's clock)."""
    b = Batch()
    for i, t in enumerate(times):
        b.add([Point(M, 1_000 + i, {"a": i})], (i + 1, 1), t, (0, "t", b"x"))
    return b


def test_an_empty_batch_is_never_due_and_waits_for_a_message():
    b = Batch()
    assert not b.due(1e9, **LIMITS, **LINGER, idle=True)
    assert b.seconds_until_due(100.0, 1.0, 0.02, 0.2, idle=True) is None


def test_a_burst_goes_in_one_write_once_it_is_over_and_the_store_is_idle():
    b = batch_at(100.0, 100.01, 100.015)  # one poll cycle's messages from a gateway
    assert not b.due(100.03, **LIMITS, **LINGER, idle=True)  # 15 ms since the last: more may follow
    assert abs(b.seconds_until_due(100.03, 1.0, 0.02, 0.2, idle=True) - 0.005) < 1e-9
    assert b.due(100.036, **LIMITS, **LINGER, idle=True)


def test_a_steady_trickle_goes_at_the_longest_linger_though_never_quiet():
    times = [100.0 + i * 0.01 for i in range(20)]  # a message every 10 ms, fewer than 100 in 0.2 s
    b = batch_at(*times)
    assert not b.due(100.195, **LIMITS, **LINGER, idle=True)
    assert b.due(100.201, **LIMITS, **LINGER, idle=True)


def test_while_the_store_is_busy_a_partial_batch_keeps_filling_until_the_interval():
    b = batch_at(100.0)
    assert not b.due(100.5, **LIMITS, **LINGER, idle=False)
    assert abs(b.seconds_until_due(100.5, 1.0, 0.02, 0.2, idle=False) - 0.5) < 1e-9
    assert b.due(101.0, **LIMITS, **LINGER, idle=False)  # the interval still bounds the wait


def test_without_a_linger_a_partial_batch_waits_for_the_interval_even_when_idle():
    b = batch_at(100.0)
    assert not b.due(100.9, **LIMITS, linger_s=None, idle=True)
    assert abs(b.seconds_until_due(100.9, 1.0, None, None, idle=True) - 0.1) < 1e-9
    assert b.due(101.0, **LIMITS, linger_s=None, idle=True)


def test_full_batches_go_at_once_whatever_the_store_is_doing():
    assert batch_at(*[100.0] * 100).due(100.0, **LIMITS, **LINGER, idle=False)  # max_messages
    assert batch_at(*[100.0] * 10).due(100.0, 10, 1.0, 100, **LINGER, idle=False)  # max_points


def test_lingers_longer_than_the_interval_change_nothing():
    b = batch_at(100.0)
    assert abs(b.seconds_until_due(100.0, 1.0, 5.0, 10.0, idle=True) - 1.0) < 1e-9
    assert not b.due(100.9, **LIMITS, linger_s=5.0, linger_max_s=10.0, idle=True)
    assert b.due(101.0, **LIMITS, linger_s=5.0, linger_max_s=10.0, idle=True)


def test_dead_letters_count_as_messages_of_the_batch():
    b = Batch()
    b.add_dead(DeadLetter(0, "schema", "bad", "t", b"x"), (1, 1), 100.0)
    assert not b.due(100.01, **LIMITS, **LINGER, idle=True)
    b.add([Point(M, 1, {"a": 1})], (2, 1), 100.015, (0, "t", b"x"))
    assert not b.due(100.03, **LIMITS, **LINGER, idle=True)  # quiet since 100.015, not since 100.0
    assert b.due(100.036, **LIMITS, **LINGER, idle=True) and len(b.acks) == 2

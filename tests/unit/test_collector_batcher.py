"""The batcher's pure rule: when a batch is due, with the clock passed in (group commit at light load)."""

from __future__ import annotations

from collector.batcher import Batch
from collector.ledger import DeadLetter
from plant import MachineRef
from tsstore import Point

M = MachineRef("acme", "plant-1", "line-a", "press-1")


def batch_of(n: int, opened_at: float = 100.0) -> Batch:
    b = Batch()
    for i in range(n):
        b.add([Point(M, 1_000 + i, {"a": i})], (i + 1, 1), opened_at, (0, "t", b"x"))
    return b


def test_an_empty_batch_is_never_due_and_waits_for_a_message():
    b = Batch()
    assert not b.due(1e9, 10, 1.0, 10, linger_s=0.02, idle=True)
    assert b.seconds_until_due(100.0, 1.0, 0.02, idle=True) is None


def test_a_partial_batch_goes_after_the_linger_once_the_store_is_idle():
    b = batch_of(3)
    assert not b.due(100.01, 5000, 1.0, 100, linger_s=0.02, idle=True)  # still lingering: a burst may follow
    assert b.due(100.021, 5000, 1.0, 100, linger_s=0.02, idle=True)
    assert abs(b.seconds_until_due(100.005, 1.0, 0.02, idle=True) - 0.015) < 1e-9


def test_while_the_store_is_busy_a_partial_batch_keeps_filling_until_the_interval():
    b = batch_of(3)
    assert not b.due(100.5, 5000, 1.0, 100, linger_s=0.02, idle=False)
    assert abs(b.seconds_until_due(100.5, 1.0, 0.02, idle=False) - 0.5) < 1e-9
    assert b.due(101.0, 5000, 1.0, 100, linger_s=0.02, idle=False)  # the interval still bounds the wait


def test_without_a_linger_a_partial_batch_waits_for_the_interval_even_when_idle():
    b = batch_of(3)
    assert not b.due(100.9, 5000, 1.0, 100, linger_s=None, idle=True)
    assert abs(b.seconds_until_due(100.9, 1.0, None, idle=True) - 0.1) < 1e-9
    assert b.due(101.0, 5000, 1.0, 100, linger_s=None, idle=True)


def test_full_batches_go_at_once_whatever_the_store_is_doing():
    assert batch_of(100).due(100.0, 5000, 1.0, 100, linger_s=0.02, idle=False)  # max_batch_messages
    assert batch_of(10).due(100.0, 10, 1.0, 100, linger_s=0.02, idle=False)  # batch_size points


def test_a_linger_longer_than_the_interval_changes_nothing():
    b = batch_of(1)
    assert abs(b.seconds_until_due(100.0, 1.0, 5.0, idle=True) - 1.0) < 1e-9
    assert b.due(101.0, 5000, 1.0, 100, linger_s=5.0, idle=True)


def test_the_linger_counts_from_the_first_message_dead_letters_included():
    b = Batch()
    b.add_dead(DeadLetter(0, "schema", "bad", "t", b"x"), (1, 1), 100.0)
    b.add([Point(M, 1, {"a": 1})], (2, 1), 100.015, (0, "t", b"x"))
    assert b.due(100.021, 5000, 1.0, 100, linger_s=0.02, idle=True)

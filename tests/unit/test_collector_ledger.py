"""The collector's spool and dead letters on a real SQLite file."""

from __future__ import annotations

from collector.ledger import DeadLetter, Ledger, read_dead_letters, spool_status


def test_spool_keeps_order_across_reopen_and_removes_what_was_stored(tmp_path):
    ledger = Ledger(tmp_path, spool_max_bytes=10_000, dead_letter_max_payload_bytes=100)
    ledger.spool_append([(1, "t/a", b"one"), (2, "t/b", b"two")])
    ledger.spool_append([(3, "t/c", b"three")])
    ledger.close()

    again = Ledger(tmp_path, spool_max_bytes=10_000, dead_letter_max_payload_bytes=100)
    assert (again.spool_messages, again.spool_bytes) == (3, 11)
    head = again.spool_head(2)
    assert [(m.topic, m.payload) for m in head] == [("t/a", b"one"), ("t/b", b"two")]
    again.spool_remove_through(head[-1].id, 2, 6)
    assert [m.payload for m in again.spool_head(10)] == [b"three"]
    assert spool_status(tmp_path) == (1, 5) == (again.spool_messages, again.spool_bytes)


def test_spool_bound_counts_payload_bytes_but_an_empty_spool_takes_any_batch(tmp_path):
    ledger = Ledger(tmp_path, spool_max_bytes=10, dead_letter_max_payload_bytes=100)
    assert ledger.spool_has_room(1_000)  # empty: one oversized batch must not block forever
    ledger.spool_append([(1, "t", b"x" * 8)])
    assert ledger.spool_has_room(2) and not ledger.spool_has_room(3)


def test_dead_letters_keep_reason_topic_and_a_bounded_payload(tmp_path):
    ledger = Ledger(tmp_path, spool_max_bytes=10_000, dead_letter_max_payload_bytes=4)
    ledger.add_dead_letters([
        DeadLetter(1000, "schema", "not JSON", "sf/v1/a/b/c/d/telemetry", b"{nope"),
        DeadLetter(2000, "topic", "bad topic", "x/y", b"ok"),
    ])
    letters = read_dead_letters(tmp_path)
    assert [(d.reason, d.topic, d.payload, d.payload_bytes, d.truncated) for d in letters] == [
        ("schema", "sf/v1/a/b/c/d/telemetry", b"{nop", 5, True),
        ("topic", "x/y", b"ok", 2, False),
    ]
    assert [d.reason for d in read_dead_letters(tmp_path, reason="topic")] == ["topic"]
    assert [d.reason for d in read_dead_letters(tmp_path, after_id=letters[0].id)] == ["topic"]


def test_reading_before_any_collector_ran_is_empty(tmp_path):
    assert read_dead_letters(tmp_path / "nothing") == []
    assert spool_status(tmp_path / "nothing") == (0, 0)


def test_dead_letters_past_their_byte_bound_lose_the_oldest_first(tmp_path):
    ledger = Ledger(tmp_path, spool_max_bytes=10_000, dead_letter_max_payload_bytes=100, dead_letter_max_bytes=1000)
    for i in range(30):
        ledger.add_dead_letters([DeadLetter(i, "schema", "x", "t", bytes([65 + i % 26]) * 100)])
    kept = read_dead_letters(tmp_path)
    assert sum(len(d.payload) for d in kept) <= 1000
    assert [d.received_ms for d in kept] == list(range(30 - len(kept), 30))  # the newest survive, in order
    assert ledger.dead_letters_pruned == 30 - len(kept) > 0
    ledger.close()
    assert Ledger(tmp_path, 10_000, 100, 1000).dead_letter_bytes == sum(len(d.payload) for d in kept)

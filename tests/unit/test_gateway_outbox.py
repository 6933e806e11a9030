"""The disk outbox: order, deletes, bounded size with a persisted drop counter, and reopening
(never recreating) the file; and how the forwarder packs backlog into messages."""

from __future__ import annotations

from gateway.outbox import Outbox, Row
from gateway.publisher import Forwarder


def test_rows_come_back_in_order_and_leave_only_when_deleted(tmp_path):
    box = Outbox(tmp_path / "o.db", max_samples=1000)
    for i in range(10):
        box.append("t/s/l/m", 1_700_000_000_000 + i, {"v": i})
    rows = box.batch(0, 4)
    assert [r.values["v"] for r in rows] == [0, 1, 2, 3]
    assert [r.values["v"] for r in box.batch(rows[-1].id, 100)] == list(range(4, 10))
    box.delete([r.id for r in rows])
    assert box.pending == 6
    assert [r.values["v"] for r in box.batch(0, 100)] == list(range(4, 10))
    box.close()


def test_reopening_keeps_pending_rows_and_the_drop_counter(tmp_path):
    box = Outbox(tmp_path / "o.db", max_samples=100)
    for i in range(150):
        box.append("t/s/l/m", 1_700_000_000_000 + i, {"v": i})
    assert box.pending <= 100 and box.dropped >= 50
    kept = [r.values["v"] for r in box.batch(0, 1000)]
    assert kept == list(range(150 - len(kept), 150))  # the oldest went first, order kept
    dropped = box.dropped
    box.close()
    again = Outbox(tmp_path / "o.db", max_samples=100)
    assert again.pending == len(kept) and again.dropped == dropped
    assert [r.values["v"] for r in again.batch(0, 1000)] == kept
    assert again.new_rows.is_set()  # a restart forwards what was left at once
    again.close()


def test_deleting_dropped_rows_is_harmless(tmp_path):
    box = Outbox(tmp_path / "o.db", max_samples=100)
    box.append("t/s/l/m", 1_700_000_000_000, {"v": 0})
    (row,) = box.batch(0, 10)
    box.delete([row.id])
    box.delete([row.id])
    assert box.pending == 0
    box.close()


def row(i, machine="t/s/l/a", n=3):
    return Row(i, machine, 1_700_000_000_000 + i, {f"k{j}": j for j in range(n)})


def test_pack_groups_interleaved_machines_and_respects_the_sample_limit():
    rows = [row(i, "t/s/l/a" if i % 2 else "t/s/l/b") for i in range(1, 21)]
    messages = Forwarder._pack(rows, limit=4)
    assert all(len(m) <= 4 and len({r.machine for r in m}) == 1 for m in messages)
    assert len(messages) == 6  # 10 rows per machine in chunks of 4, 4, 2
    assert sorted(r.id for m in messages for r in m) == list(range(1, 21))
    for m in messages:  # each machine's samples stay in order
        assert [r.id for r in m] == sorted(r.id for r in m)


def test_pack_keeps_messages_under_the_size_budget():
    rows = [row(i, n=2000) for i in range(1, 40)]  # ~60 kB of values each
    messages = Forwarder._pack(rows, limit=10_000)
    assert len(messages) > 1
    assert all(sum(40 + sum(len(k) + 24 for k in r.values) for r in m) <= 512 * 1024 for m in messages)

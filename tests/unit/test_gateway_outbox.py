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
    assert all(sum(32 + sum(len(k) + 24 for k in r.values) for r in m) <= 512 * 1024 for m in messages)


def test_pack_uses_the_stored_json_size(tmp_path):
    box = Outbox(tmp_path / "o.db", max_samples=100_000)
    for i in range(3000):
        box.append("t/s/l/m", 1_700_000_000_000 + i, {f"tag{j}": j for j in range(200)})
    rows = box.batch(0, 3000)
    assert rows[0].size == len('{"tag0":0') + sum(len(f',"tag{j}":{j}') for j in range(1, 200)) + 1
    messages = Forwarder._pack(rows, limit=10_000)
    from wire import encode_telemetry
    from plant import MachineRef

    sizes = [len(encode_telemetry(MachineRef("t", "s", "l", "m"), [(r.ts, r.values) for r in m])) for m in messages]
    assert max(sizes) <= 1024 * 1024 and min(sizes[:-1]) > 256 * 1024  # full, but under the contract limit
    box.close()


def test_an_unwritable_outbox_path_is_a_clear_error(tmp_path):
    import pytest

    from gateway.outbox import OutboxError

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(OutboxError, match="gateway.outbox.path"):
        Outbox(blocker / "sub" / "o.db", max_samples=100)


def test_gateway_run_refuses_an_unwritable_outbox_with_exit_2(tmp_path):
    import yaml
    from click.testing import CliRunner

    from cli.main import cli

    (tmp_path / "a-file").write_text("")
    config = {"gateway": {"id": "g", "tenant": "t", "site": "s",
                          "outbox": {"path": str(tmp_path / "a-file" / "o.db")},
                          "devices": [{"name": "m", "line": "l", "host": "127.0.0.1",
                                       "tags": [{"name": "a", "table": "coil", "address": 0, "type": "bool"}]}]}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(cli, ["gateway", "run", "--config", str(path)])
    assert result.exit_code == 2
    assert "cannot open the outbox" in result.output and "gateway.outbox.path" in result.output

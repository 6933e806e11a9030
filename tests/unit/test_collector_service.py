"""The collector's message handler and store thread, with a fake store and a fake broker link.

What is asserted is the delivery rule: a message is acknowledged only after its points
are in the store or in the on-disk spool (or, if bad, in the dead letters); a full spool
holds acknowledgements back; the spool drains in order; bad points never block a batch.
The real broker and InfluxDB are in tests/integration/test_collector*.py.
"""

from __future__ import annotations

import json
import queue
import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.ledger import DeadLetter, read_dead_letters, spool_status
from collector.service import _STOP, Collector
from collector.settings import CollectorSettings
from mqttlink import MqttSettings
from plant import MachineRef
from tests.waiting import wait_until
from tsstore import StoreRejected, StoreUnavailable
from wire import encode_telemetry, telemetry_topic

M = MachineRef("acme", "plant-1", "line-a", "press-1")
T0 = 1_795_000_020_000
REASONS = {"oversized", "topic", "schema", "tenant_mismatch"}


class FakeStore:
    """Up or down on demand; refuses points whose value is the string 'poison' (like a type conflict)."""

    def __init__(self, events: list) -> None:
        self.events = events
        self.up = threading.Event()
        self.up.set()
        self.points: list = []
        self.lock = threading.Lock()

    def write(self, points) -> None:
        if not self.up.is_set():
            raise StoreUnavailable("connection refused")
        with self.lock:
            good = [p for p in points if "poison" not in p.values.values()]
            self.points.extend(good)
            self.events.extend(("stored", p.ts_ms) for p in good)
        if len(good) != len(points):
            raise StoreRejected(f"partial write: field type conflict dropped={len(points) - len(good)}")

    def close(self) -> None:
        pass


class FakeLink:
    def __init__(self, events: list) -> None:
        self.events = events
        self.acked: list[int] = []

    def ack(self, mid: int, qos: int) -> None:
        self.acked.append(mid)
        self.events.append(("acked", mid))


def make_collector(tmp_path, **overrides) -> tuple[Collector, FakeStore, FakeLink, list]:
    events: list = []
    store = FakeStore(events)
    cfg = dict(client_id="unit", batch_interval_s=0.05, max_batch_messages=5, retry_initial_s=0.02,
               retry_max_s=0.1, metrics_port=None)
    cfg.update(overrides)
    c = Collector(CollectorSettings(**cfg), MqttSettings(), store, data_dir=tmp_path)
    link = FakeLink(events)
    c.client = link  # type: ignore[assignment]
    return c, store, link, events


def run_threads(c: Collector) -> None:
    c._batcher.start()
    c._writer.start()


def stop_threads(c: Collector) -> None:
    c._stopping.set()
    c._inbox.put(_STOP)
    c._batcher.join(10)
    c._writer.join(10)
    c.ledger.close()


def send(c: Collector, i: int, value=None) -> None:
    payload = encode_telemetry(M, [(T0 + i, {"a": i if value is None else value})])
    c.handle_message(telemetry_topic(M), payload, i + 1, 1)


def test_acknowledges_each_message_only_after_its_point_is_stored(tmp_path):
    c, store, link, events = make_collector(tmp_path)
    run_threads(c)
    for i in range(20):
        send(c, i)
    wait_until(lambda: len(link.acked) == 20, 10, "20 acks")
    stop_threads(c)
    for i in range(20):
        assert events.index(("stored", T0 + i)) < events.index(("acked", i + 1))
    assert [p.ts_ms for p in store.points] == [T0 + i for i in range(20)]


def test_at_light_load_a_message_is_stored_long_before_the_batch_interval(tmp_path):
    """Group commit: the store is idle and nothing else waits, so the partial batch goes after the linger."""
    c, store, link, events = make_collector(tmp_path, batch_interval_s=60.0, batch_linger_s=0.02)
    run_threads(c)
    send(c, 0)
    wait_until(lambda: link.acked == [1], 10, "the message stored and acked well within the 60 s interval")
    stop_threads(c)
    assert events.index(("stored", T0)) < events.index(("acked", 1))


def test_while_the_store_writes_the_next_batch_fills_instead_of_going_message_by_message(tmp_path):
    c, store, link, events = make_collector(tmp_path, batch_interval_s=60.0, batch_linger_s=0.0,
                                            max_batch_messages=100)
    gate, writing, sizes = threading.Event(), threading.Event(), []
    write = store.write

    def slow_write(points):
        sizes.append(len(points))
        writing.set()
        assert gate.wait(10)
        write(points)

    store.write = slow_write  # type: ignore[method-assign]
    run_threads(c)
    send(c, 0)
    assert writing.wait(10)  # the first message alone: the store was idle
    for i in range(1, 11):  # arrive while that write is under way
        send(c, i)
    wait_until(lambda: c._inbox.empty(), 10, "the batcher to take the ten messages")
    gate.set()
    wait_until(lambda: len(link.acked) == 11, 10, "11 acks")
    stop_threads(c)
    assert sizes == [1, 10]
    assert [p.ts_ms for p in store.points] == [T0 + i for i in range(11)]


def test_store_down_spools_and_acks_then_drains_in_order_when_it_returns(tmp_path):
    c, store, link, events = make_collector(tmp_path)
    store.up.clear()
    run_threads(c)
    for i in range(30):
        send(c, i)
    wait_until(lambda: len(link.acked) == 30, 10, "30 acks from the spool")
    assert store.points == [] and c.ledger.spool_messages == 30  # acked because durable on disk
    store.up.set()
    for i in range(30, 40):  # live traffic while draining queues behind the spool
        send(c, i)
    wait_until(lambda: len(store.points) == 40 and c.ledger.spool_messages == 0, 10, "spool drained")
    wait_until(lambda: len(link.acked) == 40, 10, "40 acks")
    stop_threads(c)
    assert [p.ts_ms for p in store.points] == [T0 + i for i in range(40)]
    assert c.counters["spooled"] >= 30 and c.counters["drained"] >= 30


def test_spool_drains_while_live_traffic_keeps_arriving(tmp_path):
    c, store, link, events = make_collector(tmp_path, max_batch_messages=5, batch_interval_s=0.01)
    store.up.clear()
    run_threads(c)
    for i in range(100):
        send(c, i)
    wait_until(lambda: len(link.acked) == 100, 10, "100 acks from the spool")
    store.up.set()
    sent = 100
    while c.ledger.spool_messages and sent < 5000:  # a live batch is waiting nearly all the time
        send(c, sent)
        sent += 1
    wait_until(lambda: c.ledger.spool_messages == 0, 20, "spool drained despite live traffic")
    wait_until(lambda: len(link.acked) == sent, 10, "everything acked")
    stop_threads(c)
    assert sorted({p.ts_ms for p in store.points}) == [T0 + i for i in range(sent)]
    assert [p.ts_ms for p in store.points[:100]] == [T0 + i for i in range(100)]  # the backlog first, in order


def test_a_waiting_live_batch_does_not_starve_the_drain(tmp_path):
    """Under sustained load a live batch is nearly always waiting; each drain call must still
    write a chunk of several live batches' worth, or the spool would never shrink."""
    from collector.batcher import Batch

    c, store, link, events = make_collector(tmp_path, max_batch_messages=5)
    c.ledger.spool_append([(0, telemetry_topic(M), encode_telemetry(M, [(T0 + i, {"a": i})])) for i in range(100)])
    c._ready.put(Batch())  # a live batch waits
    c._drain()
    assert c.ledger.spool_messages == 100 - 5 * 4  # one chunk of DRAIN_CHUNK_BATCHES live batches, then yield
    assert [p.ts_ms for p in store.points] == [T0 + i for i in range(20)]
    c._ready.get_nowait()
    c._drain()  # nothing waits: drain it all, in order
    assert c.ledger.spool_messages == 0
    assert [p.ts_ms for p in store.points] == [T0 + i for i in range(100)]
    c.ledger.close()


def test_full_spool_holds_acknowledgements_back_and_releases_them_when_the_store_returns(tmp_path):
    c, store, link, events = make_collector(tmp_path, spool_max_bytes=1024, max_batch_messages=10)
    store.up.clear()
    run_threads(c)
    for i in range(60):  # ~90 bytes each: the spool takes about one batch of 10
        send(c, i)
    wait_until(lambda: c.metrics.backpressure._value.get() == 1, 10, "back-pressure")
    acked_while_full = len(link.acked)
    assert acked_while_full < 60 and c.ledger.spool_bytes <= 1024 + 2000
    store.up.set()
    wait_until(lambda: len(link.acked) == 60, 10, "all acked after the store returned")
    wait_until(lambda: c.ledger.spool_messages == 0, 10, "spool drained")
    stop_threads(c)
    assert sorted(p.ts_ms for p in store.points) == [T0 + i for i in range(60)]
    assert c.metrics.backpressure._value.get() == 0


def test_a_refused_point_goes_to_the_dead_letters_and_the_rest_of_its_batch_is_stored(tmp_path):
    c, store, link, events = make_collector(tmp_path, max_batch_messages=10)
    run_threads(c)
    for i in range(10):
        send(c, i, value="poison" if i == 4 else None)
    wait_until(lambda: len(link.acked) == 10, 10, "10 acks")
    stop_threads(c)
    # re-writing good points while isolating the bad one is idempotent in a real store
    assert sorted({p.ts_ms for p in store.points}) == [T0 + i for i in range(10) if i != 4]
    (letter,) = read_dead_letters(tmp_path)
    assert letter.reason == "store_rejected" and "field type conflict" in letter.detail
    assert letter.topic == telemetry_topic(M)
    assert json.loads(letter.payload)["samples"] == [{"ts": T0 + 4, "values": {"a": "poison"}}]
    assert c.counters["rejected_store_rejected"] == 1


def test_a_point_the_store_cannot_encode_is_refused_not_retried_forever(tmp_path):
    c, store, link, events = make_collector(tmp_path)

    def write(points):
        for p in points:
            float(p.values["a"])  # an int beyond float range raises OverflowError, as to_lines does
        FakeStore.write(store, points)

    store.write = write  # type: ignore[method-assign]
    run_threads(c)
    send(c, 0, value=10**400)
    send(c, 1)
    wait_until(lambda: len(link.acked) == 2, 10, "both acked")
    stop_threads(c)
    assert [p.ts_ms for p in store.points] == [T0 + 1]
    assert [d.reason for d in read_dead_letters(tmp_path)] == ["store_rejected"]


def test_bad_input_is_dead_lettered_with_its_reason_and_raw_payload_then_acked(tmp_path):
    c, store, link, events = make_collector(tmp_path)
    run_threads(c)
    c.handle_message(telemetry_topic(M), b"{not json", 1, 1)
    c.handle_message("sf/v1/acme/too/short", encode_telemetry(M, [(T0, {"a": 1})]), 2, 1)
    c.handle_message(telemetry_topic(M), b"x" * (1024 * 1024 + 1), 3, 1)
    wait_until(lambda: len(link.acked) == 3, 10, "3 acks")
    stop_threads(c)
    letters = read_dead_letters(tmp_path)
    assert [(d.reason, d.payload_bytes, d.truncated) for d in letters] == [
        ("schema", 9, False), ("topic", len(encode_telemetry(M, [(T0, {"a": 1})])), False),
        ("oversized", 1024 * 1024 + 1, True)]
    assert letters[0].payload == b"{not json" and len(letters[2].payload) == 64 * 1024
    assert store.points == []


def test_stop_with_the_store_down_and_the_spool_full_leaves_messages_unacknowledged(tmp_path):
    c, store, link, events = make_collector(tmp_path, spool_max_bytes=1024, max_batch_messages=10)
    store.up.clear()
    run_threads(c)
    for i in range(40):
        send(c, i)
    wait_until(lambda: c.metrics.backpressure._value.get() == 1, 10, "back-pressure")
    stop_threads(c)
    assert not c._writer.is_alive() and not c._batcher.is_alive()
    # exactly what reached the spool was acknowledged; the rest stays with the broker
    assert spool_status(tmp_path)[0] == len(link.acked) < 40
    assert store.points == []


# -- never crash on input --------------------------------------------------------------------
topics = st.one_of(
    st.text(max_size=120),
    st.builds(lambda parts: "/".join(parts), st.lists(st.text(max_size=12), max_size=9)),
    st.sampled_from([telemetry_topic(M), "sf/v1/acme/p/l/m/telemetry", "sf/v2/acme/p/l/m/telemetry", "$SYS/x"]),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
almost_valid = st.builds(
    lambda v, tenant, ts, values: json.dumps({"v": v, "tenant": tenant, "samples": [{"ts": ts, "values": values}]},
                                             allow_nan=True).encode(),
    st.sampled_from([1, 2, "1", None]),
    st.sampled_from(["acme", "other", "", "bad tenant"]),
    st.one_of(st.integers(), st.floats(), st.just(T0)),
    st.dictionaries(st.text(max_size=10), st.one_of(st.integers(), st.floats(), st.booleans(), st.text(max_size=300)),
                    max_size=5),
)
payloads = st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode()), almost_valid)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(st.tuples(topics, payloads), min_size=1, max_size=5))
def test_fuzz_any_topic_and_payload_is_classified_never_raises(tmp_path, messages):
    c, store, link, events = make_collector(tmp_path)
    for i, (topic, payload) in enumerate(messages):
        c.handle_message(topic, payload, i + 1, 1)
    items = []
    while True:
        try:
            items.append(c._inbox.get_nowait())
        except queue.Empty:
            break
    assert len(items) == len(messages)  # exactly one outcome per message
    for (content, _ack, raw), (topic, payload) in zip(items, messages):
        if isinstance(content, DeadLetter):
            assert content.reason in REASONS and content.payload == payload and content.topic == topic
        else:
            assert raw[1:] == (topic, payload) and content
    c.ledger.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(topic=st.binary(max_size=60), payload=st.binary(max_size=200))
def test_fuzz_raw_mqtt_messages_with_any_bytes_reach_the_inbox(tmp_path, topic, payload):
    import paho.mqtt.client as mqtt

    c, store, link, events = make_collector(tmp_path)
    message = mqtt.MQTTMessage(mid=7, topic=topic)
    message.payload = payload
    message.qos = 1
    c._on_message(None, None, message)
    content, ack, _ = c._inbox.get_nowait()
    assert ack == (7, 1)
    assert isinstance(content, DeadLetter) or content
    c.ledger.close()

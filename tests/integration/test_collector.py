"""The collector against a real mosquitto: bad input is rejected without stopping it, and
messages published while it is away arrive once it is back (persistent session)."""

from __future__ import annotations

import json

import paho.mqtt.client as mqtt
import pytest

from collector.ledger import read_dead_letters
from collector.service import Collector
from collector.settings import CollectorSettings
from mqttlink import MqttSettings
from plant import MachineRef
from tests.waiting import wait_until
from tsstore.sqlite import SqliteStore
from wire import encode_telemetry, telemetry_topic

pytestmark = pytest.mark.integration

M = MachineRef("acme", "plant-1", "line-a", "press-1")
T0 = 1_795_000_020_000


def _publisher(url: MqttSettings) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-publisher")
    client.connect(url.host, url.port)
    client.loop_start()
    return client


def _publish(client: mqtt.Client, topic: str, payload: bytes) -> None:
    client.publish(topic, payload, qos=1).wait_for_publish(10)


def test_subscribed_means_the_broker_has_the_subscription(mosquitto, tmp_path):
    """``subscribed`` waits for the broker's SUBACK: what is published after it is never lost.

    A loaded broker takes the SUBSCRIBE late (here: sent 0.5 s after the connection); the event
    used to be set when the request was sent, and the first messages went to no subscriber.
    """
    import threading

    settings = MqttSettings(url=mosquitto.url)
    store = SqliteStore(tmp_path / "c.db")
    collector = Collector(CollectorSettings(client_id="c-suback", batch_interval_s=0.1, metrics_port=None), settings,
                          store, data_dir=tmp_path / "collector")
    send = collector.client.subscribe
    collector.client.subscribe = lambda *a, **kw: threading.Timer(0.5, send, a, kw).start()  # type: ignore[method-assign]
    collector.start()
    try:
        assert collector.subscribed.wait(10)
        pub = _publisher(settings)
        _publish(pub, telemetry_topic(M), encode_telemetry(M, [(T0, {"a": 1})]))
        wait_until(lambda: collector.counters["written"] == 1, 30, "the point published right after subscribed")
        pub.loop_stop()
    finally:
        collector.stop()


def test_bad_messages_are_counted_and_good_ones_stored(mosquitto, tmp_path):
    settings = MqttSettings(url=mosquitto.url)
    store = SqliteStore(tmp_path / "c.db")
    collector = Collector(CollectorSettings(client_id="c-bad", batch_interval_s=0.1, metrics_port=None), settings, store,
                          data_dir=tmp_path / "collector")
    collector.start()
    assert collector.subscribed.wait(10)
    pub = _publisher(settings)
    topic = telemetry_topic(M)
    bad = [
        b"{not json",
        json.dumps({"v": 1, "tenant": "other", "samples": [{"ts": T0, "values": {"a": 1}}]}).encode(),
        b'{"v":1,"tenant":"acme","samples":[{"ts":1795000020000,"values":{"a":NaN}}]}',
        json.dumps({"v": 1, "tenant": "acme", "samples": [{"ts": T0, "values": {}}]}).encode(),
    ]
    for payload in bad:
        _publish(pub, topic, payload)
    good = [encode_telemetry(M, [(T0 + i * 1000, {"a": i, "ok": True})]) for i in range(5)]
    for payload in good:
        _publish(pub, topic, payload)
    wait_until(lambda: collector.counters["written"] == 5, what="5 good points written")
    c = collector.counters
    assert (c["received"], c["rejected_schema"], c["rejected_tenant_mismatch"]) == (9, 3, 1)
    assert store.history(M, "a", T0, T0 + 10_000, 0) == [(T0 + i * 1000, float(i)) for i in range(5)]
    pub.loop_stop()
    collector.stop()
    # the dead letters hold exactly the bad inputs, in order, each with its reason
    letters = read_dead_letters(tmp_path / "collector")
    assert [(d.reason, d.topic, d.payload) for d in letters] == [
        ("schema", topic, bad[0]), ("tenant_mismatch", topic, bad[1]), ("schema", topic, bad[2]),
        ("schema", topic, bad[3])]


def test_messages_sent_while_collector_is_away_arrive_after_restart(mosquitto, tmp_path):
    settings = MqttSettings(url=mosquitto.url)
    store = SqliteStore(tmp_path / "c.db")
    cfg = CollectorSettings(client_id="c-persistent", batch_interval_s=0.1, metrics_port=None)
    first = Collector(cfg, settings, store, data_dir=tmp_path / "collector")
    first.start()
    assert first.subscribed.wait(10)
    first.stop()  # session (subscription) stays with the broker

    pub = _publisher(settings)
    for i in range(50):
        _publish(pub, telemetry_topic(M), encode_telemetry(M, [(T0 + i * 1000, {"a": i})]))
    pub.loop_stop()

    second = Collector(cfg, settings, store, data_dir=tmp_path / "collector")
    second.start()
    wait_until(lambda: second.counters["written"] >= 50, what="queued messages delivered")
    assert [v for _, v in store.history(M, "a", T0, T0 + 60_000, 0)] == [float(i) for i in range(50)]
    second.stop()

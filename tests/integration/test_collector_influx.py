"""The collector on real mosquitto and a real influxd: outages, partial writes, metrics."""

from __future__ import annotations

import json

import httpx
import paho.mqtt.client as mqtt
import pytest

from collector.ledger import read_dead_letters
from collector.service import Collector
from collector.settings import CollectorSettings
from mqttlink import MqttSettings
from plant import MachineRef
from tests.integration.collector_helpers import T0, Publisher, influx_points
from tests.waiting import wait_until
from tsstore.influx import InfluxStore
from wire import encode_telemetry, telemetry_topic

pytestmark = pytest.mark.integration


def _collector(mosquitto, influxd, tmp_path, database: str, store_timeout_s: float = 2.0,
               **overrides) -> tuple[Collector, InfluxStore]:
    cfg = dict(client_id=f"c-{database}", batch_interval_s=0.1, max_batch_messages=20, retry_initial_s=0.1,
               retry_max_s=0.5, metrics_port=None)
    cfg.update(overrides)
    store = InfluxStore(influxd.url, database, timeout=store_timeout_s)  # short: outages are noticed quickly
    c = Collector(CollectorSettings(**cfg), MqttSettings(url=mosquitto.url), store, data_dir=tmp_path / database)
    c.start()
    assert c.subscribed.wait(10)
    return c, store


def test_influxd_killed_and_restarted_mid_stream_loses_nothing(mosquitto, influxd, tmp_path):
    c, store = _collector(mosquitto, influxd, tmp_path, "outage")
    pub = Publisher(mosquitto.port, messages=600, samples=5, rate=150).start()
    wait_until(lambda: influx_points(influxd.url, "outage") >= 300, 30, "some points stored before the outage")
    influxd.kill()  # SIGKILL, mid-stream
    wait_until(lambda: c.counters["spooled"] >= 50, 30, "messages spooled to disk while influxd is down")
    assert c.metrics.spooled._value.get() >= 50
    influxd.start()
    pub.stop()
    wait_until(lambda: influx_points(influxd.url, "outage") == pub.points, 60, "every published point stored")
    wait_until(lambda: c.ledger.spool_messages == 0, 30, "spool drained")
    c.stop()
    assert c.counters["store_retries"] >= 1 and c.counters["drained"] >= 50
    assert read_dead_letters(tmp_path / "outage") == []


def test_full_spool_stops_acknowledging_and_the_broker_keeps_the_rest_until_influxd_returns(
        mosquitto, influxd, tmp_path):
    c, store = _collector(mosquitto, influxd, tmp_path, "pressure", spool_max_bytes=20_000)
    store.ensure_database()
    influxd.stop()
    pub = Publisher(mosquitto.port, messages=400, samples=5, rate=400).start()
    wait_until(lambda: c.metrics.backpressure._value.get() == 1, 30, "spool full: back-pressure")
    pub.stop()  # every message reached the broker; most wait there, unacknowledged
    assert c.ledger.spool_bytes <= 20_000 + 20 * 1000  # the bound plus at most one batch
    assert c.counters["spooled"] < pub.messages
    influxd.start()
    wait_until(lambda: influx_points(influxd.url, "pressure") == pub.points, 60, "every published point stored")
    wait_until(lambda: c.metrics.backpressure._value.get() == 0 and c.ledger.spool_messages == 0, 30,
               "spool drained, acks flowing")
    c.stop()


def test_field_type_conflict_keeps_the_good_points_and_dead_letters_the_bad_one(mosquitto, influxd, tmp_path):
    m = MachineRef("acme", "plant-1", "line-a", "press-1")
    c, store = _collector(mosquitto, influxd, tmp_path, "conflict", batch_interval_s=1.0, max_batch_messages=30)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-pub-conflict")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    first = pub.publish(telemetry_topic(m), encode_telemetry(m, [(T0, {"a": 1.5})]), qos=1)
    first.wait_for_publish(10)
    wait_until(lambda: c.counters["written"] == 1, 20, "field 'a' exists as float")
    # one batch: 10 good messages around one whose 'a' is a string (InfluxDB: field type conflict)
    bad = encode_telemetry(m, [(T0 + 5000, {"a": "text now"})])
    for i in range(1, 11):
        payload = bad if i == 5 else encode_telemetry(m, [(T0 + i * 1000, {"a": float(i)})])
        pub.publish(telemetry_topic(m), payload, qos=1).wait_for_publish(10)
    wait_until(lambda: c.counters["rejected_store_rejected"] == 1 and c.counters["written"] == 10, 20,
               "9 good points written, 1 refused")
    c.stop()
    pub.loop_stop()
    assert [t for t, _ in store.history(m, "a", T0, T0 + 20_000, 0)] == [T0 + i * 1000 for i in range(11) if i != 5]
    (letter,) = read_dead_letters(tmp_path / "conflict")
    assert letter.reason == "store_rejected" and "field type conflict" in letter.detail
    assert json.loads(letter.payload)["samples"] == [{"ts": T0 + 5000, "values": {"a": "text now"}}]
    assert letter.topic == telemetry_topic(m)


def test_metrics_endpoint_counts_received_written_rejected_and_latency(mosquitto, influxd, tmp_path):
    # the product's store timeout: no outage here, and a loaded influxd may take over 2 s for a write
    c, store = _collector(mosquitto, influxd, tmp_path, "metrics", store_timeout_s=10.0, metrics_port=0)
    assert c.metrics_port
    pub = Publisher(mosquitto.port, messages=30, samples=2, rate=500).start()
    bad = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-pub-bad")
    bad.connect("127.0.0.1", mosquitto.port)
    bad.loop_start()
    bad.publish("sf/v1/acme/p/l/m/telemetry", b"{", qos=1).wait_for_publish(10)
    pub.stop()
    wait_until(lambda: c.counters["written"] >= 60, 120, "60 points written")
    text = httpx.get(f"http://127.0.0.1:{c.metrics_port}/metrics", timeout=5).text
    c.stop()
    bad.loop_stop()
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line and not line.startswith("#")}
    assert values["collector_messages_received_total"] == 31
    assert values["collector_points_written_total"] == 60
    assert values["collector_values_written_total"] == 120
    assert values['collector_rejected_total{reason="schema"}'] == 1
    assert values["collector_spool_messages"] == 0
    assert values["collector_batch_write_seconds_count"] >= 1
    # per point of live batches; a batch whose write was retried comes back through the spool (2 points a message)
    assert values["collector_end_to_end_seconds_count"] == 60 - 2 * c.counters["drained"]
    assert "collector_consumer_lag_seconds" in values and "collector_unacked_messages" in values

"""The collector process: subscribe, validate, batch, store, and only then acknowledge.

paho delivers messages on its network thread with manual acknowledgement; a writer
thread stores batches and acknowledges every message of a batch after the store said
yes, so a crash at any point leaves unacknowledged messages with the broker, which
redelivers them (writes are idempotent by source timestamp).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter

import paho.mqtt.client as mqtt

from collector.batcher import Batch
from collector.settings import CollectorSettings
from mqttlink import MqttSettings, make_client
from tsstore import Point, StoreRejected, StoreUnavailable, TimeSeriesStore
from wire import WireError, decode_telemetry, telemetry_subscription

log = logging.getLogger("collector")

_STOP = object()


class Collector:
    def __init__(self, settings: CollectorSettings, mqtt_settings: MqttSettings, store: TimeSeriesStore) -> None:
        self.settings = settings
        self.mqtt_settings = mqtt_settings
        self.store = store
        self.topic = telemetry_subscription(settings.tenant, settings.shared_group)
        self.counters: Counter[str] = Counter()
        self.subscribed = threading.Event()
        self._inbox: queue.Queue = queue.Queue(maxsize=settings.max_pending_messages)
        self._stopping = threading.Event()
        # clean_session=False: the broker keeps our subscription and unacknowledged
        # messages while we are away, and redelivers them when we come back.
        self.client = make_client(mqtt_settings, settings.client_id, clean_session=False, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self._writer = threading.Thread(target=self._write_loop, name="collector-writer", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._writer.start()
        self.client.connect_async(self.mqtt_settings.host, self.mqtt_settings.port, self.mqtt_settings.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        """Write what is pending, acknowledge it, then disconnect."""
        self._stopping.set()
        self._inbox.put(_STOP)
        self._writer.join(timeout=30)
        self.client.disconnect()
        self.client.loop_stop()

    # -- MQTT thread -------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("mqtt_connect_refused broker=%s reason=%s", self.mqtt_settings.url, reason_code)
            return
        client.subscribe(self.topic, qos=1)
        log.info("mqtt_subscribed broker=%s topic=%s session_present=%s", self.mqtt_settings.url, self.topic,
                 flags.session_present)
        self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.subscribed.clear()
        if not self._stopping.is_set():
            log.warning("mqtt_disconnected broker=%s reason=%s", self.mqtt_settings.url, reason_code)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        self.counters["received"] += 1
        ack = (message.mid, message.qos)
        try:
            machine, telemetry = decode_telemetry(message.topic, message.payload)
        except WireError as exc:
            self.counters[f"rejected_{exc.reason}"] += 1
            log.warning("message_rejected topic=%r reason=%s detail=%r bytes=%d", message.topic, exc.reason,
                        exc.detail, len(message.payload))
            self._inbox.put(([], ack))  # acknowledged in order with the rest: it will never become valid
            return
        points = [Point(machine, s.ts, s.values) for s in telemetry.samples]
        # Blocks when the writer falls behind: paho then stops reading, the broker holds
        # the rest (back-pressure instead of unbounded memory).
        self._inbox.put((points, ack))

    # -- writer thread -----------------------------------------------------------------
    def _write_loop(self) -> None:
        batch = Batch()
        s = self.settings
        while True:
            timeout = batch.seconds_until_due(time.monotonic(), s.batch_interval_s)
            try:
                item = self._inbox.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _STOP:
                self._flush(batch)
                return
            if item is not None:
                points, ack = item
                batch.add(points, ack, time.monotonic())
            if batch.due(time.monotonic(), s.batch_size, s.batch_interval_s):
                self._flush(batch)
                batch = Batch()

    def _flush(self, batch: Batch) -> None:
        if not batch.acks:
            return
        delay = 0.5
        while batch.points:
            started = time.perf_counter()
            try:
                self.store.write(batch.points)
            except StoreUnavailable as exc:
                self.counters["store_retries"] += 1
                log.warning("store_unavailable points=%d retry_in_s=%.1f error=%r", len(batch.points), delay, str(exc))
                if self._stopping.is_set():
                    return  # leave the messages unacknowledged: the broker redelivers them
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            except StoreRejected as exc:
                self.counters["rejected_store"] += len(batch.points)
                log.error("store_rejected points=%d error=%r", len(batch.points), str(exc))
            else:
                self.counters["written"] += len(batch.points)
                log.debug("batch_written points=%d ms=%.1f", len(batch.points), (time.perf_counter() - started) * 1000)
            break
        for mid, qos in batch.acks:
            if qos > 0:
                self.client.ack(mid, qos)


def run_collector(settings: CollectorSettings, mqtt_settings: MqttSettings, store: TimeSeriesStore,
                  stop: threading.Event) -> None:
    collector = Collector(settings, mqtt_settings, store)
    collector.start()
    try:
        while not stop.wait(60):
            c = collector.counters
            log.info("collector_stats received=%d written=%d rejected=%d",
                     c["received"], c["written"], sum(v for k, v in c.items() if k.startswith("rejected")))
    finally:
        collector.stop()
        store.close()

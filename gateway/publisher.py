"""Publish polls to MQTT with QoS 1, never blocking the polling tasks.

paho's network loop runs in its own thread; ``publish`` only queues the message.
"""

from __future__ import annotations

import logging
import threading

import paho.mqtt.client as mqtt

from mqttlink import MqttSettings, make_client
from plant import MachineRef
from wire import encode_telemetry, telemetry_topic

log = logging.getLogger("gateway.publisher")


class TelemetryPublisher:
    def __init__(self, settings: MqttSettings, client_id: str) -> None:
        self.settings = settings
        self.connected = threading.Event()
        self.client = make_client(settings, client_id)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.published = 0

    def start(self) -> None:
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, machine: MachineRef, ts_ms: int, values: dict) -> None:
        payload = encode_telemetry(machine, [(ts_ms, values)])
        info = self.client.publish(telemetry_topic(machine), payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.error("publish_failed machine=%s rc=%s", machine, mqtt.error_string(info.rc))
        self.published += 1

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("mqtt_connect_refused broker=%s reason=%s", self.settings.url, reason_code)
            return
        log.info("mqtt_connected broker=%s", self.settings.url)
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        log.warning("mqtt_disconnected broker=%s reason=%s", self.settings.url, reason_code)

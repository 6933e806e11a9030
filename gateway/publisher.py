"""Forward the outbox to MQTT, in order, and announce the gateway's and devices' status.

A thread of its own reads the outbox and publishes with QoS 1; paho's network loop runs
in another. Polling only appends to the outbox, so a slow or absent broker never blocks
it. Rows are deleted when their message's PUBACK arrives (``on_publish``, mapped by
message id); paho resends unacknowledged messages itself after a reconnect.

Backlog is packed many samples per message (the v1 payload allows it), which is what
makes a replay after an outage much faster than the live rate; at most
``max_in_flight`` messages are unacknowledged at once (message ids are 16-bit and paho
refuses more than 65,535 queued).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque

import paho.mqtt.client as mqtt

from gateway.outbox import Outbox, Row
from gateway.settings import GatewaySettings
from mqttlink import MqttSettings, make_client
from plant import MachineRef
from wire import MAX_PAYLOAD_BYTES, device_status_topic, encode_telemetry, gateway_status_topic, telemetry_topic

log = logging.getLogger(__name__)

#: Keep a packed message well under the contract's 1 MiB limit.
_MESSAGE_BUDGET = MAX_PAYLOAD_BYTES // 2
#: Rows read from the outbox per pass.
_BATCH_ROWS = 5000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Forwarder:
    def __init__(
        self, mqtt_settings: MqttSettings, gateway: GatewaySettings, outbox: Outbox) -> None:
        self.settings = mqtt_settings
        self.gateway = gateway
        self.outbox = outbox
        self.status_topic = gateway_status_topic(gateway.tenant, gateway.site, gateway.id)
        will = json.dumps({"v": 1, "gateway": gateway.id, "state": "offline", "reason": "connection-lost"}).encode()
        self.client = make_client(mqtt_settings, client_id=gateway.id, will=(self.status_topic, will))
        self.client.max_inflight_messages_set(gateway.outbox.max_in_flight + 100)  # + room for status messages
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_connect_fail = self._on_connect_fail
        self.connected = threading.Event()
        self._wake = outbox.new_rows  # set by new rows, acks, connects and stop
        self._acks: deque[int] = deque()  # mids acknowledged, for the forwarder thread to settle
        self._in_flight: dict[int, list[int]] = {}  # mid -> outbox row ids; forwarder thread only
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-forwarder", daemon=True)
        self.sent_messages = 0
        self.sent_samples = 0
        self.acked_samples = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        self.client.loop_start()
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Announce a clean shutdown (the will is not sent on a clean disconnect) and stop."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if self.connected.is_set():
            info = self.client.publish(self.status_topic, self._gateway_status("offline", "stopped"), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    # ------------------------------------------------------------------ status

    def _gateway_status(self, state: str, reason: str | None = None) -> bytes:
        body = {
            "v": 1,
            "gateway": self.gateway.id,
            "state": state,
            "ts": _now_ms(),
            "devices": len(self.gateway.devices),
            "outbox_pending": self.outbox.pending,
            "outbox_dropped": self.outbox.dropped,
        }
        if reason:
            body["reason"] = reason
        return json.dumps(body).encode()

    def publish_gateway_status(self) -> None:
        self.client.publish(self.status_topic, self._gateway_status("online"), qos=1, retain=True)

    def publish_device_status(self, machine: MachineRef, status: dict) -> None:
        body = {"v": 1, "gateway": self.gateway.id, "ts": _now_ms(), **status}
        self.client.publish(device_status_topic(machine), json.dumps(body).encode(), qos=1, retain=True)

    # ------------------------------------------------------------------ paho callbacks (network thread)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("mqtt_connect_refused broker=%s reason=%s", self.settings.url, reason_code)
            return
        log.info("mqtt_connected broker=%s outbox_pending=%d", self.settings.url, self.outbox.pending)
        self.publish_gateway_status()  # birth
        self.connected.set()
        self._wake.set()

    def _on_connect_fail(self, client, userdata) -> None:
        # TCP refused, TLS handshake or certificate check failed: paho retries with backoff
        log.error("mqtt_connect_failed broker=%s outbox_pending=%d hint=%s", self.settings.url, self.outbox.pending,
                  "check the broker address, port, TLS (mqtts:// and ca_file) and firewall")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        log.warning("mqtt_disconnected broker=%s reason=%s outbox_pending=%d", self.settings.url, reason_code,
                    self.outbox.pending)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # paho calls this holding its own message lock: only hand the mid over, never wait
        self._acks.append(mid)
        self._wake.set()

    # ------------------------------------------------------------------ forwarding (own thread)

    def _run(self) -> None:
        last_id = 0  # rows up to here have been handed to paho
        limit = self.gateway.outbox.max_samples_per_message
        window = self.gateway.outbox.max_in_flight
        while not self._stop.is_set():
            try:
                self._wake.clear()
                self._settle_acks()
                room = window - len(self._in_flight)
                # a bounded batch: memory stays flat however large the backlog, and the
                # messages it makes exceed the in-flight window by at most one batch
                rows = self.outbox.batch(last_id, min(limit * room, _BATCH_ROWS)) \
                    if room > 0 and self.connected.is_set() else []
                if not rows:
                    self._wake.wait(0.5)
                    continue
                messages = self._pack(rows, limit)
                for i, message_rows in enumerate(messages):
                    if not self._send(message_rows):
                        # resend from the oldest row not handed to paho (duplicates are harmless)
                        last_id = min(m[0].id for m in messages[i:]) - 1
                        time.sleep(0.5)
                        break
                else:
                    last_id = rows[-1].id
            except Exception:  # noqa: BLE001 - the forwarder must outlive any one bad batch
                log.exception("forwarder_error; retrying in 1 s")
                time.sleep(1)
        self._settle_acks()

    def _settle_acks(self) -> None:
        done: list[int] = []
        while self._acks:
            ids = self._in_flight.pop(self._acks.popleft(), None)
            if ids:
                done.extend(ids)
        if done:
            self.outbox.delete(done)
            self.acked_samples += len(done)

    @staticmethod
    def _pack(rows: list[Row], limit: int) -> list[list[Row]]:
        """Group a batch's rows per machine (each machine's in order), at most ``limit``
        samples and about half a MiB per message; messages ordered by their first row."""
        per_machine: dict[str, list[list[Row]]] = {}
        sizes: dict[str, int] = {}
        for row in rows:
            chunks = per_machine.setdefault(row.machine, [[]])
            row_size = 32 + (row.size or sum(len(k) + 24 for k in row.values))
            if chunks[-1] and (len(chunks[-1]) >= limit or sizes[row.machine] + row_size > _MESSAGE_BUDGET):
                chunks.append([])
                sizes[row.machine] = 0
            chunks[-1].append(row)
            sizes[row.machine] = sizes.get(row.machine, 0) + row_size
        return sorted((c for chunks in per_machine.values() for c in chunks), key=lambda c: c[0].id)

    def _send(self, rows: list[Row]) -> bool:
        machine = MachineRef(*rows[0].machine.split("/"))
        payload = encode_telemetry(machine, [(r.ts, r.values) for r in rows])
        info = self.client.publish(telemetry_topic(machine), payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            # not queued by paho: the rows stay in the outbox and go again after a reconnect
            log.error("publish_failed machine=%s rc=%s", machine, mqtt.error_string(info.rc))
            return False
        self._in_flight[info.mid] = [r.id for r in rows]
        self.sent_messages += 1
        self.sent_samples += len(rows)
        return True

"""Shared by the collector integration tests: a paced QoS-1 publisher, publishing a machine's columns
as a gateway would, and counting what InfluxDB holds."""

from __future__ import annotations

import itertools
import threading
import time

import httpx
import paho.mqtt.client as mqtt

from plant import MachineRef
from wire import encode_telemetry, telemetry_topic

T0 = 1_795_000_020_000
MACHINES = [MachineRef("acme", "plant-1", "line-a", f"press-{i}") for i in range(3)]
_ids = itertools.count()


class Publisher:
    """Publishes ``messages`` messages of ``samples`` samples each, round-robin over MACHINES,
    every (machine, ts) distinct, at about ``rate`` messages/s, in a background thread."""

    def __init__(self, port: int, messages: int, samples: int = 5, rate: float = 200.0) -> None:
        self.messages, self.samples, self.rate = messages, samples, rate
        self.sent = 0
        self.done = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-pub-{next(_ids)}")
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def points(self) -> int:
        return self.messages * self.samples

    def start(self) -> "Publisher":
        self._thread.start()
        return self

    def _run(self) -> None:
        infos = []
        for n in range(self.messages):
            m = MACHINES[n % len(MACHINES)]
            base = T0 + (n // len(MACHINES)) * self.samples * 1000
            samples = [(base + k * 1000, {"a": n, "k": k}) for k in range(self.samples)]
            infos.append(self.client.publish(telemetry_topic(m), encode_telemetry(m, samples), qos=1))
            self.sent = n + 1
            time.sleep(1 / self.rate)
        for info in infos:
            info.wait_for_publish(30)
        self.done.set()

    def stop(self) -> None:
        self.done.wait(60)
        self.client.disconnect()
        self.client.loop_stop()


def influx_points(url: str, database: str) -> int:
    """Distinct (machine, ts) stored: every point has field 'a', and InfluxDB keeps one row per series and time."""
    try:
        r = httpx.get(f"{url}/query", params={"db": database, "q": 'SELECT count("a") FROM "telemetry" GROUP BY *'},
                      timeout=10)
    except httpx.HTTPError:
        return -1
    if r.status_code != 200:
        return -1
    result = r.json()["results"][0]
    return sum(s["values"][0][1] for s in result.get("series", []))


def samples_of(columns: dict) -> list[tuple[int, dict]]:
    """One machine's columns (tag -> (ts, values)) as report-on-change samples, one per timestamp."""
    by_ts: dict[int, dict] = {}
    for tag, (ts, values) in columns.items():
        for t, v in zip(ts.tolist(), values.tolist()):
            by_ts.setdefault(int(t), {})[tag] = float(v)
    return sorted(by_ts.items())


def publish_samples(port: int, machine: MachineRef, samples: list[tuple[int, dict]], per_message: int = 200) -> int:
    """Publish ``samples`` in the wire format (QoS 1, ``per_message`` samples a message) and wait until the
    broker has acknowledged every message; returns how many messages were sent."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-pub-{next(_ids)}")
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = [client.publish(telemetry_topic(machine), encode_telemetry(machine, samples[i:i + per_message]), qos=1)
                 for i in range(0, len(samples), per_message)]
        for info in infos:
            info.wait_for_publish(60)
    finally:
        client.disconnect()
        client.loop_stop()
    return len(infos)

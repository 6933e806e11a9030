"""``smartfactory collector`` as real processes on real mosquitto and influxd:
SIGKILL mid-stream, two collectors sharing one subscription, the dead-letters command."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml

from tests.integration.collector_helpers import Publisher, influx_points
from tests.processes import SMARTFACTORY, CollectorProcess
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

def write_config(tmp_path: Path, name: str, mosquitto, influxd, database: str, **collector) -> Path:
    cfg = {
        "mqtt": {"url": mosquitto.url},
        "store": {"kind": "influxdb", "url": influxd.url, "database": database},
        "collector": {"client_id": name, "batch_interval_s": 0.2, "max_batch_messages": 20, "data_dir": f"{name}-data",
                      "metrics_port": 0,
                      # no plant model here: these tests are about delivery (the machine check is
                      # tested in test_collector_limits.py)
                      "unknown_machines": "accept", **collector},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_collector_sigkilled_mid_stream_and_restarted_loses_nothing(mosquitto, influxd, tmp_path):
    config = write_config(tmp_path, "c-kill", mosquitto, influxd, "killed")
    proc = CollectorProcess(config, "c-kill").start()
    try:
        pub = Publisher(mosquitto.port, messages=800, samples=5, rate=200).start()
        wait_until(lambda: influx_points(influxd.url, "killed") >= 500, 30, "the collector is storing")
        proc.kill()  # SIGKILL: no clean-up, whatever was received but not acknowledged is lost from the process
        killed_at = pub.sent
        assert killed_at < pub.messages, "the publisher finished before the kill; the test would prove nothing"
        proc.start()  # same client id: the broker resumes the session and redelivers the unacknowledged messages
        assert "session_present=True" in proc.log.read_text().rsplit("mqtt_subscribed", 1)[1].splitlines()[0]
        pub.stop()
        wait_until(lambda: influx_points(influxd.url, "killed") == pub.points, 60, "every published point stored")
    finally:
        proc.stop()


def test_two_collectors_share_one_subscription_and_every_message_is_stored(mosquitto, influxd, tmp_path):
    procs = [
        CollectorProcess(write_config(tmp_path, name, mosquitto, influxd, "shared", shared_group="collectors"), name)
        for name in ("c-share-1", "c-share-2")
    ]
    try:
        for p in procs:
            p.start()
        pub = Publisher(mosquitto.port, messages=600, samples=5, rate=300).start()
        pub.stop()
        wait_until(lambda: influx_points(influxd.url, "shared") == pub.points, 60, "every published point stored")
        received = [p.metric("collector_messages_received_total") for p in procs]
        assert all(r > 0 for r in received), f"both collectors took part: {received}"
        assert sum(received) >= pub.messages  # at least once: a redelivery may count twice, never zero times
    finally:
        for p in procs:
            p.stop()


def test_a_dead_group_member_holds_its_share_until_retired_then_nothing_is_lost(mosquitto, influxd, tmp_path):
    configs = {name: write_config(tmp_path, name, mosquitto, influxd, "scalein", shared_group="collectors")
               for name in ("c-in-1", "c-in-2")}
    keeper, leaver = (CollectorProcess(configs[n], n) for n in configs)
    try:
        keeper.start()
        leaver.start()
        pub = Publisher(mosquitto.port, messages=300, samples=5, rate=300).start()
        wait_until(lambda: leaver.metric("collector_messages_received_total") >= 20, 30, "the leaver is taking part")
        leaver.kill()
        pub.stop()
        # the broker keeps the dead member's share for its session: not stored yet, not lost
        wait_until(lambda: keeper.metric("collector_messages_received_total") + 20 < pub.messages
                   and influx_points(influxd.url, "scalein") < pub.points, 5, "a share waiting for the dead member")
        retire = subprocess.run([*SMARTFACTORY, "collector", "--retire", "--config", str(configs["c-in-2"])],
                                capture_output=True, text=True, timeout=120)
        assert retire.returncode == 0, retire.stderr[-3000:]
        assert "collector_retired" in retire.stderr
        wait_until(lambda: influx_points(influxd.url, "scalein") == pub.points, 30, "the dead member's share stored")
        # after retirement the broker gives everything to the remaining member
        before = keeper.metric("collector_messages_received_total")
        more = Publisher(mosquitto.port, messages=50, samples=5, rate=300)
        more.start()
        more.stop()
        wait_until(lambda: keeper.metric("collector_messages_received_total") == before + 50, 30,
                   "all new messages to the remaining member")
    finally:
        keeper.stop()
        leaver.stop()


def test_dead_letters_command_shows_the_bad_inputs_with_their_reasons(mosquitto, influxd, tmp_path):
    config = write_config(tmp_path, "c-dl", mosquitto, influxd, "deadletters")
    proc = CollectorProcess(config, "c-dl").start()
    sent = {
        "sf/v1/acme/plant-1/line-a/press-1/telemetry": b"{not json",
        "sf/v1/acme/plant-1/line-a/press-2/telemetry":
            b'{"v":1,"tenant":"other","samples":[{"ts":1795000020000,"values":{"a":1}}]}',
        "sf/v1/acme/plant-1/line-a/bad level/telemetry": b'{"v":1}',
        "sf/v1/acme/plant-1/line-a/press-3/telemetry":
            b'{"v":1,"tenant":"acme","samples":[{"ts":1795000020000,"values":{"a":Infinity}}]}',
    }
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-pub-dl")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    try:
        for topic, payload in sent.items():
            pub.publish(topic, payload, qos=1).wait_for_publish(10)

        def listed() -> list[dict]:
            out = subprocess.run([*SMARTFACTORY, "dead-letters", "--config", str(config), "--json"],
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            return [json.loads(line) for line in out.stdout.splitlines()]

        wait_until(lambda: len(listed()) == 4, 30, "4 dead letters")
        letters = listed()
        assert {(d["topic"], d["payload"].encode(), d["reason"]) for d in letters} == {
            (t, p, r) for (t, p), r in zip(sent.items(), ["schema", "tenant_mismatch", "topic", "schema"])}
        summary = subprocess.run([*SMARTFACTORY, "dead-letters", "--config", str(config), "--summary",
                                  "--json"], capture_output=True, text=True, timeout=60)
        assert json.loads(summary.stdout) == {"dead_letters": {"schema": 2, "tenant_mismatch": 1, "topic": 1},
                                              "spool_messages": 0, "spool_bytes": 0}
        assert proc.metric('collector_rejected_total{reason="schema"}') == 2
    finally:
        pub.loop_stop()
        proc.stop()
